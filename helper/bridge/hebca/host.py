"""HEBCA functions about the host rather than a certificate: the helper's version
(the one registry value a page may read), device reload, the certificate store."""

from __future__ import annotations

from typing import Any

from helper.bridge.hebca.connection import HebcaConnection, HebcaRefused, b64_param
from helper.bridge.hebca.table import FunctionTable

VERSION_KEY = "\\hkey_current_user\\software\\hebca\\clientx"

functions = FunctionTable()


def _reg_text(value: Any) -> str:
    raw = b64_param(value, "key")
    return raw.decode("utf-8", "surrogatepass").replace("\r\n", "\n")


@functions("ReadRegB64")
async def read_reg_b64(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    key, name = _reg_text(p.get("key")), _reg_text(p.get("name"))
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
