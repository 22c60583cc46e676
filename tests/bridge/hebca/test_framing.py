"""The endpoint's boundary and framing: admission before the upgrade, the
handshake, one reply per request in order, and parameters as the client
really builds them (concatenated, never escaped)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json

import aiohttp
import pytest
from aiohttp import WSMsgType
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from helper.services.prompts import ConsentChoice
from tests.support.doubles import ScriptedPrompter
from tests.support.hebca import (
    COMPANY,
    FAILED,
    HALL,
    NO_CERT,
    REFUSED,
    call,
    frame,
    handshake,
    js,
    ok,
    parse_reply,
    recv_text,
    running_hebca,
)
from tests.support.tokens import USER_PIN


def run(coro):
    return asyncio.run(coro)


def verify_rsa_sha256(cert_b64: str, sig_b64: str, data: bytes) -> None:
    cert = x509.load_der_x509_certificate(base64.b64decode(cert_b64))
    cert.public_key().verify(base64.b64decode(sig_b64), data, padding.PKCS1v15(), hashes.SHA256())


async def _login_company(ws) -> str:
    """Select company_sign (index 0), log in with the page's PIN; its certificate."""
    await ok(ws, "GetSignCert", '{"index":0}')
    await ok(ws, "Login", js(pin=USER_PIN))
    return (await ok(ws, "GetCertB64"))["cert"]


# --- admission -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        None,
        "null",
        "http://evil.example",
        "http://127.0.0.1:9011",
        "HTTP://127.0.0.1:9010",
        "http://127.0.0.1:9010/",
        "http://127.0.0.1.:9010",
        "file://",
    ],
)
def test_bad_origins_get_403_never_101(driver, fixtures, state, origin) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await h.ws(origin, shake=False)
            assert info.value.status == 403, origin
            assert h.prompter.calls == []  # none of these may even ask the user
            ws = await h.ws(HALL)  # the hall still gets in
            await ok(ws, "GetCertCount")
            await ws.close()

    run(go())


@pytest.mark.parametrize(
    "host", ["evil.example:{p}", "127.0.0.1:{q}", "127.0.0.1.evil.example:{p}"]
)
def test_bad_host_gets_421_never_101(driver, fixtures, state, host) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            headers = {
                "Host": host.format(p=h.port, q=h.port + 1),
                "Origin": HALL,
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            }
            async with h.http.get(h.url("/test"), headers=headers) as r:
                assert r.status == 421
            headers["X-Forwarded-Host"] = f"127.0.0.1:{h.port}"
            async with h.http.get(h.url("/test"), headers=headers) as r:
                assert r.status == 421

    run(go())


@pytest.mark.parametrize("host", ["127.0.0.1:{p}", "localhost:{p}", "[::1]:{p}"])
def test_loopback_hosts_upgrade(driver, fixtures, state, host) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            headers = {"Host": host.format(p=h.port), "Origin": HALL}
            ws = await h.http.ws_connect(h.url("/test"), headers=headers)
            await handshake(ws)
            assert (await ok(ws, "GetCertCount"))["count"] == 5
            await ws.close()

    run(go())


def test_https_origin_needs_the_users_consent(driver, fixtures, state) -> None:
    allowed, denied = "https://hall.example.cn", "https://other.example.cn"

    async def go() -> None:
        prompter = ScriptedPrompter(consents=[ConsentChoice.ONCE, ConsentChoice.DENY])
        async with running_hebca(driver, fixtures, state, prompter) as h:
            ws = await h.ws(allowed)  # allowed once
            assert prompter.kinds() == ["consent"]
            assert prompter.calls[0][1].origin == allowed
            await ok(ws, "GetCertCount")
            await ws.close()
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await h.ws(denied, shake=False)
            assert info.value.status == 403
            assert prompter.kinds() == ["consent", "consent"]
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await h.ws(denied, shake=False)  # the refusal was recorded: no new dialog
            assert info.value.status == 403
            assert prompter.kinds() == ["consent", "consent"]

    run(go())


# --- handshake and ordering ----------------------------------------------------------


