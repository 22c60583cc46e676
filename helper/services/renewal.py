"""Certificate renewal: what a CA's page may ask of the helper, and the checks
around each write (security.md, requirement 13; docs/renewal.md).

- ``status``: every certificate with a key, its expiry and renewal window.
- ``request``: a PKCS#10 request signed on the token, by the certificate's key
  or by a new key pair generated on the token (the old key stays). SM2
  certificates get an SM2 request (SM2-with-SM3, default ID; helper.csr).
- ``install``: the renewed certificate written next to its key, after the
  checks below and a native confirmation; the old certificate is archived or
  removed in the same all-or-nothing driver call. Keys are never deleted.
  On drivers with one certificate per key (SKF) the old certificate is
  replaced in place (same key) or superseded and shown archived (new key):
  :func:`old_certificate_outcome`.

Only configured CA origins get here; every other origin is refused whatever
its consent. The HEBCA ``GenKeyPair``/``ImportCert`` go through the same code.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import core as asn1_core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from drivers.aio import AsyncDriver
from drivers.errors import (
    CertHelperError,
    CertificateExists,
    MechanismUnsupported,
    TokenAbsent,
    register,
)
from drivers.protocol import TokenDriver
from drivers.types import KeyPairSpec, NewCertificate, TokenInfo
from helper.csr import build_csr, issuer_der, subject_der
from helper.domain.certificate import CertificateModel
from helper.domain.renewal import RenewalWindow, archive_label, strip_archive
from helper.errors import BadParams, CertificateUnreadable
from helper.services.gate import Gate
from helper.services.params import b64decode_param, sha256_prefix
from helper.services.prompts import ConsentRequest
from helper.services.summary import iso
from helper.services.tokens import CertEntry
from helper.verify import UntrustedChain, check_chain

log = logging.getLogger(__name__)

MAX_CHAIN = 8
PENDING_TTL = 24 * 3600.0  # a request's record is kept this long for its install
_NEVER = datetime.min.replace(tzinfo=UTC)


@register
class RenewalOriginRefused(CertHelperError):
    code = "renewal_origin_refused"
    message_zh = "只有证书颁发机构（CA）的网站才能为证书延期"
    message_en = "Only the certificate authority's site may renew certificates"
    exit_code = 3


@register
class RenewalNotDue(CertHelperError):
    code = "renewal_not_due"
    message_zh = "该证书不在可延期的时间范围内"
    message_en = "This certificate is outside its renewal window"
    exit_code = 5


@register
class RenewalKeyMismatch(CertHelperError):
    code = "renewal_key_mismatch"
    message_zh = "新证书的公钥与 USB Key 上的密钥不符，未写入"
    message_en = "The new certificate's key is not on the USB key; nothing was written"
    exit_code = 5


@register
class RenewalUntrusted(CertHelperError):
    code = "renewal_untrusted"
    message_zh = "新证书不是由受信任的证书颁发机构签发的，未写入"
    message_en = "The new certificate is not from a trusted CA; nothing was written"
    exit_code = 5


@register
class RenewalSubjectMismatch(CertHelperError):
    code = "renewal_subject_mismatch"
    message_zh = "新证书的使用者与原证书不一致，未写入"
    message_en = "The new certificate names another holder; nothing was written"
    exit_code = 5


@register
class RenewalNotNewer(CertHelperError):
    code = "renewal_not_newer"
    message_zh = "新证书的有效期不晚于原证书，未写入"
    message_en = "The new certificate does not run longer than the old one; nothing was written"
    exit_code = 5


@dataclass(frozen=True)
class RenewalSettings:
    ca_origins: frozenset[str] = frozenset()
    #: the CA certificates a renewed certificate must chain to
    ca_roots: tuple[x509.Certificate, ...] = ()
    window: RenewalWindow = field(default_factory=RenewalWindow)
    archive_old: bool = True
    renewal_url: str = "https://www.hebca.com"

    @classmethod
    def build(
        cls,
        ca_origins: Iterable[str],
        ca_root_files: Iterable[str | Path] = (),
        *,
        window: RenewalWindow | None = None,
        old_certificate: str = "archive",
        renewal_url: str = "https://www.hebca.com",
    ) -> RenewalSettings:
        roots: list[x509.Certificate] = []
        for path in ca_root_files:
            try:
                roots.extend(x509.load_pem_x509_certificates(Path(path).read_bytes()))
            except (OSError, ValueError) as exc:
                log.error("renewal CA file %s unusable: %s", path, exc)
        return cls(
            ca_origins=frozenset(ca_origins),  # normalised by the caller
            ca_roots=tuple(roots),
            window=window or RenewalWindow(),
            archive_old=old_certificate != "remove",
            renewal_url=renewal_url,
        )


@dataclass
class _Pending:
    """A request made on this key: which certificate it renews, for the install."""

    old_sha256: str
    origin: str
    created: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class _Target:
    """Where a new certificate goes: the token and key it belongs to."""

    driver: TokenDriver
    token: TokenInfo
    key_id: bytes
    key_label: str = ""


def _normal_spki(spki: bytes) -> bytes:
    """SPKI in one canonical encoding (tokens and CAs differ in small ways). SM2 keys,
    which ``cryptography`` cannot load, are compared as encoded (both sides write
    id-ecPublicKey, the named SM2 curve and an uncompressed point)."""
    try:
        key = serialization.load_der_public_key(spki)
        return key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return spki


def _same_name(a: bytes, b: bytes) -> bool:
    """RFC 5280 name comparison (asn1crypto folds case and spaces)."""
    return asn1_x509.Name.load(a) == asn1_x509.Name.load(b)


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def key_spec_for(model: CertificateModel) -> KeyPairSpec:
    """A new key pair of the same type and size as the certificate's."""
    if model.key_type == "RSA" and model.key_bits:
        return KeyPairSpec("RSA", bits=model.key_bits)
    if model.key_type == "EC":
        params = asn1_keys.PublicKeyInfo.load(model.spki_der)["algorithm"]["parameters"]
        return KeyPairSpec("EC", ec_params=params.dump())
    if model.key_type == "SM2":
        return KeyPairSpec("SM2", bits=256)
    raise MechanismUnsupported(detail=f"no key generation for {model.key_type} keys")


