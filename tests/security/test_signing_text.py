"""Finding 1, second half: a `text` shown as what is signed must be what is signed.
The native endpoint refuses a `text` whose UTF-8 is not `data` (before any dialog,
nothing signed); the consent shows the text and, under it, the size, the codec and
the SHA-256 of the bytes (HEBCA SignText in GBK says GBK)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

from helper.bridge.hebca.settings import HebcaOriginOptions
from helper.ui.dialogs.texts import group_hex
from tests.support.bridge import call, challenge, running_bridge
from tests.support.desktop import Desktop
from tests.support.dialogs import consent_request
from tests.support.doubles import ScriptedPrompter
from tests.support.hebca import HALL, js, ok, running_hebca
from tests.support.tokens import USER_PIN

TEXT = "单位编号 1301 汇缴 2026-11 金额 12,345.00 元"


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 120))


def test_native_text_that_is_not_the_data_is_refused_before_any_dialog(
    driver, fixtures, state
) -> None:
    prompter = ScriptedPrompter()

    async def go() -> None:
        async with running_bridge(driver, fixtures, state, prompter) as b:
            ws = await b.ws()
            await call(ws, "auth.authenticate", {"challenge": challenge()})
            seen = len(prompter.calls)
            other = base64.b64encode("汇缴 99,999.00 元".encode()).decode()
            gbk = base64.b64encode(TEXT.encode("gbk")).decode()
            for rid, data in enumerate((other, gbk), start=2):
                res = await call(ws, "sign.data", {"data": data, "text": TEXT}, rid=rid)
                assert res["error"]["code"] == "bad_params", res
            assert len(prompter.calls) == seen  # no picker, no consent, no PIN
            assert [e["operation"] for e in b.audit()] == ["auth.authenticate"]  # no signature
            # the same text over its own UTF-8 is shown and signed
            data = base64.b64encode(TEXT.encode()).decode()
            res = await call(ws, "sign.data", {"data": data, "text": TEXT}, rid=4)
            assert res["result"]["signature"]
            consent = prompter.calls[-1][1]
            assert (consent.text, consent.text_encoding) == (TEXT, "UTF-8")
            assert consent.data_size == len(TEXT.encode())
            assert consent.data_sha256 == hashlib.sha256(TEXT.encode()).hexdigest()
            await ws.close()

    run(go())


def test_hebca_sign_text_in_gbk_says_so(driver, fixtures, state) -> None:
    prompter = ScriptedPrompter()
    options = {HALL: HebcaOriginOptions(page_pin=True, text_encoding="gbk")}

    async def go() -> None:
        async with running_hebca(driver, fixtures, state, prompter, hebca_origins=options) as h:
            ws = await h.ws(HALL)
            await ok(ws, "GetSignCert", '{"index":0}')
            await ok(ws, "Login", js(pin=USER_PIN))
            await ok(ws, "SignText", js(signText=TEXT))  # the login's first: no dialog
            assert "consent" not in prompter.kinds()
            await ok(ws, "SignText", js(signText=TEXT))
            kind, consent = prompter.calls[-1]
            assert kind == "consent" and consent.operation == "sign.data"
            assert (consent.text, consent.text_encoding) == (TEXT, "GBK")
            assert consent.data_sha256 == hashlib.sha256(TEXT.encode("gbk")).hexdigest()
            assert consent.data_size == len(TEXT.encode("gbk")) != len(TEXT.encode())
            await ws.close()

    run(go())


def test_the_window_shows_text_size_codec_and_digest(desk: Desktop) -> None:
    data = TEXT.encode()
    digest = hashlib.sha256(data).hexdigest()
    shown = desk.shown_texts(
        consent_request(
            operation="sign.data",
            text=TEXT,
            text_encoding="UTF-8",
            data_size=len(data),
            data_sha256=digest,
            allow_always=False,
        )
    )
    assert TEXT in shown
    assert any(f"{len(data)} 字节" in t and "UTF-8" in t for t in shown), shown
    lines = group_hex(digest).splitlines()
    assert any(t.startswith("SHA-256") and all(line in t for line in lines) for t in shown)
    assert "始终允许 (Always allow)" not in shown
