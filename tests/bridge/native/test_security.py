"""security.md requirements at the HTTP and WebSocket boundary of the bridge."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helper.bridge.origins import Decision, OriginPolicy, normalize_origin
from helper.services.consent import ConsentStore
from helper.services.prompts import ConsentChoice
from tests.support.bridge import HALL, call, running_bridge
from tests.support.doubles import ScriptedPrompter

CANGZHOU = "http://111.62.46.105:9010"


def run(coro):
    return asyncio.run(coro)


# --- req 2: Host allowlist ------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/ping", "/v1/ws", "/v1/certhelper.js", "/nope"])
@pytest.mark.parametrize(
    "host", ["evil.example:{p}", "127.0.0.1.evil.example:{p}", "127.0.0.1:{q}", "", "localhost"]
)
def test_host_allowlist(driver, fixtures, state, path: str, host: str) -> None:
    async def go() -> None:
        async with running_bridge(driver, fixtures, state) as b:
            headers = {"Host": host.format(p=b.port, q=b.port + 1), "Origin": HALL}
            headers.update(
                {
                    "Connection": "Upgrade",
                    "Upgrade": "websocket",
                    "Sec-WebSocket-Version": "13",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                }
            )
            async with b.http.get(b.url(path), headers=headers) as r:
                assert r.status == 421
            # X-Forwarded-Host cannot launder a bad Host either
            headers["X-Forwarded-Host"] = f"127.0.0.1:{b.port}"
            async with b.http.get(b.url(path), headers=headers) as r:
                assert r.status == 421

    run(go())


@pytest.mark.parametrize("host", ["127.0.0.1:{p}", "localhost:{p}", "LOCALHOST:{p}", "[::1]:{p}"])
def test_loopback_hosts_accepted(driver, fixtures, state, host: str) -> None:
    async def go() -> None:
        async with running_bridge(driver, fixtures, state) as b:
            headers = {"Host": host.format(p=b.port)}
            async with b.http.get(b.url("/v1/ping"), headers=headers) as r:
                assert r.status == 200
                assert await r.json() == {"app": "certhelper", "version": "0.1.0", "protocol": 1}

    run(go())


# --- req 3 and 4: origins, checked before the upgrade -----------------------------


def test_ws_refuses_missing_null_and_plain_http_origins(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_bridge(driver, fixtures, state) as b:
            for origin in (
                None,
                "null",
                "http://evil.example",
                "file://",
                "chrome-extension://x",
                "http://127.0.0.1:9011",
                "HTTP://127.0.0.1:9010",
                "http://127.0.0.1:9010/",
                "http://127.0.0.1.:9010",
                "http://127.0.0.1:09010",
            ):
                with pytest.raises(aiohttp.WSServerHandshakeError, match="403") as info:
                    await b.ws(origin)
                assert info.value.status == 403, origin
            assert b.prompter.calls == []  # none of these may even ask the user
            ws = await b.ws(HALL)
            assert (await call(ws, "auth.logout"))["result"] == {"logged_out": True}
            await ws.close()

    run(go())


_ALLOWED = [HALL, CANGZHOU]


def _near_misses():
    base = st.sampled_from(_ALLOWED)

    def mutate(args):
        origin, kind, n = args
        scheme, rest = origin.split("://")
        host, port = rest.rsplit(":", 1)
        return {
            "suffix": f"{scheme}://{host}.evil{n}.cn:{port}",
            "prefix": f"{scheme}://a{n}.{host}:{port}",
            "scheme": f"https://{host}:{port}",
            "port": f"{scheme}://{host}:{(int(port) + 1 + n) % 65535 or 1}",
            "idn": f"{scheme}://xn--{n}{host.replace('.', '')}:{port}",
            "unicode": f"{scheme}://{host}{chr(0x4E00 + n)}:{port}",
            "dot": f"{scheme}://{host}.:{port}",
            "user": f"{scheme}://u{n}@{host}:{port}",
            "path": f"{origin}/{n}",
            "case": origin.upper(),
            "space": origin + " ",
        }[kind]

    return st.tuples(
        base,
        st.sampled_from(
            [
                "suffix",
                "prefix",
                "scheme",
                "port",
                "idn",
                "unicode",
                "dot",
                "user",
                "path",
                "case",
                "space",
            ]
        ),
        st.integers(0, 500),
    ).map(mutate)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_near_misses())
def test_near_miss_origins_are_never_allowed(tmp_path_factory, origin: str) -> None:
    """No near miss of a configured origin is ALLOWED; only a well-formed https
    one may even reach the consent dialog."""
    store = ConsentStore(tmp_path_factory.mktemp("c") / "consent.json")
    policy = OriginPolicy(_ALLOWED, store)
    decision = policy.decide(normalize_origin(origin))
    if origin in _ALLOWED:
        assert decision is Decision.ALLOWED
        return
    assert decision is not Decision.ALLOWED
    if decision is Decision.ASK:
        assert origin.startswith("https://") and normalize_origin(origin) == origin


def test_near_miss_upgrades_get_403_never_101(driver, fixtures, state) -> None:
    """The same near misses over a real socket: the prompter denies whatever
    reaches it, and every upgrade ends in 403."""

    async def go() -> None:
        prompter = ScriptedPrompter(consents=[ConsentChoice.DENY] * 200)
        async with running_bridge(driver, fixtures, state, prompter) as b:
            for origin in [
                "https://127.0.0.1:9010",
                "http://127.0.0.1:9011",
                "http://a.127.0.0.1:9010",
                "http://127.0.0.1.evil.cn:9010",
                "https://111.62.46.105:9010",
                "http://111.62.46.105:9010.",
                "http://xn--1116246105:9010",
                "http://111.62.46.105:90100",
            ]:
                with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                    await b.ws(origin)
                assert info.value.status == 403

    run(go())


def test_https_origin_consent_once_always_deny(driver, fixtures, state) -> None:
    site = "https://hall.example.cn"

    async def go() -> None:
        prompter = ScriptedPrompter(
            consents=[ConsentChoice.ONCE, ConsentChoice.ALWAYS, ConsentChoice.DENY]
        )
        async with running_bridge(driver, fixtures, state, prompter) as b:
            ws = await b.ws(site)  # once: this connection only
            await ws.close()
            assert b.consent.get(site) is None
            ws = await b.ws(site)  # asked again; now always
            await ws.close()
            assert b.consent.get(site) == "always"
            ws = await b.ws(site)  # no dialog any more
            await ws.close()
            assert [r.operation for _, r in prompter.calls] == ["connect", "connect"]
            assert all(r.origin == site and not r.insecure_origin for _, r in prompter.calls)
            assert b.consent.revoke(site)  # revocable (certhelper origins revoke)
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await b.ws(site)  # asked again, denied, persisted
            assert info.value.status == 403
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await b.ws(site)
            assert len(prompter.calls) == 3  # the persisted deny asks no more
        assert json.loads((state / "consent.json").read_text())[site]["decision"] == "deny"

    run(go())


# --- req 5: CORS and Private Network Access ----------------------------------------


def test_cors(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_bridge(driver, fixtures, state) as b:
            async with b.http.get(b.url("/v1/ping"), headers={"Origin": HALL}) as r:
                assert r.headers["Access-Control-Allow-Origin"] == HALL
                assert "Origin" in r.headers["Vary"]
                assert "Access-Control-Allow-Credentials" not in r.headers
            async with b.http.get(b.url("/v1/ping"), headers={"Origin": "http://evil.cn"}) as r:
                assert "Access-Control-Allow-Origin" not in r.headers
                assert "Origin" in r.headers["Vary"]
            pna = {
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Private-Network": "true",
                "Access-Control-Request-Local-Network": "true",
            }
            async with b.http.options(b.url("/v1/ping"), headers={"Origin": HALL, **pna}) as r:
                assert r.status == 204
                assert r.headers["Access-Control-Allow-Origin"] == HALL
                assert r.headers["Access-Control-Allow-Private-Network"] == "true"
                assert r.headers["Access-Control-Allow-Local-Network"] == "true"
            async with b.http.options(
                b.url("/v1/ping"), headers={"Origin": "https://evil.cn", **pna}
            ) as r:
                assert "Access-Control-Allow-Private-Network" not in r.headers
                assert "Access-Control-Allow-Origin" not in r.headers
            for origin in (HALL, "https://evil.cn", None):
                h = {"Origin": origin} if origin else {}
                async with b.http.get(b.url("/v1/ping"), headers=h) as r:
                    assert r.headers.get("Access-Control-Allow-Origin") != "*"

    run(go())


# --- req 6: no side effects on GET, JSON-only bodies -------------------------------


def test_bodies_json_only_and_ping_has_no_side_effects(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_bridge(driver, fixtures, state) as b:
            for ctype, body in [
                ("application/x-www-form-urlencoded", "a=1"),
                ("text/plain", "{}"),
                ("multipart/form-data; boundary=x", "--x--"),
            ]:
                async with b.http.post(
                    b.url("/v1/ws"), data=body, headers={"Content-Type": ctype, "Origin": HALL}
                ) as r:
                    assert r.status == 415
            async with b.http.post(b.url("/v1/ping"), json={}) as r:
                assert r.status == 405
            async with b.http.post(
                b.url("/v1/ping"), data=b"x" * 70_000, headers={"Content-Type": "application/json"}
            ) as r:
                assert r.status in (405, 413)
            for _ in range(3):
                async with b.http.get(b.url("/v1/ping"), headers={"Origin": HALL}) as r:
                    assert r.status == 200
            assert b.prompter.calls == []
            assert not (state / "audit.jsonl").exists()  # nothing happened

    run(go())


# --- req 14 and 18: limits and bad input on the socket -------------------------------


def test_oversized_message_closes_1009(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_bridge(driver, fixtures, state) as b:
            ws = await b.ws()
            await ws.send_str(json.dumps({"id": 1, "method": "x", "params": {"p": "a" * 70_000}}))
            msg = await ws.receive(timeout=10)
            while msg.type == aiohttp.WSMsgType.TEXT:  # an event may come first
                msg = await ws.receive(timeout=10)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 1009
            # the daemon keeps serving
            ws2 = await b.ws()
            assert (await call(ws2, "auth.logout"))["result"]["logged_out"]
            await ws2.close()

    run(go())


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_request"),
        ("[1, 2]", "bad_request"),
        ('"string"', "bad_request"),
        ('{"id": 1}', "bad_request"),
        ('{"id": {"x": 1}, "method": "auth.logout"}', "bad_request"),
        ('{"id": true, "method": "auth.logout"}', "bad_request"),
        ('{"id": 99999999999999999999999, "method": "auth.logout"}', "bad_request"),
        ('{"id": 1, "method": 5}', "bad_request"),
        ('{"id": 1, "method": "no.such"}', "unknown_method"),
        ('{"id": 1, "method": "auth.logout", "params": []}', "bad_params"),
        ('{"id": 1, "method": "auth.authenticate", "params": {"challenge": 5}}', "bad_params"),
        ('{"id": 1, "method": "auth.authenticate", "params": {"challenge": "!!!"}}', "bad_params"),
        (
            '{"id": 1, "method": "auth.authenticate", "params": {"challenge": "c2hvcnQ"}}',
            "bad_params",
        ),
        ('{"id": 1, "method": "sign.data", "params": {"data": "***"}}', "bad_params"),
        ('{"id": 1, "method": "sign.data", "params": {"data": "", "format": "xml"}}', "bad_params"),
        ('{"id": 1, "method": "sign.data", "params": {"data": "", "text": 1e400}}', "bad_params"),
        ('{"id": 1, "method": "certificates.list", "params": {"certificate": 12}}', None),
        (
            '{"id": 1, "method": "auth.authenticate", "params": '
            '{"challenge": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "certificate": "MIIB"}}',
            "bad_params",
        ),
    ],
)
def test_malformed_messages_get_errors_and_the_socket_survives(
    driver, fixtures, state, frame, code
) -> None:
    async def go() -> None:
        async with running_bridge(driver, fixtures, state) as b:
            ws = await b.ws()
            await ws.send_str(frame)
            while True:
                data = await ws.receive_json(timeout=10)
                if "event" not in data:
                    break
            if code is None:
                assert "result" in data  # unknown params are ignored
            else:
                assert data["error"]["code"] == code
                assert data["error"]["message_zh"] and data["error"]["message_en"]
            await ws.send_bytes(b"\x00\x01binary")
            data = await ws.receive_json(timeout=10)
            while "event" in data:
                data = await ws.receive_json(timeout=10)
            assert data["error"]["code"] == "bad_request"
            assert (await call(ws, "auth.logout", rid="after"))["result"]["logged_out"]
            await ws.close()
            assert b.prompter.calls == []

    run(go())


def test_replies_never_echo_page_strings(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_bridge(driver, fixtures, state) as b:
            ws = await b.ws()
            evil = "<img src=x onerror=alert(1)>"
            data = await call(ws, evil)
            assert evil not in json.dumps(data)
            await ws.close()

    run(go())


# --- req 1: loopback only ------------------------------------------------------------


def _other_addresses() -> list[str]:
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return [a for a in out if not a.startswith("127.") and a != "::1"]


def test_listens_on_loopback_only(driver, fixtures, state, tmp_path: Path) -> None:
    import ssl

    from helper.config import Config
    from helper.daemon.compose import start_bridge
    from helper.services.tokens import ModuleStatus
    from tests.support.doubles import SharedTokens

    async def go() -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*_self_signed(tmp_path))
        tokens = SharedTokens([ModuleStatus(driver.module_path, "config", driver=driver)])
        bridge = await start_bridge(
            Config(),
            tokens=tokens,
            prompter=ScriptedPrompter(),
            state_dir=state,
            ssl_ctx=ctx,
            port=0,
        )
        try:
            assert set(bridge.hosts) <= {"127.0.0.1", "::1"}
            addrs = {
                s.getsockname()[0]
                for sites in bridge.sites
                for srv in sites.servers
                for s in srv.sockets
            }
            assert addrs <= {"127.0.0.1", "::1"}
            with socket.create_connection(("127.0.0.1", bridge.port), timeout=2):
                pass
            others = _other_addresses()
            for addr in others:
                with pytest.raises(OSError):
                    socket.create_connection((addr, bridge.port), timeout=2).close()
        finally:
            await bridge.stop()

    run(go())


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    c, k = tmp_path / "c.pem", tmp_path / "k.pem"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(c), str(k)


def test_idle_connections_close_even_when_pongs_flow(driver, fixtures, state, monkeypatch) -> None:
    from helper.bridge import ws as plumbing

    monkeypatch.setattr(plumbing, "IDLE_SECONDS", 0.6)
    monkeypatch.setattr(plumbing, "HEARTBEAT", 0.1)

    async def go() -> None:
        async with running_bridge(driver, fixtures, state) as b:
            ws = await b.ws(autoping=True)
            assert (await call(ws, "auth.logout"))["result"]["logged_out"]  # activity resets
            msg = await ws.receive(timeout=5)
            while msg.type == aiohttp.WSMsgType.TEXT:
                msg = await ws.receive(timeout=5)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 1000

    run(go())


def test_unexpected_errors_keep_the_request_id(driver, fixtures, state, monkeypatch) -> None:
    from helper.bridge.native.usecases import NativeApi

    async def boom(self, origin):
        raise RuntimeError("boom")

    monkeypatch.setattr(NativeApi, "list_certificates", boom)

    async def go() -> None:
        async with running_bridge(driver, fixtures, state) as b:
            ws = await b.ws()
            res = await call(ws, "certificates.list", rid="r-7")
            assert res["id"] == "r-7" and res["error"]["code"] == "internal_error"
            assert "boom" not in json.dumps(res)
            await ws.close()

    run(go())


def test_port_in_use_leaves_nothing_running(driver, fixtures, state, tmp_path) -> None:
    import ssl

    from helper.config import Config
    from helper.daemon.compose import start_bridge
    from helper.services.tokens import ModuleStatus
    from tests.support.doubles import SharedTokens

    async def go() -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*_self_signed(tmp_path))
        tokens = SharedTokens([ModuleStatus(driver.module_path, "config", driver=driver)])
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            taken = busy.getsockname()[1]
            before = len(asyncio.all_tasks())
            with pytest.raises(OSError):
                await start_bridge(
                    Config(),
                    tokens=tokens,
                    prompter=ScriptedPrompter(),
                    state_dir=state,
                    ssl_ctx=ctx,
                    port=0,
                    hebca_port=taken,
                )
            await asyncio.sleep(0.1)
            assert len(asyncio.all_tasks()) == before  # no background jobs left behind

    run(go())