def old_certificate_outcome(
    driver: TokenDriver, old_key_id: bytes, new_key_id: bytes, archive_old: bool
) -> tuple[bool, str]:
    """(pass an archive label to the driver, what happens: "archived" | "removed").

    A driver with one certificate per key (SKF) cannot keep two certificates on one key
    nor relabel or delete one alone: on the same key the new certificate replaces the
    old one ("removed"); with a new key the old one stays with its key and is shown
    archived ("archived"), whatever ``[renewal] old_certificate`` says."""
    if driver.capabilities.one_certificate_per_key:
        same_key = old_key_id == new_key_id
        return False, "removed" if same_key else "archived"
    return archive_old, "archived" if archive_old else "removed"


_OLD_CERTIFICATE_TEXT = {
    "archived": "保留为归档证书，不再使用 (kept, archived, no longer used)",
    "removed": "从 USB Key 删除，密钥保留 (removed; its key stays)",
    "replaced": "由新证书替换，密钥不变 (replaced by the new certificate; the key stays)",
}


class RenewalService:
    def __init__(self, gate: Gate, settings: RenewalSettings) -> None:
        self.gate = gate
        self.settings = settings
        self._pending: dict[tuple[str, bytes], _Pending] = {}
        self._write_lock = asyncio.Lock()
        #: called with (old sha256, new sha256) after a certificate was renewed
        self.on_renewed: Callable[[str, str], None] | None = None

    # --- guards ------------------------------------------------------------------

    def is_ca(self, origin: str) -> bool:
        return origin in self.settings.ca_origins

    def _require_ca(self, origin: str, operation: str) -> None:
        """Refuse (and audit) any origin that is not a configured CA, before any
        parameter is looked at."""
        if not self.is_ca(origin):
            self.gate.audit_event(origin, operation, None, RenewalOriginRefused.code)
            raise RenewalOriginRefused(detail=origin[:100])

    async def _candidates(self) -> list[CertEntry]:
        return await self.gate.certificates.in_use()

    async def _confirm(
        self, origin: str, operation: str, entry: CertEntry, details: Iterable[tuple[str, str]]
    ) -> None:
        assert entry.model is not None
        request = ConsentRequest(
            origin=origin,
            insecure_origin=origin.startswith("http:"),
            operation=operation,
            cert_subject=entry.model.subject_cn,
            cert_issuer=entry.model.issuer_cn,
            allow_always=False,
            details=tuple(details),
        )
        await self.gate.confirm(origin, request)

    # --- status --------------------------------------------------------------------

    async def status(self, origin: str) -> dict[str, Any]:
        self._require_ca(origin, "renewal.status")

        async with self.gate.audit(origin, "renewal.status"):
            now = self.gate.tokens.clock()
            window = self.settings.window
            out = []
            for e in await self._candidates():
                m = e.model
                assert m is not None
                out.append(
                    {
                        "sha256": m.sha256,
                        "subject_cn": m.subject_cn,
                        "subject_dn": m.subject_dn,
                        "issuer_cn": m.issuer_cn,
                        "serial_hex": m.serial_hex,
                        "hebca_unique_id": m.hebca_unique_id,
                        "token_label": e.token.label,
                        "token_serial": e.token.serial,
                        "key_type": m.key_type,
                        "key_bits": m.key_bits,
                        "usage": m.usage,  # sign / enc (双证书: the pair shares its subject)
                        "not_before": iso(m.not_before),
                        "not_after": iso(m.not_after),
                        "days_left": m.days_left(now),
                        "in_window": window.contains(m.not_after, now),
                        "window_start": iso(window.start(m.not_after)),
                        "window_end": iso(window.end(m.not_after)),
                        "der": base64.b64encode(m.der).decode(),
                    }
                )
            return {
                "certificates": out,
                "window": {"before_days": window.before_days, "after_days": window.after_days},
            }

    # --- request -------------------------------------------------------------------

    async def find(self, cert_filter: Any) -> CertEntry:
        f = sha256_prefix(cert_filter)
        found = [e for e in await self._candidates() if e.model and e.model.sha256.startswith(f)]
        if not found:
            raise RenewalKeyMismatch(detail="no such certificate with a key on the inserted keys")
        if len(found) > 1:
            raise BadParams(detail="'certificate' matches several certificates")
        return found[0]

    async def request(self, origin: str, cert_filter: Any, new_key: Any) -> dict[str, Any]:
        self._require_ca(origin, "renewal.request")
        if not isinstance(new_key, bool):
            raise BadParams(detail="'new_key' must be true or false")

        async with self.gate.audit(origin, "renewal.request") as record:
            entry = await self.find(cert_filter)
            assert entry.model is not None
            record.cert = entry.model.sha256
            spki, key_id = await self.prepare_key(origin, entry, new_key)
            model = entry.model
            algorithm = self.gate.certificates.algorithm(entry)
            aio = self.gate.tokens.aio(entry.token)
            driver, serial = aio.driver, entry.token.serial
            csr = await aio.run(
                lambda: build_csr(
                    subject_der(model.der),
                    spki,
                    lambda tbs: driver.sign(serial, key_id, tbs, algorithm),
                    algorithm=algorithm,
                )
            )
            return {
                "csr": base64.b64encode(csr).decode(),
                "certificate": model.sha256,
                "key": "new" if new_key else "existing",
            }

    async def prepare_key(
        self, origin: str, entry: CertEntry, new_key: bool
    ) -> tuple[bytes, bytes]:
        """After the window check, the confirmation and the PIN dialog: the SPKI and
        CKA_ID of the key that will carry the renewed certificate (a new key pair,
        generated on the token, when ``new_key``). Shared with HEBCA GenKeyPair."""
        model = entry.model
        assert model is not None and entry.private_key is not None
        now = self.gate.tokens.clock()
        if not self.settings.window.contains(model.not_after, now):
            raise RenewalNotDue(detail=f"not after {iso(model.not_after)}")
        self.gate.certificates.algorithm(entry)  # SM2 and the like: refused before any dialog
        spec = key_spec_for(model) if new_key else None
        driver = self.gate.tokens.driver_for(entry.token)
        if spec is not None and spec.key_type not in driver.capabilities.key_generation:
            # e.g. SM2 through a vendor PKCS#11 module: refused before any dialog
            raise MechanismUnsupported(detail=f"{spec.key_type} key pairs ({driver.family})")
        what = (
            "在 USB Key 上新建容器，生成新的密钥对并签署延期申请；原密钥和证书保留 "
            "(a new key pair is made in a new container on the key and signs the request; "
            "the old key and certificate stay)"
            if new_key and driver.capabilities.one_certificate_per_key
            else "在 USB Key 上生成新的密钥对并签署延期申请；原密钥和证书保留 "
            "(a new key pair is made on the key and signs the request; the old key and "
            "certificate stay)"
            if new_key
            else "用现有密钥签署延期申请，USB Key 上的内容不变 "
            "(the existing key signs the request; nothing on the key changes)"
        )
        await self._confirm(
            origin,
            "renewal.request",
            entry,
            [
                ("证书序列号 (Serial)", model.serial_hex),
                ("有效期至 (Valid to)", _local(model.not_after)),
                ("USB Key", entry.token.label),
                ("将要进行 (What happens)", what),
            ],
        )
        session = await self.gate.ensure_login(origin, "renewal.request", entry)
        session.just_logged_in = False  # a renewal login buys no free signature
        self.gate.sessions.touch(session)
        serial = entry.token.serial
        if spec is None:
            spki, key_id = model.spki_der, entry.private_key.key_id
        else:
            label = strip_archive(entry.obj.label) or model.subject_cn
            aio = self.gate.tokens.aio(entry.token)
            created = await aio.generate_key_pair(serial, spec, label)
            self.gate.certificates.invalidate()
            log.info("renewal: new %s key pair on %s for %s", spec.key_type, serial, origin)
            spki, key_id = _normal_spki(created.spki), created.key_id
        self._forget_stale()
        self._pending[(serial, key_id)] = _Pending(model.sha256, origin)
        return spki, key_id

    def _forget_stale(self) -> None:
        now = time.monotonic()
        for k, p in list(self._pending.items()):
            if now - p.created > PENDING_TTL:
                del self._pending[k]

    # --- install -------------------------------------------------------------------

    async def install(
        self, origin: str, cert_b64: Any, chain_b64: Any, *, signing: bool | None = None
    ) -> dict[str, Any]:
        self._require_ca(origin, "renewal.install")
        der = b64decode_param(cert_b64, "certificate")
        if chain_b64 is None:
            chain_b64 = []
        if not isinstance(chain_b64, list) or len(chain_b64) > MAX_CHAIN:
            raise BadParams(detail=f"'chain' must be a list of at most {MAX_CHAIN} certificates")
        chain = [b64decode_param(c, "chain") for c in chain_b64]

        async with self.gate.audit(origin, "renewal.install") as record:
            try:
                model = CertificateModel.from_der(der)
                x509.load_der_x509_certificate(model.der)
                intermediates = [x509.load_der_x509_certificate(c) for c in chain]
            except (CertificateUnreadable, ValueError):
                raise BadParams(detail="not a DER X.509 certificate") from None
            record.cert = model.sha256
            if signing is not None and model.is_signing_cert != signing:
                raise BadParams(detail="the certificate's key usage does not fit signflag")
            async with self._write_lock:
                return await self._install(origin, model, intermediates)

    async def _install(
        self, origin: str, model: CertificateModel, chain: list[x509.Certificate]
    ) -> dict[str, Any]:
        self.gate.certificates.invalidate()  # decide on what the tokens hold now
        entries = await self.gate.certificates.entries()
        if any(e.model and e.model.sha256 == model.sha256 for e in entries):
            raise CertificateExists()
        target = await self._find_key(model.spki_der, entries)
        old = self._renewed(model, target, entries)
        assert old.model is not None  # _renewed picks readable certificates only
        if old.model.hebca_unique_id != model.hebca_unique_id:
            raise RenewalSubjectMismatch(detail="the HEBCA unique ID differs")
        if model.not_after <= old.model.not_after:
            raise RenewalNotNewer(detail=f"{iso(model.not_after)} <= {iso(old.model.not_after)}")
        now = self.gate.tokens.clock()
        try:
            check_chain(model.der, self.settings.ca_roots, chain, now)
        except UntrustedChain as exc:
            raise RenewalUntrusted(detail=exc.detail) from None
        # the key's label, as the issue of the key pair named it (else the old one's)
        label = target.key_label or strip_archive(old.obj.label) or model.subject_cn
        keep, outcome = old_certificate_outcome(
            target.driver, old.obj.key_id, target.key_id, self.settings.archive_old
        )
        archived = archive_label(old.obj.label, now) if keep else None
        shown = (
            "replaced"
            if outcome == "removed" and target.driver.capabilities.one_certificate_per_key
            else outcome
        )
        await self._confirm(
            origin,
            "renewal.install",
            old,
            [
                ("新证书序列号 (New serial)", model.serial_hex),
                (
                    "新有效期 (New validity)",
                    f"{_local(model.not_before)} 至 (to) {_local(model.not_after)}",
                ),
                ("新证书颁发者 (New issuer)", model.issuer_cn),
                ("原证书有效期至 (Old valid to)", _local(old.model.not_after)),
                ("原证书 (Old certificate)", _OLD_CERTIFICATE_TEXT[shown]),
                ("USB Key", target.token.label),
            ],
        )
        if target.driver.capabilities.writes_need_login:  # SKF: the login may have ended
            session = await self.gate.ensure_login(origin, "renewal.install", old)
            session.just_logged_in = False  # buys no free signature
            self.gate.sessions.touch(session)
        new = NewCertificate(
            key_id=target.key_id,
            label=label,
            der=model.der,
            subject=subject_der(model.der),
            issuer=issuer_der(model.der),
            serial_number=asn1_core.Integer(model.serial_int).dump(),
        )
        try:
            await AsyncDriver(target.driver).write_certificate(
                target.token.serial, new, replace=old.obj, archive_label=archived
            )
        finally:
            self.gate.certificates.invalidate()
        self._pending.pop((target.token.serial, target.key_id), None)
        log.info(
            "renewal: %s installed on %s by %s", model.sha256[:16], target.token.serial, origin
        )
        if self.on_renewed is not None:
            try:
                self.on_renewed(old.model.sha256, model.sha256)
            except Exception:
                log.exception("renewal hook failed")
        return {
            "installed": model.sha256,
            "replaced": old.model.sha256,
            "old_certificate": outcome,
            "not_after": iso(model.not_after),
        }

    async def _find_key(self, spki: bytes, entries: list[CertEntry]) -> _Target:
        """The token and CKA_ID of the key whose public half is ``spki``."""
        wanted = _normal_spki(spki)
        tokens = await self.gate.tokens.tokens_async()
        for driver, token in tokens:
            try:
                publics = await AsyncDriver(driver).public_keys(token.serial)
            except CertHelperError as exc:
                log.debug("public keys of %s: %s", token.serial, exc.code)
                continue
            for p in publics:
                if _normal_spki(p.spki) == wanted:
                    return _Target(driver, token, p.key_id, p.label)
        for e in entries:  # tokens without public-key objects: a certificate tells
            if e.model and e.private_key and _normal_spki(e.model.spki_der) == wanted:
                key = e.private_key
                return _Target(self.gate.tokens.driver_for(e.token), e.token, key.key_id, key.label)
        present = {t.serial for _d, t in tokens}
        if any(serial not in present for serial, _k in self._pending):
            raise TokenAbsent(detail="the key that made the renewal request is not inserted")
        raise RenewalKeyMismatch()

    def _renewed(
        self, model: CertificateModel, target: _Target, entries: list[CertEntry]
    ) -> CertEntry:
        """The certificate ``model`` renews: same token and same holder; the one this
        key's request named, else the one on the same key, else the latest."""
        subject = subject_der(model.der)
        same = [
            e
            for e in entries
            if e.token.serial == target.token.serial
            and e.in_use
            and e.model is not None
            and _same_name(subject_der(e.model.der), subject)
        ]
        if not same:
            raise RenewalSubjectMismatch(detail="no certificate of this holder on the key")
        pending = self._pending.get((target.token.serial, target.key_id))
        if pending is not None:
            for e in same:
                if e.model and e.model.sha256 == pending.old_sha256:
                    return e
        on_key = [e for e in same if e.private_key and e.private_key.key_id == target.key_id]
        pool = on_key or same
        return max(pool, key=lambda e: e.model.not_after if e.model else _NEVER)