def test_handshake_then_requests(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws(shake=False)
            await ws.send_str("0|1591600000000")
            text = await recv_text(ws)
            fields = text.split("|")
            assert fields[0] == "0" and "Welcome" in fields[1]
            assert (await ok(ws, "GetCertCount"))["count"] == 5
            await ws.close()

    run(go())


@pytest.mark.parametrize("hello", ["0", "0|", "0|1591600000000|extra", "0|x|y|z"])
def test_handshake_variants(driver, fixtures, state, hello) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws(shake=False)
            await ws.send_str(hello)
            fields = (await recv_text(ws)).split("|")
            assert fields[0] == "0" and "Welcome" in fields[1]
            assert (await ok(ws, "GetCertCount"))["count"] == 5
            await ws.close()

    run(go())


def test_no_unsolicited_frames(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws(shake=False)
            # Key2 holds an expiring and an expired certificate: nothing is announced
            with pytest.raises(asyncio.TimeoutError):
                await ws.receive(timeout=1.0)
            await handshake(ws)
            with pytest.raises(asyncio.TimeoutError):
                await ws.receive(timeout=1.0)
            await ws.close()

    run(go())


def test_request_before_the_handshake_is_answered(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws(shake=False)
            assert (await ok(ws, "GetSignCertCount"))["count"] == 4
            await handshake(ws)  # and a late handshake still works
            assert (await ok(ws, "GetCertCount"))["count"] == 5
            await ws.close()

    run(go())


def test_back_to_back_requests_get_one_reply_each_in_order(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            sent = [
                ("GetCertCount", None),
                ("GetSignCert", '{"index":1}'),
                ("GetCertB64", None),
                ("GetSignCertCount", None),
                ("NoSuchFunction", None),
                ("GetSubjectItem", '{"index":0}'),
            ]
            for func, param in sent:  # without waiting for any reply
                await ws.send_str(frame(func, param))
            replies = [parse_reply(await recv_text(ws)) for _ in sent]
            assert [r[1] for r in replies] == [f for f, _ in sent]
            rets = [r[2]["ret"] for r in replies]
            assert rets == [0, 0, 0, 0, REFUSED, 0]
            assert replies[0][2]["count"] == 5 and replies[3][2]["count"] == 4
            assert replies[5][2]["content"] == "沧州市测试贸易有限公司"
            # and nothing else arrives: no unsolicited frames
            with pytest.raises(asyncio.TimeoutError):
                await ws.receive(timeout=0.5)
            await ws.close()

    run(go())


def test_one_at_a_time_while_a_dialog_is_open(driver, fixtures, state) -> None:
    async def go() -> None:
        prompter = ScriptedPrompter(delay=0.8, pick=lambda cs: cs[-1].id)
        async with running_hebca(driver, fixtures, state, prompter) as h:
            ws = await h.ws()
            await ws.send_str("1|SelectSignCert")
            await ws.send_str("1|GetCertB64")
            await ws.send_str("1|GetCertCount")
            replies = [parse_reply(await recv_text(ws)) for _ in range(3)]
            assert [r[1] for r in replies] == ["SelectSignCert", "GetCertB64", "GetCertCount"]
            assert [r[2]["ret"] for r in replies] == [0, 0, 0]
            # GetCertB64 ran after the picker answered: it sees the chosen certificate
            der = base64.b64decode(replies[1][2]["cert"])
            assert hashlib.sha256(der).hexdigest() == fixtures.cert("expired")["sha256"]
            await ws.close()

    run(go())


def test_selection_is_per_connection(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws1 = await h.ws()
            ws2 = await h.ws()
            await ok(ws1, "GetSignCert", '{"index":0}')
            assert (await call(ws2, "GetCertB64"))["ret"] == NO_CERT
            await ok(ws2, "GetSignCert", '{"index":3}')
            for ws, name in ((ws1, "company_sign"), (ws2, "expired")):
                der = base64.b64decode((await ok(ws, "GetCertB64"))["cert"])
                assert hashlib.sha256(der).hexdigest() == fixtures.cert(name)["sha256"]
            await ws1.close()
            ws3 = await h.ws()  # a new connection starts with nothing selected
            assert (await call(ws3, "GetCertB64"))["ret"] == NO_CERT
            await ws2.close()
            await ws3.close()

    run(go())


def test_binary_frames_are_ignored(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            await ws.send_bytes(b"1|GetCertCount")
            await ws.send_bytes(b"\x00\xff" * 100)
            # the next frame to arrive is the reply to the next text request
            assert (await ok(ws, "GetSignCertCount"))["count"] == 4
            assert not ws.closed
            await ws.close()

    run(go())


def test_oversized_frame_closes_1009_and_the_next_connection_works(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            # just under the limit: answered
            data = bytes(range(256)) * 175  # 44800 bytes, about 60 KiB of base64
            param = js(certSN="00", b64data=base64.b64encode(data).decode(), digestalg="sha256")
            assert len(frame("Digest", param)) < 64 * 1024
            res = await ok(ws, "Digest", param)
            assert base64.b64decode(res["digest"]) == hashlib.sha256(data).digest()
            # over it: close 1009
            await ws.send_str(frame("SignText", js(signText="a" * (70 * 1024))))
            msg = await ws.receive(timeout=30)
            assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED), msg
            assert ws.close_code == 1009
            ws2 = await h.ws()
            assert (await ok(ws2, "GetCertCount"))["count"] == 5
            await ws2.close()
            assert h.prompter.calls == []

    run(go())


# --- parameters as the client builds them ------------------------------------------------


def test_raw_backslashes_are_literal(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            cert = await _login_company(ws)
            res = await ok(ws, "SignText", '{"signText":"C:\\a\\b.txt"}')
            verify_rsa_sha256(cert, res["signature"], rb"C:\a\b.txt")
            await ws.close()

    run(go())


def test_pipes_in_a_value_survive(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            cert = await _login_company(ws)
            await ws.send_str('1|SignText|{"signText":"a|b|c"}')
            text = await recv_text(ws)
            _, _, res = parse_reply(text, "SignText")  # asserts no raw | in the JSON
            assert res["ret"] == 0
            assert text.count("|") == 2
            verify_rsa_sha256(cert, res["signature"], b"a|b|c")
            await ws.close()

    run(go())


@pytest.mark.parametrize(
    "text",
    ['他说"你好"', "第一行\n第二行", 'a"b\nc|d\\e"}', '"', "tab\there\r\nend", 'x"}y'],
    ids=["quotes", "newline", "mixed", "lone-quote", "controls", "brace"],
)
def test_quotes_and_newlines_use_the_template(driver, fixtures, state, text) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            cert = await _login_company(ws)
            res = await ok(ws, "SignText", '{"signText":"' + text + '"}')
            verify_rsa_sha256(cert, res["signature"], text.encode())
            await ws.close()

    run(go())


def test_injected_key_does_not_override_the_first(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            cert = await _login_company(ws)
            # a page value 'a","signText":"b' written into the client's template
            res = await ok(ws, "SignText", '{"signText":"a","signText":"b"}')
            verify_rsa_sha256(cert, res["signature"], b"a")
            # the same in the lenient step (a raw backslash makes strict JSON fail)
            res = await ok(ws, "SignText", '{"signText":"C:\\a","signText":"b"}')
            verify_rsa_sha256(cert, res["signature"], b"C:\\a")
            # and in a field the client writes first
            res = await call(ws, "IsCertOnline", '{"cn":"nobody","cn":"' + COMPANY + '"}')
            assert res["ret"] == 0 and res["result"] == 0
            await ws.close()

    run(go())


def test_template_for_string_fields(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            # read by the template, so an answer, not a parameter error
            res = await call(ws, "IsCertOnline", '{"cn":"沧州"市"}')
            assert res == {"ret": 0, "result": 0}
            res = await call(ws, "IsCertLogined", '{"cn":"a"b|c"}')
            assert res == {"ret": 0, "result": False}
            await ws.close()

    run(go())


def test_undefined_index_is_an_error_reply(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            res = await call(ws, "GetSignCert", '{"index":undefined}')
            assert res["ret"] in (NO_CERT, FAILED), res
            res = await call(ws, "GetSignCertNotAfter", '{"index":undefined}')
            assert res["ret"] in (NO_CERT, FAILED), res
            assert (await call(ws, "GetCertB64"))["ret"] == NO_CERT  # nothing got selected
            assert (await ok(ws, "GetCertCount"))["count"] == 5  # still open
            await ws.close()

    run(go())


@pytest.mark.parametrize("param", ["{oops", "", "{", "[1,2]", '{"index":0', "null", '{"index":}'])
def test_unreadable_parameters_get_an_error_reply(driver, fixtures, state, param) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            await ws.send_str("1|GetSignCert|" + param)
            _, _, res = parse_reply(await recv_text(ws), "GetSignCert")
            if param == "":  # `1|GetSignCert|`: no index at all
                assert res["ret"] != 0
            else:
                assert res["ret"] == FAILED, res
            assert (await ok(ws, "GetCertCount"))["count"] == 5  # the connection is alive
            await ws.close()

    run(go())


def test_function_names_are_case_sensitive(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            for name in ("getcertcount", "GETCERTCOUNT", "GetCertCount ", " GetCertCount"):
                assert (await call(ws, name))["ret"] == REFUSED, name
            await ws.close()

    run(go())


# --- msg never carries page text -----------------------------------------------------------


def test_msg_never_echoes_page_text(driver, fixtures, state) -> None:
    name = "<img src=x onerror=alert(1)>"

    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            res = await call(ws, name)
            assert res["ret"] == REFUSED
            msgs = [res["msg"]]
            payload = "<script>alert('x')</script>"
            for func, param in [
                ("Execute", js(filename=payload, args=payload, wait=True)),
                ("WriteDataText", js(name=payload, data=payload, isprivate=False)),
                ("GetSubjectItem", js(index=payload)),
                ("GetSignCert", '{"index":' + payload + "}"),
                ("IsCertOnline", js(cn=payload)),
                ("UnUICertLogin", js(certSN=payload, password="x")),
                ("Digest", js(certSN=payload, b64data=payload, digestalg=payload)),
                ("ReadRegB64", js(key=payload, name=payload)),
            ]:
                res = await call(ws, func, param)
                assert payload not in json.dumps(res, ensure_ascii=False), (func, res)
                if res["ret"] != 0:
                    msgs.append(res["msg"])
            assert len(msgs) >= 7
            for msg in msgs:
                for bad in ("<img", "onerror", "alert", "<script", "script>", "<", ">"):
                    assert bad not in msg, msg
                assert any("\u4e00" <= ch <= "\u9fff" for ch in msg), msg  # a Chinese text
            await ws.close()

    run(go())
