"""HEBCA functions about the host rather than a certificate: the helper's version
(the one registry value a page may read), device reload, the certificate store."""

from __future__ import annotations

from typing import Any

from helper.bridge.hebca.connection import HebcaConnection, HebcaRefused, b64_param
from helper.bridge.hebca.table import FunctionTable
from helper.errors import BadParams

VERSION_KEY = "\\hkey_current_user\\software\\hebca\\clientx"

functions = FunctionTable()


def _reg_text(value: Any, name: str) -> str:
    raw = b64_param(value, name)
    try:
        return raw.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError:
        raise BadParams(detail=f"'{name}' is not UTF-8 text") from None


@functions("ReadRegB64")
async def read_reg_b64(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    key, name = _reg_text(p.get("key"), "key"), _reg_text(p.get("name"), "name")
    if key.lower() == VERSION_KEY and name.lower() == "version":
        return {"value": c.settings.version_number}
    raise HebcaRefused()


@functions("ReloadDevice")
async def reload_device(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    await c.gate.certificates.rescan()
    return {}


@functions("DeleteFromCertStore")
async def delete_from_cert_store(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    return {}  # no Windows certificate store here: nothing to clean
