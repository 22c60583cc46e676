"""Login over the HEBCA protocol: certhelper's PIN dialog (UILogin), the page's
PIN (Login, CspLogin, UnUICertLogin) only for origins configured with
page_pin, wrong PINs, locked keys, and PINs kept out of every log
(docs/hebca-compat.md, "Login")."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from pkcs11 import TokenFlag

from drivers.types import PinState
from helper.bridge.hebca.settings import HebcaOriginOptions
from helper.errors import UserCancelled
from tests.support.doubles import ScriptedPrompter
from tests.support.flags import token_flags
from tests.support.hebca import (
    COMPANY,
    FAILED,
    HALL,
    KEY1,
    NO_CERT,
    OTHER,
    REFUSED,
    TRADE,
    call,
    js,
    ok,
    running_hebca,
    slot_of,
)
from tests.support.tokens import USER_PIN

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def run(coro):
    return asyncio.run(coro)


def sha(cert_b64: str) -> str:
    return hashlib.sha256(base64.b64decode(cert_b64)).hexdigest()


def verify_rsa(cert_b64: str, sig_b64: str, data: bytes) -> None:
    cert = x509.load_der_x509_certificate(base64.b64decode(cert_b64))
    cert.public_key().verify(base64.b64decode(sig_b64), data, padding.PKCS1v15(), hashes.SHA256())


def key1(fixtures) -> str:
    return fixtures.cert("company_sign")["token_serial"]


def key2(fixtures) -> str:
    return fixtures.cert("expiring")["token_serial"]


# --- UILogin, Login, CspLogin, IsCertLogined, Logout ---------------------------------------


def test_ui_login_asks_certhelpers_pin_dialog(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            assert (await call(ws, "UILogin"))["ret"] == NO_CERT  # nothing selected
            assert h.prompter.calls == []
            await ok(ws, "GetSignCert", '{"index":1}')  # trade_ec on Key1
            assert (await ok(ws, "IsCertLogined", js(cn=TRADE)))["result"] is False
            await ok(ws, "UILogin")
            assert h.prompter.kinds() == ["pin"]
            request = h.prompter.calls[0][1]
            assert request.origin == HALL and request.insecure_origin
            assert request.token_label == KEY1 and request.cert_subject == TRADE
            assert driver.is_logged_in(key1(fixtures))
            # every certificate on that key counts as logged in; Key2's do not
            assert (await ok(ws, "IsCertLogined", js(cn=TRADE)))["result"] is True
            assert (await ok(ws, "IsCertLogined", js(cn=COMPANY)))["result"] is True
            expiring_cn = fixtures.cert("expiring")["subject_cn"]
            assert (await ok(ws, "IsCertLogined", js(cn=expiring_cn)))["result"] is False
            assert (await ok(ws, "IsCertLogined", js(cn="不存在的公司")))["result"] is False
            assert (await ok(ws, "Logout"))["result"] is True
            assert (await ok(ws, "IsCertLogined", js(cn=TRADE)))["result"] is False
            assert not driver.is_logged_in(key1(fixtures))
            await ws.close()

    run(go())


def test_ui_login_cancelled(driver, fixtures, state) -> None:
    async def go() -> None:
        prompter = ScriptedPrompter(pins=[UserCancelled()])
        async with running_hebca(driver, fixtures, state, prompter) as h:
            ws = await h.ws()
            await ok(ws, "GetSignCert", '{"index":0}')
            assert (await call(ws, "UILogin"))["ret"] == FAILED
            assert (await ok(ws, "IsCertLogined", js(cn=COMPANY)))["result"] is False
            await ws.close()

    run(go())


@pytest.mark.parametrize("func", ["Login", "CspLogin"])
def test_page_pin_login(driver, fixtures, state, func) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            await ok(ws, "GetSignCert", '{"index":0}')
            await ok(ws, func, js(pin=USER_PIN))
            assert h.prompter.calls == []  # the page's PIN: no dialog
            assert driver.is_logged_in(key1(fixtures))
            assert (await ok(ws, "IsCertLogined", js(cn=COMPANY)))["result"] is True
            assert (await ok(ws, "Logout"))["result"] is True
            assert (await ok(ws, "IsCertLogined", js(cn=COMPANY)))["result"] is False
            assert not driver.is_logged_in(key1(fixtures))
            await ws.close()

    run(go())


def test_login_without_a_sign_cert(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            assert (await call(ws, "Login", js(pin=USER_PIN)))["ret"] == NO_CERT
            await ok(ws, "SelectCryptCert")  # a crypt certificate is no sign certificate
            assert (await call(ws, "Login", js(pin=USER_PIN)))["ret"] == NO_CERT
            assert not driver.is_logged_in(key1(fixtures))
            await ws.close()

    run(go())


def test_un_ui_cert_login(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            entry = fixtures.cert("expiring")
            await ok(ws, "UnUICertLogin", js(certSN=entry["serial_hex"], password=USER_PIN))
            assert h.prompter.calls == []
            # it selected that sign certificate
            cert_b64 = (await ok(ws, "GetCertB64"))["cert"]
            assert sha(cert_b64) == entry["sha256"]
            assert driver.is_logged_in(key2(fixtures))
            assert (await ok(ws, "IsCertLogined", js(cn=entry["subject_cn"])))["result"] is True
            assert (await ok(ws, "IsCertLogined", js(cn=COMPANY)))["result"] is False
            # it is the sign certificate too: the login's own signature needs no dialog
            res = await ok(ws, "SignText", js(signText="challenge"))
            verify_rsa(cert_b64, res["signature"], b"challenge")
            assert h.prompter.calls == []
            # an unknown serial: no such certificate, nothing tried
            res = await call(ws, "UnUICertLogin", js(certSN="00FF", password=USER_PIN))
            assert res["ret"] == NO_CERT
            # the crypt certificate's serial is no sign certificate's
            enc = fixtures.cert("company_enc")["serial_hex"]
            res = await call(ws, "UnUICertLogin", js(certSN=enc, password=USER_PIN))
            assert res["ret"] == NO_CERT
            assert not driver.is_logged_in(key1(fixtures))
            await ws.close()

    run(go())


def test_login_state_is_shared_per_origin_and_token(driver, fixtures, state) -> None:
    async def go() -> None:
        options = {
            HALL: HebcaOriginOptions(page_pin=True),
            OTHER: HebcaOriginOptions(page_pin=True),
        }
        async with running_hebca(
            driver, fixtures, state, origins=[HALL, OTHER], hebca_origins=options
        ) as h:
            ws1 = await h.ws(HALL)
            await ok(ws1, "GetSignCert", '{"index":0}')
            await ok(ws1, "Login", js(pin=USER_PIN))
            # the same origin's other connection sees the login
            ws2 = await h.ws(HALL)
            assert (await ok(ws2, "IsCertLogined", js(cn=COMPANY)))["result"] is True
            # another origin is not logged in ...
            ws3 = await h.ws(OTHER)
            assert (await ok(ws3, "IsCertLogined", js(cn=COMPANY)))["result"] is False
            # ... and its login ends the first origin's
            await ok(ws3, "GetSignCert", '{"index":1}')
            await ok(ws3, "Login", js(pin=USER_PIN))
            assert (await ok(ws3, "IsCertLogined", js(cn=TRADE)))["result"] is True
            assert (await ok(ws1, "IsCertLogined", js(cn=COMPANY)))["result"] is False
            # so the first origin's next signature needs a PIN again (the dialog)
            await ok(ws1, "SignText", js(signText="x"))
            assert h.prompter.kinds() == ["pin"]
            for ws in (ws1, ws2, ws3):
                await ws.close()

    run(go())


def test_idle_login_expires(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state, idle_timeout=0.5) as h:
            ws = await h.ws()
            await ok(ws, "GetSignCert", '{"index":0}')
            await ok(ws, "Login", js(pin=USER_PIN))
            assert (await ok(ws, "IsCertLogined", js(cn=COMPANY)))["result"] is True
            await asyncio.sleep(1.0)
            assert (await ok(ws, "IsCertLogined", js(cn=COMPANY)))["result"] is False
            await ok(ws, "SignText", js(signText="x"))  # the session is gone: the PIN dialog
            assert h.prompter.kinds() == ["pin"]
            await ws.close()

    run(go())


# --- page PINs only where configured ---------------------------------------------------------


def test_page_pin_refused_for_other_origins(driver, fixtures, state, reset_pin_counters) -> None:
    third = "http://127.0.0.1:9030"  # a bridge origin without any HEBCA options

    async def go() -> None:
        options = {HALL: HebcaOriginOptions(page_pin=True), OTHER: HebcaOriginOptions()}
        async with running_hebca(
            driver, fixtures, state, origins=[HALL, OTHER, third], hebca_origins=options
        ) as h:
            for origin in (OTHER, third):
                ws = await h.ws(origin)
                await ok(ws, "GetSignCert", '{"index":0}')
                sn = fixtures.cert("company_sign")["serial_hex"]
                for func, param in [
                    ("Login", js(pin="000000")),
                    ("CspLogin", js(pin="000000")),
                    ("UnUICertLogin", js(certSN=sn, password="000000")),
                    ("Login", js(pin=USER_PIN)),
                ]:
                    res = await call(ws, func, param)
                    assert res["ret"] == REFUSED, (origin, func, res)
                    assert h.hebca_audit()[-1]["operation"] == f"hebca:{func}"
                    assert h.hebca_audit()[-1]["outcome"] != "ok"
                await ws.close()
            assert h.prompter.calls == []  # no PIN dialog instead either
            # no PIN was tried: the wrong ones would have set the count-low flag
            assert driver.token_info(key1(fixtures)).pin_state is PinState.OK
            assert not driver.is_logged_in(key1(fixtures))
            # the page_pin origin may
            ws = await h.ws(HALL)
            await ok(ws, "GetSignCert", '{"index":0}')
            await ok(ws, "Login", js(pin=USER_PIN))
            await ws.close()

    run(go())


def test_wrong_pin(driver, fixtures, state, reset_pin_counters) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            await ok(ws, "GetSignCert", '{"index":0}')
            for func, param, pin in [
                ("Login", js(pin="8461937205"), "8461937205"),
                ("CspLogin", js(pin="000000"), "000000"),
                (
                    "UnUICertLogin",
                    js(certSN=fixtures.cert("company_sign")["serial_hex"], password="97531"),
                    "97531",
                ),
            ]:
                res = await call(ws, func, param)
                assert res["ret"] == FAILED, (func, res)
                assert CHINESE.search(res["msg"]), res
                assert pin not in res["msg"]
            assert h.prompter.calls == []  # never a dialog instead
            assert not driver.is_logged_in(key1(fixtures))
            assert (await ok(ws, "IsCertLogined", js(cn=COMPANY)))["result"] is False
            await ws.close()

    run(go())


def test_three_wrong_pins_then_no_more_tries(driver, fixtures, state, reset_pin_counters) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            await ok(ws, "GetSignCert", '{"index":0}')
            for pin in ("000000", "000001", "000002"):
                assert (await call(ws, "Login", js(pin=pin)))["ret"] == FAILED
            # the fourth, even the right PIN, is refused without being tried
            res = await call(ws, "Login", js(pin=USER_PIN))
            assert res["ret"] != 0
            assert res["ret"] in (FAILED, REFUSED)
            assert not driver.is_logged_in(key1(fixtures))
            res = await call(
                ws,
                "UnUICertLogin",
                js(certSN=fixtures.cert("expiring")["serial_hex"], password=USER_PIN),
            )
            assert res["ret"] != 0  # per origin: another key of the same origin too
            assert not driver.is_logged_in(key2(fixtures))
            outcomes = [
                e["outcome"] for e in h.hebca_audit() if e["operation"] != "hebca:GetSignCert"
            ]
            assert outcomes == ["pin_incorrect"] * 3 + ["pin_attempts_exceeded"] * 2
            assert h.prompter.calls == []
            await ws.close()

    run(go())


def test_locked_key_is_never_tried(driver, fixtures, state) -> None:
    serial = key1(fixtures)
    slot = slot_of(driver, serial)

    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            await ok(ws, "GetSignCert", '{"index":0}')
            with token_flags(driver, TokenFlag.USER_PIN_LOCKED, {slot}):
                res = await call(ws, "Login", js(pin=USER_PIN))
                assert res["ret"] == FAILED, res
                assert CHINESE.search(res["msg"])
                sn = fixtures.cert("company_sign")["serial_hex"]
                res = await call(ws, "UnUICertLogin", js(certSN=sn, password=USER_PIN))
                assert res["ret"] == FAILED, res
                res = await call(ws, "UILogin")
                assert res["ret"] == FAILED, res
                assert not driver.is_logged_in(serial)  # a right PIN would have logged in
            assert h.prompter.calls == []  # not even the dialog
            await ws.close()

    run(go())


def test_password_with_a_quote_reaches_the_key(driver, fixtures, state, reset_pin_counters) -> None:
    """UnUICertLogin's fields are all strings: the template match reads a
    password the client wrote raw, quote included (it is wrong, so tried once)."""
    serial = key1(fixtures)

    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            sn = fixtures.cert("company_sign")["serial_hex"]
            assert driver.token_info(serial).pin_state is PinState.OK
            res = await call(ws, "UnUICertLogin", '{"certSN":"' + sn + '","password":"12"34"}')
            assert res["ret"] == FAILED and "12" not in res["msg"]
            assert h.hebca_audit()[-1]["outcome"] == "pin_incorrect"
            assert driver.token_info(serial).pin_state is PinState.COUNT_LOW  # it was tried
            await ws.close()

    run(go())


# --- PINs stay secret --------------------------------------------------------------------------


def test_pins_appear_in_no_log_audit_or_file(
    driver, fixtures, state, caplog, reset_pin_counters
) -> None:
    caplog.set_level(logging.DEBUG)
    sentinel = "8461937205"

    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            await ok(ws, "GetSignCert", '{"index":0}')
            assert (await call(ws, "Login", js(pin=sentinel)))["ret"] == FAILED
            await ok(ws, "Login", js(pin=USER_PIN))
            await ok(ws, "SignText", js(signText="challenge"))
            await ok(ws, "Logout")
            sn = fixtures.cert("company_sign")["serial_hex"]
            res = await call(ws, "UnUICertLogin", js(certSN=sn, password=sentinel))
            assert res["ret"] == FAILED and sentinel not in res["msg"]
            await ok(ws, "UnUICertLogin", js(certSN=sn, password=USER_PIN))
            await ok(ws, "CspLogin", js(pin=USER_PIN))
            await ws.close()
            ops = [(e["operation"], e["outcome"] == "ok") for e in h.hebca_audit()]
            assert ops == [
                ("hebca:GetSignCert", True),
                ("hebca:Login", False),
                ("hebca:Login", True),
                ("hebca:SignText", True),
                ("hebca:Logout", True),
                ("hebca:UnUICertLogin", False),
                ("hebca:UnUICertLogin", True),
                ("hebca:CspLogin", True),
            ]
            assert h.hebca_audit()[3]["certificate"] == fixtures.cert("company_sign")["sha256"]

    run(go())
    for path in state.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            for secret in (USER_PIN, sentinel):
                assert secret.encode() not in blob, path
                assert secret.encode("utf-16-le") not in blob, path
                assert base64.b64encode(secret.encode()) not in blob, path
    assert USER_PIN not in caplog.text
    assert sentinel not in caplog.text
