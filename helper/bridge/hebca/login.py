"""HEBCA functions that log in and out (our PIN dialog, or the page's PIN where configured)."""

from __future__ import annotations

from typing import Any

from helper.bridge.hebca.connection import HebcaConnection, PagePinRefused, text_param
from helper.bridge.hebca.table import FunctionTable

functions = FunctionTable()


@functions("UILogin")
async def ui_login(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    await c.dialog_login(await c.by_sha(c.current))
    return {}


@functions("Login", "CspLogin")
async def login(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    await c.page_login(await c.by_sha(c.sign), p.get("pin"))
    return {}


@functions("UnUICertLogin")
async def un_ui_cert_login(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    if not c.options.page_pin:
        raise PagePinRefused()
    entry = await c.by_serial(p.get("certSN"))
    c.select(entry, as_sign=True)
    await c.page_login(entry, p.get("password"))
    return {}


@functions("IsCertLogined")
async def is_cert_logined(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    cn = text_param(p.get("cn"), "cn")
    serials = {s.token_serial for s in c.gate.sessions.for_origin(c.origin)}
    found = any(
        e.model and e.model.subject_cn == cn and e.token.serial in serials
        for e in await c.certificates()
    )
    return {"result": found}


@functions("Logout")
async def logout(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    entry = await c.by_sha(c.sign)
    session = c.gate.sessions.get(entry.token.serial, c.origin)
    if session is not None:
        await c.gate.end_session(entry.token.serial)
    c.logged_in_here.discard(entry.model.sha256 if entry.model else "")
    return {"result": True}
