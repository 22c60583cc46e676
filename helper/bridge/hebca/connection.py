"""One HEBCA connection's state and the steps its functions share.

State per connection (protocol doc, section 2.4): the current, sign and crypt
certificate, kept by SHA-256 so a refreshed certificate cache cannot shift a
selection. Logins are the gate's login sessions (per origin and key).
"""

from __future__ import annotations

import base64
import binascii
import html
from dataclasses import dataclass, field
from typing import Any

from drivers.errors import CertHelperError, register
from drivers.types import Pin, SignAlgorithm
from helper.bridge.hebca.settings import HebcaOriginOptions, HebcaSettings
from helper.errors import BadParams, CertificateNotFound
from helper.services.certificates import NoCertificate
from helper.services.gate import Gate
from helper.services.renewal import RenewalService
from helper.services.tokens import CertEntry

RET_OK = 0
RET_NO_CERT = -536145917  # 0xE00B1003: certificate / key not present
RET_FAILED = -536145887  # 0xE00B1021: operation failed, re-plug the key
RET_UNSUPPORTED = 1007  # the client's "function not supported"

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
    "page_pin_refused",
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
    if exc.code in _UNSUPPORTED_CODES:
        return RET_UNSUPPORTED
    return RET_FAILED


def error_payload(exc: CertHelperError) -> dict[str, Any]:
    """``msg`` is one of our fixed texts, never page input (the client writes
    it into the page with innerHTML)."""
    return {"ret": ret_for(exc), "msg": html.escape(f"{exc.message_zh} ({exc.message_en})")}


# --- parameters -------------------------------------------------------------------


def text_param(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise BadParams(detail=f"'{name}' must be a string")
    return value


def b64_param(value: Any, name: str) -> bytes:
    """The protocol's base64: line breaks tolerated, padding optional."""
    text = text_param(value, name).strip().replace("\r", "").replace("\n", "")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadParams(detail=f"'{name}' is not base64") from None


def index_param(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        raise BadParams(detail="'index' must be a number")
    return value


def flag_param(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def b64out(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- the connection ---------------------------------------------------------------


@dataclass
class HebcaConnection:
    origin: str
    options: HebcaOriginOptions
    settings: HebcaSettings
    gate: Gate
    renewal_service: RenewalService | None = None
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
        return self.renewal_service is not None and self.renewal_service.is_ca(self.origin)

    def renewal(self) -> RenewalService:
        if self.renewal_service is None or not self.is_ca:
            raise HebcaRefused()
        return self.renewal_service

    # --- certificates ---------------------------------------------------------

    async def certificates(self) -> list[CertEntry]:
        entries = [e for e in await self.gate.certificates.in_use() if e.model is not None]
        return sorted(
            entries,
            key=lambda e: (
                e.token.label,
                e.token.serial,
                e.model.subject_cn if e.model else "",
                e.model.serial_hex if e.model else "",
            ),
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
        wanted = text_param(serial, "certSN").strip().upper().removeprefix("0X")
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
        return await self.gate.choose(self.origin, candidates, prefer_session=False)

    # --- login and signing ----------------------------------------------------

    async def page_login(self, entry: CertEntry, pin_value: Any) -> None:
        if not self.options.page_pin:
            raise PagePinRefused()
        pin = Pin(text_param(pin_value, "pin"))
        await self.gate.login_with_page_pin(self.origin, entry, pin)
        assert entry.model is not None
        self.logged_in_here.add(entry.model.sha256)

    async def dialog_login(self, entry: CertEntry) -> None:
        await self.gate.ensure_login(self.origin, "auth.authenticate", entry)
        assert entry.model is not None
        self.logged_in_here.add(entry.model.sha256)

    def algorithm(self, entry: CertEntry) -> SignAlgorithm:
        assert entry.model is not None
        legacy = entry.model.key_type == "RSA" and self.options.rsa_hash == "sha1"
        return self.gate.certificates.algorithm(entry, legacy_sha1=legacy)

    async def signed(
        self, entry: CertEntry, data: bytes, text: str | None, *, cms: bool = False
    ) -> bytes:
        """Sign with the login's first signature free of a dialog, and every later
        one confirmed by the person (docs/hebca-compat.md, Signing)."""
        algorithm = self.algorithm(entry)  # SM2 and the like refused before any dialog
        session = await self.gate.ensure_login(self.origin, "sign.data", entry)
        assert entry.model is not None
        self.logged_in_here.add(entry.model.sha256)
        if session.just_logged_in:
            session.just_logged_in = False
        else:
            await self.gate.confirm_signing(
                self.origin, entry, data, text, encoding=self.options.sign_text_encoding
            )
        self.gate.sessions.touch(session)
        if cms:
            return await self.gate.sign_cms(entry, data, algorithm, detached=False)
        return await self.gate.sign(entry, data, algorithm)
