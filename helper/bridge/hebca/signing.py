"""HEBCA functions that sign, verify and digest (docs/hebca-compat.md, Signing)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from drivers import sm2
from drivers.errors import BadInput
from helper.bridge.hebca.connection import (
    HebcaConnection,
    HebcaRefused,
    b64_param,
    b64out,
    text_param,
)
from helper.bridge.hebca.table import FunctionTable
from helper.cms import verify_signed_data
from helper.errors import BadParams, CertificateNotFound

functions = FunctionTable()


@functions("SignText")
async def sign_text(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    text = text_param(p.get("signText"), "signText")
    try:
        data = text.encode(c.options.sign_text_encoding)
    except UnicodeEncodeError:
        raise BadParams(detail="the text cannot be encoded as GBK") from None
    entry = await c.by_sha(c.sign)
    return {"signature": b64out(await c.signed(entry, data, text))}


@functions("SignB64")
async def sign_b64(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    data = b64_param(p.get("b64data"), "b64data")
    entry = await c.by_sha(c.sign)
    return {"signature": b64out(await c.signed(entry, data, None))}


@functions("P7SignB64")
async def p7_sign_b64(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    data = b64_param(p.get("b64data"), "b64data")
    entry = await c.by_sha(c.sign)
    return {"b64data": b64out(await c.signed(entry, data, None, cms=True))}


@functions("P7VerifyB64")
async def p7_verify_b64(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    blob = b64_param(p.get("b64data"), "b64data")
    try:
        return {"result": verify_signed_data(blob)}
    except BadInput as exc:
        raise BadParams(detail=exc.detail) from None


@functions("UnUISign")
async def un_ui_sign(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    if not c.options.silent_sign:
        raise HebcaRefused()
    entry = await c.by_serial(p.get("certSN"))
    assert entry.model is not None
    session = c.gate.sessions.get(entry.token.serial, c.origin)
    if entry.model.sha256 not in c.logged_in_here or session is None:
        raise HebcaRefused()
    data = b64_param(p.get("b64data"), "b64data")
    c.used = entry.model.sha256
    c.gate.sessions.touch(session)
    return {"signature": b64out(await c.gate.sign(entry, data, c.algorithm(entry)))}


_DIGESTS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    name: (canonical, fn)
    for names, canonical, fn in (
        (("sha1", "sha-1"), "sha1", lambda b: hashlib.sha1(b).digest()),
        (("sha256", "sha-256"), "sha256", lambda b: hashlib.sha256(b).digest()),
        (("sm3",), "sm3", sm2.sm3),
    )
    for name in names
}


@functions("Digest")
async def digest(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    data = b64_param(p.get("b64data"), "b64data")
    alg = str(p.get("digestalg") or "").strip().lower()
    try:
        entry = await c.by_serial(p.get("certSN"))
    except (CertificateNotFound, BadParams):
        entry = None
    if entry is not None and entry.model is not None:
        alg = "sm3" if entry.model.key_type == "SM2" else "sha1"  # the doc's forced choice
    if alg not in _DIGESTS:
        raise BadParams(detail="unknown digest algorithm")
    name, fn = _DIGESTS[alg]
    return {"digest": b64out(fn(data)), "digestalg": name}
