"""What no web page gets (security.md, requirement 17), and the dispatch that
enforces it before any handler runs."""

from __future__ import annotations

from typing import Any

from helper.bridge.hebca import ca, certificates, host, login, signing
from helper.bridge.hebca.connection import RET_OK, HebcaConnection, HebcaRefused
from helper.bridge.hebca.table import Handler

#: refused for every origin, except ca.CA_ONLY ones for the configured CA origins
REFUSED = frozenset(
    {
        "Execute",
        "KillProcess",
        "WriteRegB64",
        "GetMachineInfo",
        "EncryptFile",
        "DecryptFile",
        "GenerateFileKeyB64",
        "OnlineFormatByURL",
        "OnlineResetPinByURL",
        "WriteDataB64",
        "WriteDataText",
        "DeleteData",
        "ReadDataB64",
        "ReadDataText",
        "CreateSM2SoftDevice",
        "GenKeyPair",
        "ImportECCKeyPair",
        "ImportCert",
        "GenerateAgreementDataWithECC",
        "GenerateAgreementDataAndKeyWithECC",
        "GenerateKeyWithECC",
        "EncryptWithAgreementKey",
        "DecryptWithAgreementKey",
        "EncryptB64",
        "DecryptB64",
        "EnvelopB64",
        "UnEnvelopB64",
    }
)

HANDLERS: dict[str, Handler] = {
    **certificates.functions.handlers,
    **login.functions.handlers,
    **signing.functions.handlers,
    **ca.functions.handlers,
    **host.functions.handlers,
}


async def dispatch(c: HebcaConnection, function: str, params: dict[str, Any]) -> dict[str, Any]:
    """The reply payload for one request (errors become ret/msg)."""
    handler = HANDLERS.get(function)
    if handler is None or (function in REFUSED and not (function in ca.CA_ONLY and c.is_ca)):
        raise HebcaRefused()
    result = await handler(c, params)
    return {"ret": RET_OK, **result}
