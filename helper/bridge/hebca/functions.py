"""The HEBCA functions: what each wire name does for one connection.

State per connection (protocol doc, section 2.4): the current, sign and crypt
certificate, kept by SHA-256 so a refreshed certificate cache cannot shift a
selection. Logins are the bridge's login sessions (per origin and key).
Everything a page may not do is refused here with 1007 and never executed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from typing import Any

from drivers.errors import BadInput, CertHelperError, register
from drivers.types import Pin, SignAlgorithm
from helper.bridge.hebca.settings import HebcaOriginOptions, HebcaSettings
from helper.cms import verify_signed_data
from helper.errors import CertificateNotFound
from helper.services.bridge_service import BadParams, BridgeService, NoCertificate
from helper.services.renewal import RenewalService
from helper.services.tokens import CertEntry, algorithm_for

RET_OK = 0
RET_NO_CERT = -536145917  # 0xE00B1003: certificate / key not present
RET_FAILED = -536145887  # 0xE00B1021: operation failed, re-plug the key
RET_UNSUPPORTED = 1007  # the client's "function not supported"

CHINA_TIME = timezone(timedelta(hours=8))
VERSION_KEY = "\\hkey_current_user\\software\\hebca\\clientx"

_NO_CERT_CODES = {
    "no_certificate",
    "cert_not_found",
    "token_absent",
    "token_not_found",
    "key_not_found",
    "hebca_not_selected",
}
_UNSUPPORTED_CODES = {
    "hebca_refused",
    "hebca_unsupported",
    "signing_unsupported",
    "mechanism_unsupported",
    "pin_not_accepted",
}


@register
class HebcaRefused(CertHelperError):
    code = "hebca_refused"
    message_zh = "出于安全考虑，证书助手不向网页提供该功能"
    message_en = "certhelper does not offer this function to web pages"
    exit_code = 6


@register
class HebcaUnsupported(CertHelperError):
    code = "hebca_unsupported"
    message_zh = "证书助手暂不支持该功能（如 SM3 摘要）"
    message_en = "Not supported yet (e.g. SM3 digests)"
    exit_code = 6


@register
class HebcaNotSelected(CertHelperError):
    code = "hebca_not_selected"
    message_zh = "尚未选择证书"
    message_en = "No certificate has been selected"
    exit_code = 5


@register
class PagePinRefused(CertHelperError):
    code = "page_pin_refused"
    message_zh = "该网站不能代为输入密码，请在证书助手的窗口中输入"
    message_en = "This site may not pass a PIN; type it into the helper's own dialog"
    exit_code = 6


def ret_for(exc: CertHelperError) -> int:
    if exc.code in _NO_CERT_CODES:
        return RET_NO_CERT
    if exc.code in _UNSUPPORTED_CODES or exc.code == "page_pin_refused":
        return RET_UNSUPPORTED
    return RET_FAILED


def error_payload(exc: CertHelperError) -> dict[str, Any]:
    """``msg`` is one of our fixed texts, never page input (the client writes
    it into the page with innerHTML)."""
    return {"ret": ret_for(exc), "msg": html.escape(f"{exc.message_zh} ({exc.message_en})")}


@dataclass
class HebcaConnection:
    origin: str
    options: HebcaOriginOptions
    settings: HebcaSettings
    service: BridgeService
    current: str | None = None
    sign: str | None = None
    crypt: str | None = None
    #: the certificate whose key this connection logged in to (UnUISign's condition)
    logged_in_here: set[str] = field(default_factory=set)
    #: the certificate used by the last request (for the audit trail)
    used: str | None = None

    @property
    def is_ca(self) -> bool:
        """A configured CA origin: the only kind that may renew certificates."""
        return self.service.renewal is not None and self.service.renewal.is_ca(self.origin)

    def renewal(self) -> RenewalService:
        if self.service.renewal is None or not self.is_ca:
            raise HebcaRefused()
        return self.service.renewal

    # --- certificates ---------------------------------------------------------

    async def certificates(self) -> list[CertEntry]:
        entries = [
            e
            for e in await self.service.entries()
            if e.model is not None and e.private_key and not e.archived
        ]
        return sorted(
            entries,
            key=lambda e: (e.token.label, e.token.serial, e.model.subject_cn, e.model.serial_hex),  # type: ignore[union-attr]
        )

    async def sign_certs(self) -> list[CertEntry]:
        return [e for e in await self.certificates() if e.model and e.model.is_signing_cert]

    async def crypt_certs(self) -> list[CertEntry]:
        return [e for e in await self.certificates() if e.model and e.model.is_encryption_cert]

    async def by_sha(self, sha: str | None) -> CertEntry:
        if sha is None:
            raise HebcaNotSelected()
        for e in await self.certificates():
            if e.model and e.model.sha256 == sha:
                self.used = sha
                return e
        raise NoCertificate(detail="the selected certificate is no longer inserted")

    async def by_serial(self, serial: Any) -> CertEntry:
        wanted = _text(serial, "certSN").strip().upper().removeprefix("0X")
        for e in await self.sign_certs():
            if e.model and wanted in (e.model.serial_hex, e.model.serial_hex.lstrip("0")):
                return e
        raise CertificateNotFound()

    def select(self, entry: CertEntry, *, as_sign: bool = False, as_crypt: bool = False) -> None:
        assert entry.model is not None
        self.current = entry.model.sha256
        self.used = entry.model.sha256
        if as_sign:
            self.sign = entry.model.sha256
        if as_crypt:
            self.crypt = entry.model.sha256

    async def pick(self, candidates: list[CertEntry]) -> CertEntry:
        if not candidates:
            raise NoCertificate()
        # an explicit Select… always lets the person choose when several fit
        return await self.service.choose(self.origin, candidates, prefer_session=False)

    # --- login and signing ----------------------------------------------------

    async def page_login(self, entry: CertEntry, pin_value: Any) -> None:
        if not self.options.page_pin:
            raise PagePinRefused()
        pin = Pin(_text(pin_value, "pin"))
        await self.service.login_with_page_pin(self.origin, entry, pin)
        assert entry.model is not None
        self.logged_in_here.add(entry.model.sha256)

    async def dialog_login(self, entry: CertEntry) -> None:
        await self.service.ensure_login(self.origin, "auth.authenticate", entry)
        assert entry.model is not None
        self.logged_in_here.add(entry.model.sha256)

    def algorithm(self, entry: CertEntry) -> SignAlgorithm:
        assert entry.model is not None
        if entry.model.key_type == "RSA" and self.options.rsa_hash == "sha1":
            return algorithm_for(entry.model, legacy_sha1=True)
        return algorithm_for(entry.model)

    async def signed(
        self, entry: CertEntry, data: bytes, text: str | None, *, cms: bool = False
    ) -> bytes:
        """Sign with the login's first signature free of a dialog, and every later
        one confirmed by the person (docs/hebca-compat.md, Signing)."""
        algorithm = self.algorithm(entry)  # SM2 and the like refused before any dialog
        session = await self.service.ensure_login(self.origin, "sign.data", entry)
        assert entry.model is not None
        self.logged_in_here.add(entry.model.sha256)
        if session.just_logged_in:
            session.just_logged_in = False
        else:
            await self.service.confirm_signing(self.origin, entry, data, text)
        self.service.sessions.touch(session)
        if cms:
            return await self.service.sign_cms(entry, data, algorithm, detached=False)
        return await self.service.sign_raw(entry, data, algorithm)


# --- parameter helpers ---------------------------------------------------------


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise BadParams(detail=f"'{name}' must be a string")
    return value


def _b64(value: Any, name: str) -> bytes:
    text = _text(value, name).strip().replace("\r", "").replace("\n", "")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadParams(detail=f"'{name}' is not base64") from None


def _index(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        raise BadParams(detail="'index' must be a number")
    return value


def _flag(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _b64out(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- the functions ---------------------------------------------------------------

Handler = Callable[[HebcaConnection, dict[str, Any]], Awaitable[dict[str, Any]]]
HANDLERS: dict[str, Handler] = {}


def fn(name: str) -> Callable[[Handler], Handler]:
    def deco(h: Handler) -> Handler:
        HANDLERS[name] = h
        return h

    return deco


@fn("GetCertCount")
async def get_cert_count(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    return {"count": len(await c.sign_certs()) + len(await c.crypt_certs())}


@fn("GetSignCertCount")
async def get_sign_cert_count(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    return {"count": len(await c.sign_certs())}


@fn("GetSignCert")
async def get_sign_cert(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    certs = await c.sign_certs()
    i = _index(p.get("index"))
    if not 0 <= i < len(certs):
        raise NoCertificate()
    c.select(certs[i], as_sign=True)
    return {}


@fn("SelectSignCert")
async def select_sign_cert(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    c.select(await c.pick(await c.sign_certs()), as_sign=True)
    return {}


@fn("SelectCryptCert")
async def select_crypt_cert(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    c.select(await c.pick(await c.crypt_certs()), as_crypt=True)
    return {}


@fn("SelectSignCertFilterDevice")
async def select_sign_cert_filter_device(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    names = {n.strip() for n in _text(p.get("deviceNames", ""), "deviceNames").split(";")}
    names.discard("")
    candidates = [e for e in await c.sign_certs() if e.token.label not in names]
    c.select(await c.pick(candidates), as_sign=True)
    return {}


@fn("GetCertList")
async def get_cert_list(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    certs = await c.sign_certs()
    return {
        "certlist": ";".join(_b64out(e.model.der) for e in certs if e.model),
        "certsnlist": ";".join(e.model.serial_hex for e in certs if e.model),
    }


@fn("IsCertOnline")
async def is_cert_online(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    cn = _text(p.get("cn"), "cn")
    found = any(e.model and e.model.subject_cn == cn for e in await c.certificates())
    return {"result": 1 if found else 0}


@fn("GetSignCertNotAfter")
async def get_sign_cert_not_after(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    certs = await c.sign_certs()
    i = _index(p.get("index"))
    if not 0 <= i < len(certs):
        raise NoCertificate()
    model = certs[i].model
    assert model is not None
    local = model.not_after.astimezone(CHINA_TIME)
    return {"certnotafter": local.strftime("%Y-%m-%d %H:%M:%S")}


_SUBJECT_ITEMS: dict[int, tuple[str, ...]] = {
    0: ("CN",),
    1: ("O",),
    2: ("OU",),
    3: ("L",),
    4: ("ST",),
    5: ("C",),
    6: ("E",),
    7: ("G",),
    8: ("SERIALNUMBER",),
    9: ("T",),
    10: ("UID",),
}
_ITEM_NAMES = {"SN": 8, "SERIALNUMBER": 8, "EMAIL": 6, "EMAILADDRESS": 6} | {
    v[0]: k for k, v in _SUBJECT_ITEMS.items()
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
        i = _index(index)
    if i not in _SUBJECT_ITEMS:
        raise BadParams(detail="unknown subject item index")
    name = _SUBJECT_ITEMS[i][0]
    if name == "UID":
        return m.hebca_unique_id or ""
    if name == "G":
        if m.hebca_unique_id:
            return m.hebca_unique_id
        return next((v for k, v in m.subject if k == "G"), "")
    return next((v for k, v in m.subject if k == name), "")


@fn("GetSubjectItem")
async def get_subject_item(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    return {"content": subject_item(await c.by_sha(c.current), p.get("index"))}


@fn("GetCertB64")
async def get_cert_b64(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    entry = await c.by_sha(c.current)
    assert entry.model is not None
    return {"cert": _b64out(entry.model.der)}


@fn("GetPubKeyData")
async def get_pub_key_data(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    entry = await c.by_sha(c.sign if _flag(p.get("signflag", True)) else c.crypt)
    assert entry.model is not None
    return {"pubkey": _b64out(entry.model.spki_der)}


@fn("UILogin")
async def ui_login(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    await c.dialog_login(await c.by_sha(c.current))
    return {}


@fn("Login")
@fn("CspLogin")
async def login(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    await c.page_login(await c.by_sha(c.sign), p.get("pin"))
    return {}


@fn("UnUICertLogin")
async def un_ui_cert_login(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    if not c.options.page_pin:
        raise PagePinRefused()
    entry = await c.by_serial(p.get("certSN"))
    c.select(entry, as_sign=True)
    await c.page_login(entry, p.get("password"))
    return {}


@fn("IsCertLogined")
async def is_cert_logined(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    cn = _text(p.get("cn"), "cn")
    serials = {s.token_serial for s in c.service.sessions.for_origin(c.origin)}
    found = any(
        e.model and e.model.subject_cn == cn and e.token.serial in serials
        for e in await c.certificates()
    )
    return {"result": found}


@fn("Logout")
async def logout(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    entry = await c.by_sha(c.sign)
    session = c.service.sessions.get(entry.token.serial, c.origin)
    if session is not None:
        await c.service.end_session(entry.token.serial)
    c.logged_in_here.discard(entry.model.sha256 if entry.model else "")
    return {"result": True}


@fn("SignText")
async def sign_text(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    text = _text(p.get("signText"), "signText")
    try:
        data = text.encode("gbk" if c.options.text_encoding.lower() == "gbk" else "utf-8")
    except UnicodeEncodeError:
        raise BadParams(detail="the text cannot be encoded as GBK") from None
    entry = await c.by_sha(c.sign)
    return {"signature": _b64out(await c.signed(entry, data, text))}


@fn("SignB64")
async def sign_b64(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    data = _b64(p.get("b64data"), "b64data")
    entry = await c.by_sha(c.sign)
    return {"signature": _b64out(await c.signed(entry, data, None))}


@fn("P7SignB64")
async def p7_sign_b64(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    data = _b64(p.get("b64data"), "b64data")
    entry = await c.by_sha(c.sign)
    return {"b64data": _b64out(await c.signed(entry, data, None, cms=True))}


@fn("P7VerifyB64")
async def p7_verify_b64(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    blob = _b64(p.get("b64data"), "b64data")
    try:
        return {"result": verify_signed_data(blob)}
    except BadInput as exc:
        raise BadParams(detail=exc.detail) from None


@fn("UnUISign")
async def un_ui_sign(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    if not c.options.silent_sign:
        raise HebcaRefused()
    entry = await c.by_serial(p.get("certSN"))
    assert entry.model is not None
    session = c.service.sessions.get(entry.token.serial, c.origin)
    if entry.model.sha256 not in c.logged_in_here or session is None:
        raise HebcaRefused()
    data = _b64(p.get("b64data"), "b64data")
    c.used = entry.model.sha256
    c.service.sessions.touch(session)
    return {"signature": _b64out(await c.service.sign_raw(entry, data, c.algorithm(entry)))}


_DIGEST_NAMES = {"sha1": "sha1", "sha-1": "sha1", "sha256": "sha256", "sha-256": "sha256"}


@fn("Digest")
async def digest(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    data = _b64(p.get("b64data"), "b64data")
    alg = str(p.get("digestalg") or "").strip().lower()
    try:
        entry = await c.by_serial(p.get("certSN"))
    except (CertificateNotFound, BadParams):
        entry = None
    if entry is not None and entry.model is not None:
        alg = "sm3" if entry.model.key_type == "SM2" else "sha1"  # the doc's forced choice
    if alg == "sm3":
        raise HebcaUnsupported()
    if alg not in _DIGEST_NAMES:
        raise BadParams(detail="unknown digest algorithm")
    name = _DIGEST_NAMES[alg]
    return {"digest": _b64out(hashlib.new(name, data).digest()), "digestalg": name}


def _reg_text(value: Any) -> str:
    raw = _b64(value, "key")
    return raw.decode("utf-8", "surrogatepass").replace("\r\n", "\n")


@fn("ReadRegB64")
async def read_reg_b64(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    key, name = _reg_text(p.get("key")), _reg_text(p.get("name"))
    if key.lower() == VERSION_KEY and name.lower() == "version":
        return {"value": c.settings.version_number}
    raise HebcaRefused()


@fn("ReloadDevice")
async def reload_device(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    await c.service.rescan()
    return {}


@fn("DeleteFromCertStore")
async def delete_from_cert_store(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    return {}  # no Windows certificate store here: nothing to clean


@fn("GenKeyPair")
async def gen_key_pair(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    """CA origins only: a new key pair on the key of the certificate named ``cn``,
    after the same window check, confirmation and PIN as ``renewal.request``.
    The reply is the new public key as a base64 SubjectPublicKeyInfo."""
    renewal = c.renewal()
    if not _flag(p.get("rsaflag")):
        raise HebcaUnsupported(detail="SM2 key generation")  # only RSA keys are made here
    cn = _text(p.get("cn", ""), "cn").strip()
    certs = [e for e in await c.sign_certs() if e.model and e.model.key_type == "RSA"]
    named = [e for e in certs if e.model and e.model.subject_cn == cn] if cn else certs
    chosen = [e for e in named if e.model and e.model.sha256 in (c.sign, c.current)]
    entry = chosen[0] if chosen else await c.pick(named)
    c.select(entry, as_sign=True)
    spki, _key_id = await renewal.prepare_key(c.origin, entry, new_key=True)
    return {"pubkeyb64": _b64out(spki)}


@fn("ImportCert")
async def import_cert(c: HebcaConnection, p: dict[str, Any]) -> dict[str, Any]:
    """CA origins only: ``renewal.install`` with the same checks and confirmation."""
    renewal = c.renewal()
    der = _b64(p.get("b64cert"), "b64cert")
    signing = _flag(p.get("signflag", True))
    await renewal.install(c.origin, _b64out(der), [], signing=signing)
    return {}


#: refused for every origin, except CA_ONLY ones for the configured CA origins
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


CA_ONLY = frozenset({"GenKeyPair", "ImportCert"})


async def dispatch(c: HebcaConnection, function: str, params: dict[str, Any]) -> dict[str, Any]:
    """The reply payload for one request (errors become ret/msg)."""
    handler = HANDLERS.get(function)
    if handler is None or (function in REFUSED and not (function in CA_ONLY and c.is_ca)):
        raise HebcaRefused()
    result = await handler(c, params)
    return {"ret": RET_OK, **result}
