"""HEBCA functions that list, select and describe certificates."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from helper.bridge.hebca.connection import (
    HebcaConnection,
    b64out,
    flag_param,
    index_param,
    text_param,
)
from helper.bridge.hebca.table import FunctionTable
from helper.errors import BadParams
from helper.services.certificates import NoCertificate
from helper.services.tokens import CertEntry

CHINA_TIME = timezone(timedelta(hours=8))

functions = FunctionTable()


@functions("GetCertCount")
async def get_cert_count(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    return {"count": len(await c.sign_certs()) + len(await c.crypt_certs())}


@functions("GetSignCertCount")
async def get_sign_cert_count(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    return {"count": len(await c.sign_certs())}


async def _sign_cert_at(c: HebcaConnection, index: Any) -> CertEntry:
    certs = await c.sign_certs()
    i = index_param(index)
    if not 0 <= i < len(certs):
        raise NoCertificate()
    return certs[i]


@functions("GetSignCert")
async def get_sign_cert(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    c.select(await _sign_cert_at(c, p.get("index")), as_sign=True)
    return {}


@functions("SelectSignCert")
async def select_sign_cert(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    c.select(await c.pick(await c.sign_certs()), as_sign=True)
    return {}


@functions("SelectCryptCert")
async def select_crypt_cert(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    c.select(await c.pick(await c.crypt_certs()), as_crypt=True)
    return {}


@functions("SelectSignCertFilterDevice")
async def select_sign_cert_filter_device(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    names = {n.strip() for n in text_param(p.get("deviceNames", ""), "deviceNames").split(";")}
    names.discard("")
    candidates = [e for e in await c.sign_certs() if e.token.label not in names]
    c.select(await c.pick(candidates), as_sign=True)
    return {}


@functions("GetCertList")
async def get_cert_list(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    certs = await c.sign_certs()
    return {
        "certlist": ";".join(b64out(e.model.der) for e in certs if e.model),
        "certsnlist": ";".join(e.model.serial_hex for e in certs if e.model),
    }


@functions("IsCertOnline")
async def is_cert_online(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    cn = text_param(p.get("cn"), "cn")
    found = any(e.model and e.model.subject_cn == cn for e in await c.certificates())
    return {"result": 1 if found else 0}


@functions("GetSignCertNotAfter")
async def get_sign_cert_not_after(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    model = (await _sign_cert_at(c, p.get("index"))).model
    assert model is not None
    local = model.not_after.astimezone(CHINA_TIME)
    return {"certnotafter": local.strftime("%Y-%m-%d %H:%M:%S")}


_SUBJECT_ITEMS: dict[int, str] = {
    0: "CN",
    1: "O",
    2: "OU",
    3: "L",
    4: "ST",
    5: "C",
    6: "E",
    7: "G",
    8: "SERIALNUMBER",
    9: "T",
    10: "UID",
}
_ITEM_NAMES = {"SN": 8, "SERIALNUMBER": 8, "EMAIL": 6, "EMAILADDRESS": 6} | {
    v: k for k, v in _SUBJECT_ITEMS.items()
}


def subject_item(entry: CertEntry, index: Any) -> str:
    m = entry.model
    assert m is not None
    if isinstance(index, str) and not index.strip().isdigit():
        key = index.strip().upper()
        if key not in _ITEM_NAMES:
            raise BadParams(detail="unknown subject item")
        i = _ITEM_NAMES[key]
    else:
        i = index_param(index)
    if i not in _SUBJECT_ITEMS:
        raise BadParams(detail="unknown subject item index")
    name = _SUBJECT_ITEMS[i]
    if name == "UID":
        return m.hebca_unique_id or ""
    if name == "G":
        if m.hebca_unique_id:
            return m.hebca_unique_id
        return next((v for k, v in m.subject if k == "G"), "")
    return next((v for k, v in m.subject if k == name), "")


@functions("GetSubjectItem")
async def get_subject_item(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    return {"content": subject_item(await c.by_sha(c.current), p.get("index"))}


@functions("GetCertB64")
async def get_cert_b64(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    entry = await c.by_sha(c.current)
    assert entry.model is not None
    return {"cert": b64out(entry.model.der)}


@functions("GetPubKeyData")
async def get_pub_key_data(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    entry = await c.by_sha(c.sign if flag_param(p.get("signflag", True)) else c.crypt)
    assert entry.model is not None
    return {"pubkey": b64out(entry.model.spki_der)}
