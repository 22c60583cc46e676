"""Native API v1 behaviour against SoftHSM: login tokens, signing, sessions,
dialogs, limits, events and the audit trail."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import TokenFlag

from drivers.types import PinState
from helper.bridge.native.app import BackgroundSettings
from helper.errors import UserCancelled, UserTimeout
from helper.services.audit import verify_log
from helper.services.limits import GateSettings
from helper.services.prompts import ConsentChoice
from tests.support.bridge import HALL, call, challenge, running_bridge
from tests.support.doubles import AUDIT_KEY, ScriptedPrompter
from tests.support.flags import token_flags
from tests.support.tokens import BUILD, USER_PIN


def run(coro):
    return asyncio.run(coro)


def _pick(name_cn: str):
    return lambda choices: next(c.id for c in choices if c.subject_cn == name_cn)


COMPANY = "沧州市测试科技有限公司"
TRADE = "沧州市测试贸易有限公司"


def _verify_login_token(tok: dict, origin: str, chal: str) -> x509.Certificate:
    cert = x509.load_der_x509_certificate(base64.b64decode(tok["certificate"]))
    sig = base64.b64decode(tok["signature"])
    tbs = hashlib.sha256(origin.encode()).digest() + hashlib.sha256(chal.encode()).digest()
    key = cert.public_key()
    if tok["algorithm"] == "RS256":
        key.verify(sig, tbs, padding.PKCS1v15(), hashes.SHA256())
    else:
        half = len(sig) // 2
        der = encode_dss_signature(int.from_bytes(sig[:half]), int.from_bytes(sig[half:]))
        key.verify(der, tbs, ec.ECDSA(hashes.SHA256()))
    return cert


# --- certificates.list ---------------------------------------------------------------


def test_list_only_usable_certificates(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_bridge(driver, fixtures, state) as b:
            ws = await b.ws()
            certs = (await call(ws, "certificates.list"))["result"]["certificates"]
            names = sorted(c["subject"]["cn"] for c in certs)
            # sign + EC + expiring; not the encryption-only, expired, key-less, SM2, corrupt ones
            assert names == sorted([COMPANY, TRADE, "沧州市即将到期测试有限公司"])
            for c in certs:
                der = base64.b64decode(c["der"])
                assert hashlib.sha256(der).hexdigest() == c["sha256"]
                assert c["has_private_key"] and c["signing_supported"]
            await ws.close()
            assert b.prompter.calls == []  # a configured hall needs no consent to list

    run(go())


# --- auth.authenticate ----------------------------------------------------------------


@pytest.mark.parametrize(("name", "alg"), [(COMPANY, "RS256"), (TRADE, "ES256")])
def test_authenticate_signs_origin_and_challenge(driver, fixtures, state, name, alg) -> None:
    async def go() -> None:
        prompter = ScriptedPrompter(pick=_pick(name))
        async with running_bridge(driver, fixtures, state, prompter) as b:
            ws = await b.ws()
            chal = challenge()
            # an origin in the body is ignored: the Origin header is what gets signed
            res = await call(ws, "auth.authenticate", {"challenge": chal, "origin": "https://x"})
            tok = res["result"]
            assert tok["format"] == "certhelper-auth:1" and tok["origin"] == HALL
            assert tok["algorithm"] == alg and tok["app_version"] == "0.1.0"
            if alg == "ES256":
                assert len(base64.b64decode(tok["signature"])) == 64  # r||s
            cert = _verify_login_token(tok, HALL, chal)
            assert name in cert.subject.rfc4514_string()
            with pytest.raises(InvalidSignature):
                _verify_login_token(tok, "https://x", chal)
            assert prompter.kinds() == ["pick", "pin"]
            pin_req = prompter.calls[1][1]
            assert pin_req.origin == HALL and pin_req.insecure_origin
            assert pin_req.cert_subject == name and pin_req.token_label == "河北CA测试Key1"
            assert pin_req.pin_state is PinState.OK
            # within the session: no second PIN, and the same certificate is reused
            res2 = await call(ws, "auth.authenticate", {"challenge": challenge()}, rid=2)
            assert res2["result"]["certificate"] == tok["certificate"]
            assert prompter.kinds() == ["pick", "pin"]
            await ws.close()

    run(go())


def test_authenticate_with_certificate_filter(driver, fixtures, state) -> None:
    sha = fixtures.cert("trade_ec")["sha256"]

    async def go() -> None:
        async with running_bridge(driver, fixtures, state) as b:
            ws = await b.ws()
            chal = challenge()
            res = await call(ws, "auth.authenticate", {"challenge": chal, "certificate": sha[:20]})
            _verify_login_token(res["result"], HALL, chal)
            der = base64.b64decode(res["result"]["certificate"])
            assert hashlib.sha256(der).hexdigest() == sha
            assert b.prompter.kinds() == ["pin"]  # named: no picker
            res = await call(
                ws, "auth.authenticate", {"challenge": challenge(), "certificate": "ab" * 10}, rid=2
            )
            assert res["error"]["code"] == "no_certificate"
            await ws.close()

    run(go())


def test_short_or_bad_challenges(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_bridge(driver, fixtures, state) as b:
            ws = await b.ws()
            for bad in [
                challenge(31),
                "",
                "a" * 2000,
                base64.b64encode(b"x" * 40).decode() + "+/",
                challenge() + " ",
            ]:
                res = await call(ws, "auth.authenticate", {"challenge": bad})
                assert res["error"]["code"] == "bad_params", bad
            assert b.prompter.calls == []
            await ws.close()

    run(go())


@pytest.mark.parametrize(
    "params",
    [
        {"challenge": "x", "pin": USER_PIN},
        {"challenge": "x", "PIN": USER_PIN},
        {"data": "", "options": {"userPin": USER_PIN}},
        {"data": "", "list": [{"password": USER_PIN}]},
        {"Passwd": "1"},
    ],
)
def test_a_pin_in_a_request_is_refused(driver, fixtures, state, params) -> None:
    async def go() -> None:
        async with running_bridge(driver, fixtures, state) as b:
            ws = await b.ws()
            for method in ("auth.authenticate", "sign.data", "certificates.list"):
                res = await call(ws, method, params)
                assert res["error"]["code"] == "pin_not_accepted"
            assert b.prompter.calls == []
            await ws.close()

    run(go())


# --- dialogs: cancel, timeout, locked, attempts ----------------------------------------


@pytest.mark.parametrize(
    ("exc", "code"), [(UserCancelled(), "user_cancelled"), (UserTimeout(), "user_timeout")]
)
def test_pin_dialog_cancel_and_timeout(driver, fixtures, state, exc, code) -> None:
    async def go() -> None:
        prompter = ScriptedPrompter(pins=[exc], pick=_pick(COMPANY))
        async with running_bridge(driver, fixtures, state, prompter) as b:
            ws = await b.ws()
            res = await call(ws, "auth.authenticate", {"challenge": challenge()})
            assert res["error"]["code"] == code
            assert res["error"]["message_zh"]
            await ws.close()

    run(go())


def test_a_wrong_pin_is_a_retry_in_the_same_request(
    driver, fixtures, state, reset_pin_counters
) -> None:
    """The PIN dialog asks again, for the same certificate, saying the PIN was wrong and
    what the key says of the tries left; the page gets only the final outcome."""

    async def go() -> None:
        prompter = ScriptedPrompter(pins=["000000", USER_PIN], pick=_pick(COMPANY))
        async with running_bridge(driver, fixtures, state, prompter) as b:
            ws = await b.ws()
            res = await call(ws, "auth.authenticate", {"challenge": challenge()})
            assert "result" in res, res  # one request: wrong, then right
            pins = [r for k, r in prompter.calls if k == "pin"]
            assert [p.retry_note for p in pins] == [
                None,
                "密码错误，剩余尝试次数不多 (wrong PIN: few tries left)",  # SoftHSM: COUNT_LOW
            ]
            assert pins[1].cert_subject == COMPANY and pins[1].pin_state is PinState.COUNT_LOW
            assert prompter.kinds() == ["pick", "pin", "pin"]  # the choice is kept
            await ws.close()

    run(go())


def test_wrong_pins_are_capped_per_origin(driver, fixtures, state, reset_pin_counters) -> None:
    async def go() -> None:
        prompter = ScriptedPrompter(
            pins=["000000", "000001", "000002", USER_PIN], pick=_pick(COMPANY)
        )
        async with running_bridge(driver, fixtures, state, prompter) as b:
            ws = await b.ws()
            res = await call(ws, "auth.authenticate", {"challenge": challenge()})
            # three wrong PINs in the dialog, asked again each time; then the cap
            assert res["error"]["code"] == "pin_attempts_exceeded"
            assert prompter.kinds().count("pin") == 3  # the fourth never asked
            res = await call(ws, "auth.authenticate", {"challenge": challenge()}, rid=2)
            assert res["error"]["code"] == "pin_attempts_exceeded"
            assert prompter.kinds().count("pin") == 3
            states = [r.pin_state for k, r in prompter.calls if k == "pin"]
            assert states[0] is PinState.OK and states[1] is PinState.COUNT_LOW
            await ws.close()

    run(go())


def test_locked_token_is_never_tried(driver, fixtures, state) -> None:
    serial = fixtures.cert("company_sign")["token_serial"]
    slot = next(t.slot_id for t in driver.list_tokens() if t.serial == serial)

    async def go() -> None:
        prompter = ScriptedPrompter(pick=_pick(COMPANY))
        async with running_bridge(driver, fixtures, state, prompter) as b:
            ws = await b.ws()
            with token_flags(driver, TokenFlag.USER_PIN_LOCKED, {slot}):
                res = await call(ws, "auth.authenticate", {"challenge": challenge()})
            assert res["error"]["code"] == "pin_locked"
            assert "pin" not in prompter.kinds()
            with token_flags(driver, TokenFlag.USER_PIN_FINAL_TRY, {slot}):
                res = await call(ws, "auth.authenticate", {"challenge": challenge()}, rid=2)
            assert "result" in res
            assert prompter.calls[-1][1].pin_state is PinState.FINAL_TRY  # shown in the dialog
            await ws.close()

    run(go())


def test_dialogs_are_rate_limited_per_origin(driver, fixtures, state) -> None:
    async def go() -> None:
        prompter = ScriptedPrompter(pins=[UserCancelled() for _ in range(10)], pick=_pick(COMPANY))
        settings = GateSettings(dialogs_per_minute=1000, refusals_per_minute=3)
        async with running_bridge(driver, fixtures, state, prompter, settings=settings) as b:
            ws = await b.ws()
            codes = []
            for i in range(5):
                res = await call(ws, "auth.authenticate", {"challenge": challenge()}, rid=i)
                codes.append(res["error"]["code"])
            # three refused PIN dialogs, then the page is told to wait
            assert codes == ["user_cancelled"] * 3 + ["rate_limited"] * 2
            assert prompter.kinds().count("pin") == 3
            await ws.close()
        prompter = ScriptedPrompter(consents=[ConsentChoice.ONCE] * 10, pick=_pick(COMPANY))
        settings = GateSettings(dialogs_per_minute=4)
        async with running_bridge(driver, fixtures, state, prompter, settings=settings) as b:
            ws = await b.ws()
            sha = fixtures.cert("company_sign")["sha256"]
            codes = []
            for i in range(5):  # answered dialogs count against the total cap too
                res = await call(ws, "sign.data", {"data": "aGk=", "certificate": sha}, rid=i)
                codes.append(res.get("error", {}).get("code", "ok"))
            # consent + PIN, consent, consent (4 dialogs), then rate_limited
            assert codes == ["ok", "ok", "ok", "rate_limited", "rate_limited"]
            await ws.close()

    run(go())


def test_requests_in_flight_are_capped(driver, fixtures, state) -> None:
    async def go() -> None:
        prompter = ScriptedPrompter(delay=0.5, pick=_pick(COMPANY))
        async with running_bridge(driver, fixtures, state, prompter) as b:
            ws = await b.ws()
            for i in range(12):
                await ws.send_str(
                    json.dumps(
                        {
                            "id": i,
                            "method": "auth.authenticate",
                            "params": {"challenge": challenge()},
                        }
                    )
                )
            limited = 0
            for _ in range(12):
                data = await ws.receive_json(timeout=60)
                while "event" in data:
                    data = await ws.receive_json(timeout=60)
                if data.get("error", {}).get("code") == "rate_limited":
                    limited += 1
            assert limited == 4
            await ws.close()

    run(go())


# --- sessions -----------------------------------------------------------------------------


def test_sessions_end_on_logout_idle_and_other_origin(driver, fixtures, state) -> None:
    other = "http://127.0.0.1:9020"

    async def go() -> None:
        prompter = ScriptedPrompter(pick=_pick(COMPANY))
        async with running_bridge(
            driver, fixtures, state, prompter, origins=[HALL, other], idle_timeout=0.5
        ) as b:
            ws = await b.ws()
            auth = {"challenge": challenge()}
            await call(ws, "auth.authenticate", auth)
            await call(ws, "auth.authenticate", {"challenge": challenge()}, rid=2)
            assert prompter.kinds().count("pin") == 1
            assert (await call(ws, "auth.logout", rid=3))["result"]["logged_out"]
            await call(ws, "auth.authenticate", {"challenge": challenge()}, rid=4)
            assert prompter.kinds().count("pin") == 2
            await asyncio.sleep(1.0)  # idle timeout + sweep
            serial = fixtures.cert("company_sign")["token_serial"]
            assert not driver.is_logged_in(serial)  # the sweep logged the token out
            await call(ws, "auth.authenticate", {"challenge": challenge()}, rid=5)
            assert prompter.kinds().count("pin") == 3
            ws2 = await b.ws(other)  # another origin logs in: the first loses its session
            await call(ws2, "auth.authenticate", {"challenge": challenge()}, rid=6)
            assert prompter.kinds().count("pin") == 4
            await call(ws, "auth.authenticate", {"challenge": challenge()}, rid=7)
            assert prompter.kinds().count("pin") == 5
            await ws.close()
            await ws2.close()

    run(go())


# --- sign.data --------------------------------------------------------------------------


def test_sign_data_consent_shows_text_or_digest(driver, fixtures, state, tmp_path) -> None:
    text = "单位编号 1301 汇缴 2026-11 金额 12,345.00 元"
    data = text.encode()

    async def go() -> None:
        prompter = ScriptedPrompter(pick=_pick(COMPANY))
        async with running_bridge(driver, fixtures, state, prompter) as b:
            ws = await b.ws()
            await call(ws, "auth.authenticate", {"challenge": challenge()})
            b64 = base64.b64encode(data).decode()
            raw = await call(ws, "sign.data", {"data": b64, "format": "raw", "text": text}, rid=2)
            consent = prompter.calls[-1][1]
            assert consent.operation == "sign.data" and consent.text == text
            assert consent.data_sha256 == hashlib.sha256(data).hexdigest()
            assert consent.cert_subject == COMPANY and not consent.allow_always
            assert prompter.kinds().count("pin") == 1  # no second PIN in the session
            cert = x509.load_der_x509_certificate(base64.b64decode(raw["result"]["certificate"]))
            cert.public_key().verify(
                base64.b64decode(raw["result"]["signature"]),
                data,
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            cms = await call(ws, "sign.data", {"data": b64}, rid=3)
            consent = prompter.calls[-1][1]
            assert consent.text is None and consent.data_size == len(data)
            assert consent.data_sha256 == hashlib.sha256(data).hexdigest()
            p7, content = tmp_path / "s.p7s", tmp_path / "d"
            p7.write_bytes(base64.b64decode(cms["result"]["signature"]))
            content.write_bytes(data)
            proc = subprocess.run(
                [
                    "openssl",
                    "cms",
                    "-verify",
                    "-binary",
                    "-inform",
                    "DER",
                    "-in",
                    str(p7),
                    "-content",
                    str(content),
                    "-CAfile",
                    str(fixtures.ca_chain),
                    "-purpose",
                    "any",
                    "-out",
                    "/dev/null",
                ],
                capture_output=True,
            )
            assert proc.returncode == 0, proc.stderr
            await ws.close()

    run(go())


def test_sign_data_denied(driver, fixtures, state) -> None:
    async def go() -> None:
        prompter = ScriptedPrompter(
            consents=[ConsentChoice.DENY, UserCancelled()], pick=_pick(COMPANY)
        )
        async with running_bridge(driver, fixtures, state, prompter) as b:
            ws = await b.ws()
            res = await call(ws, "sign.data", {"data": "aGk="})
            assert res["error"]["code"] == "consent_denied"
            res = await call(ws, "sign.data", {"data": "aGk="}, rid=2)
            assert res["error"]["code"] == "user_cancelled"
            assert "pin" not in prompter.kinds()  # denied before any PIN
            await ws.close()

    run(go())


# --- concurrency, removal, events -------------------------------------------------------


def test_concurrent_clients(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_bridge(driver, fixtures, state) as b:
            socks = [await b.ws() for _ in range(10)]
            results = await asyncio.gather(*(call(s, "certificates.list") for s in socks))
            assert all(len(r["result"]["certificates"]) == 3 for r in results)
            for s in socks:
                await s.close()

    run(go())


PLUG_SPEC = """
schema = "certhelper-pki/1"
profiles = ["test"]
[pins]
user_pin = "123456"
so_pin = "12345678"
[ca.root]
file = "root-ca"
subject = { C = "CN", CN = "拔出测试根" }
key = { type = "RSA", bits = 2048 }
not_before_days = -1
validity_days = 365
key_usage = ["key_cert_sign", "crl_sign"]
[ca.issuing]
file = "issuing-ca"
subject = { C = "CN", CN = "拔出测试二级" }
key = { type = "RSA", bits = 2048 }
not_before_days = -1
validity_days = 365
key_usage = ["key_cert_sign", "crl_sign"]
[[token]]
name = "plug"
label = "拔出测试Key"
profiles = ["test"]
[[certificate]]
name = "plug_cert"
token = "plug"
label = "拔出测试证书"
subject = { C = "CN", CN = "沧州市拔出测试有限公司" }
key = { type = "EC", curve = "secp256r1" }
not_before_days = -1
not_after_days = 20
key_usage = ["digital_signature"]
"""


@pytest.fixture
def plug_token(tmp_path: Path) -> Path:
    spec = tmp_path / "plug.toml"
    spec.write_text(PLUG_SPEC, "utf-8")
    out = tmp_path / "plug"
    proc = subprocess.run(
        [sys.executable, str(BUILD), str(out), "--spec", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (token_dir,) = [p for p in (out / "tokens").iterdir() if p.is_dir()]
    return token_dir


def test_events_and_removal_mid_operation(driver, fixtures, state, plug_token: Path) -> None:
    tokendir = fixtures.dir / "tokens"
    plugged = tokendir / plug_token.name

    async def go() -> None:
        prompter = ScriptedPrompter(pick=_pick("沧州市拔出测试有限公司"))
        background = BackgroundSettings(hotplug_interval=0.2, session_sweep=0.2)
        async with running_bridge(driver, fixtures, state, prompter, background=background) as b:
            ws = await b.ws()
            first = [await ws.receive_json(timeout=10) for _ in range(2)]  # Key2's two
            assert {e["event"] for e in first} == {"certificate.expiring"}
            assert {e["data"]["expiry_state"] for e in first} == {"urgent", "expired"}
            shutil.copytree(plug_token, plugged)
            events = []
            while len(events) < 2:
                msg = await ws.receive_json(timeout=20)
                if msg.get("event") in ("token.inserted", "certificate.expiring") and (
                    msg["data"].get("label") == "拔出测试Key"
                    or msg["data"].get("subject_cn") == "沧州市拔出测试有限公司"
                ):
                    events.append(msg)
            assert [e["event"] for e in events] == ["token.inserted", "certificate.expiring"]
            assert events[1]["data"]["expiry_state"] == "warning"

            original = prompter.ask_pin

            async def ask_pin(request):  # the key is pulled while the PIN dialog is open
                shutil.rmtree(plugged)
                return await original(request)

            prompter.ask_pin = ask_pin  # type: ignore[method-assign]
            res = await call(ws, "auth.authenticate", {"challenge": challenge()}, rid=9)
            assert res["error"]["code"] in ("token_absent", "device_error"), res
            removed = None
            while removed is None:
                msg = await ws.receive_json(timeout=20)
                if msg.get("event") == "token.removed":
                    removed = msg
            assert removed["data"]["label"] == "拔出测试Key"
            prompter.ask_pin = original  # type: ignore[method-assign]
            # the daemon keeps serving the other keys
            res = await call(ws, "certificates.list", rid=10)
            assert len(res["result"]["certificates"]) == 3
            await ws.close()

    try:
        run(go())
    finally:
        shutil.rmtree(plugged, ignore_errors=True)
        driver.list_tokens(rescan=True)


# --- audit and secrecy ---------------------------------------------------------------------


def test_audit_chain_and_no_pin_anywhere(driver, fixtures, state, caplog) -> None:
    caplog.set_level(logging.DEBUG)

    async def go() -> None:
        prompter = ScriptedPrompter(pick=_pick(COMPANY))
        async with running_bridge(driver, fixtures, state, prompter) as b:
            ws = await b.ws()
            await call(ws, "certificates.list")
            await call(ws, "auth.authenticate", {"challenge": challenge()}, rid=2)
            await call(
                ws, "sign.data", {"data": base64.b64encode(b"SECRET-PAYLOAD").decode()}, rid=3
            )
            await call(ws, "auth.logout", rid=4)
            await ws.close()

    run(go())
    lines = [json.loads(x) for x in (state / "audit.jsonl").read_text().splitlines()]
    assert [(e["operation"], e["outcome"]) for e in lines] == [
        ("certificates.list", "ok"),
        ("auth.authenticate", "ok"),
        ("sign.data", "ok"),
        ("auth.logout", "ok"),
    ]
    assert lines[1]["certificate"] == fixtures.cert("company_sign")["sha256"]
    assert verify_log(state / "audit.jsonl", AUDIT_KEY).ok
    for path in state.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert USER_PIN.encode() not in blob, path
            assert b"SECRET-PAYLOAD" not in blob and base64.b64encode(b"SECRET-PAYLOAD") not in blob
    assert USER_PIN not in caplog.text
    # tampering is detected
    text = (state / "audit.jsonl").read_text().replace('"sign.data"', '"auth.logout"', 1)
    (state / "audit.jsonl").write_text(text)
    verdict = verify_log(state / "audit.jsonl", AUDIT_KEY)
    assert not verdict.ok and "line 3" in verdict.message
