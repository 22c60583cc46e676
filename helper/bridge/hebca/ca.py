"""HEBCA functions only a configured CA origin may call: renewal through the
legacy protocol, with the same checks and confirmations as ``renewal.*``."""

from __future__ import annotations

from typing import Any

from helper.bridge.hebca.connection import (
    HebcaConnection,
    HebcaUnsupported,
    b64_param,
    b64out,
    flag_param,
    text_param,
)
from helper.bridge.hebca.table import FunctionTable

functions = FunctionTable()

#: refused for every other origin (see refused.py)
CA_ONLY = frozenset({"GenKeyPair", "ImportCert"})


@functions("GenKeyPair")
async def gen_key_pair(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    """A new key pair on the key of the certificate named ``cn``, after the same
    window check, confirmation and PIN as ``renewal.request``: RSA for an RSA
    certificate (``rsaflag`` true), SM2 for an SM2 one (false; on SKF keys in a new
    container). The reply is the new public key as a base64 SubjectPublicKeyInfo
    (SM2: id-ecPublicKey on the SM2 curve — a choice, no evidence of another form)."""
    renewal = c.renewal()
    key_type = "RSA" if flag_param(p.get("rsaflag")) else "SM2"
    cn = text_param(p.get("cn", ""), "cn").strip()
    certs = [e for e in await c.sign_certs() if e.model and e.model.key_type == key_type]
    if not certs and key_type == "SM2":
        raise HebcaUnsupported(detail="no SM2 signing certificate to renew")
    named = [e for e in certs if e.model and e.model.subject_cn == cn] if cn else certs
    chosen = [e for e in named if e.model and e.model.sha256 in (c.sign, c.current)]
    entry = chosen[0] if chosen else await c.pick(named)
    c.select(entry, as_sign=True)
    spki, _key_id = await renewal.prepare_key(c.origin, entry, new_key=True)
    return {"pubkeyb64": b64out(spki)}


@functions("ImportCert")
async def import_cert(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    """``renewal.install`` with the same checks and confirmation."""
    renewal = c.renewal()
    der = b64_param(p.get("b64cert"), "b64cert")
    signing = flag_param(p.get("signflag", True))
    await renewal.install(c.origin, b64out(der), [], signing=signing)
    return {}
