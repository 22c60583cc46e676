"""Token service: which key libraries are loaded, what is on every token, and
the one rule for which certificates can be used.

Blocking methods serve the CLI and the windows (their own processes); async
ones serve the daemon and always reach a key through its driver's worker
(:class:`drivers.aio.AsyncDriver`), one job per library.

It pairs each certificate with its private key by CKA_ID, keeps certificates
without a key and keys without a certificate, and never drops an object it
cannot parse: such a certificate is listed as unreadable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from drivers.aio import AsyncDriver
from drivers.errors import CertHelperError, TokenAmbiguous, TokenNotFound
from drivers.protocol import TokenDriver
from drivers.registry import LibraryRequest, get_driver, requested_libraries
from drivers.types import CertObject, KeyObject, SignAlgorithm, TokenInfo
from helper.config import Config
from helper.domain.certificate import CertificateModel
from helper.domain.expiry import system_clock
from helper.domain.presentation import driver_cannot_sign_note
from helper.domain.renewal import is_archived
from helper.errors import (
    CertificateAmbiguous,
    CertificateNotFound,
    CertificateUnreadable,
    SigningUnsupported,
)

log = logging.getLogger(__name__)

_EC_ALGORITHM = {256: SignAlgorithm.ECDSA_SHA256, 384: SignAlgorithm.ECDSA_SHA384}


@dataclass
class ModuleStatus:
    path: str
    source: str  # "config", "command line", or the catalog entry id
    driver: TokenDriver | None = None
    error: CertHelperError | None = None
    family: str = "pkcs11"


@dataclass
class CertEntry:
    """A certificate object on a token, parsed when possible, with its key."""

    id: str
    token: TokenInfo
    obj: CertObject
    model: CertificateModel | None
    private_key: KeyObject | None
    error: CertificateUnreadable | None = None
    driver_signs: bool = True  # the loaded driver makes this key's signature

    @property
    def signing_note(self) -> str | None:
        """Why this certificate cannot sign here, if it cannot: its key type, or a
        driver without the key's algorithm (an SM2 key read through PKCS#11)."""
        m = self.model
        if m is None:
            return None
        if m.signing_note:
            return m.signing_note
        if m.usage == "sign" and not self.driver_signs:
            return driver_cannot_sign_note(m.key_type)
        return None

    @property
    def readable(self) -> bool:
        return self.model is not None

    @property
    def archived(self) -> bool:
        """Kept after a renewal replaced it (its label says so): listed, never used."""
        return is_archived(self.obj.label)

    @property
    def in_use(self) -> bool:
        """A certificate the person works with: readable, its key on the token, not
        archived. Alerts, renewal, the tray and the HEBCA lists count these."""
        return self.model is not None and self.private_key is not None and not self.archived

    def usable(self, now: datetime) -> bool:
        """May be offered for login and signing now: in use, a signing certificate
        of a supported key type, within its validity."""
        m = self.model
        return (
            self.in_use
            and m is not None
            and m.signing_supported
            and m.is_signing_cert
            and m.not_before <= now < m.not_after
        )


@dataclass
class TokenView:
    token: TokenInfo
    certificates: list[CertEntry] = field(default_factory=list)
    keys_without_certificate: list[KeyObject] = field(default_factory=list)
    error: CertHelperError | None = None  # the token vanished while being read


def pair_objects(
    token: TokenInfo,
    certs: list[CertObject],
    keys: list[KeyObject],
    driver: TokenDriver | None = None,
) -> TokenView:
    """Pair certificates and private keys by CKA_ID (falling back to the label
    when a certificate has no CKA_ID); with ``driver``, mark the certificates whose
    signature that driver cannot make."""
    view = TokenView(token=token)
    used: set[int] = set()
    seen_ids: dict[str, int] = {}
    for obj in certs:
        key = None
        for i, k in enumerate(keys):
            if (obj.key_id and k.key_id == obj.key_id) or (
                not obj.key_id and obj.label and k.label == obj.label
            ):
                key = k
                used.add(i)
                break
        base = f"{token.serial}:{obj.key_id.hex() or 'noid'}"
        n = seen_ids[base] = seen_ids.get(base, 0) + 1
        cert_id = base if n == 1 else f"{base}~{n}"
        try:
            model, error = CertificateModel.from_der(obj.value), None
        except CertificateUnreadable as exc:
            model, error = None, exc
        signs = model is None or driver is None or driver_signs(driver, model)
        view.certificates.append(CertEntry(cert_id, token, obj, model, key, error, signs))
    view.keys_without_certificate = [k for i, k in enumerate(keys) if i not in used]
    return view


def algorithm_for(model: CertificateModel, *, legacy_sha1: bool = False) -> SignAlgorithm:
    """The signature algorithm for a certificate's key type."""
    if model.key_type == "RSA":
        return SignAlgorithm.RSA_PKCS1_SHA1 if legacy_sha1 else SignAlgorithm.RSA_PKCS1_SHA256
    if model.key_type == "SM2":
        return SignAlgorithm.SM2_SM3  # SM3 is its hash whatever a legacy page asks
    if model.key_type == "EC" and model.signing_supported and model.key_bits in _EC_ALGORITHM:
        return _EC_ALGORITHM[model.key_bits]
    raise SigningUnsupported(detail=f"{model.key_type} {model.curve or ''}".strip())


def driver_signs(driver: TokenDriver, model: CertificateModel) -> bool:
    """The driver makes the signature this certificate's key needs (a certificate
    that is not for signing, or cannot sign anyway, does not ask)."""
    if model.usage != "sign" or not model.signing_supported:
        return True
    try:
        return algorithm_for(model) in driver.capabilities.algorithms
    except SigningUnsupported:
        return False


class TokenService:
    def __init__(
        self,
        modules: Sequence[ModuleStatus],
        *,
        clock: Callable[[], datetime] = system_clock,
    ) -> None:
        self.modules = list(modules)
        self.clock = clock

    # --- construction ------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        driver_factory: Callable[[LibraryRequest, float], TokenDriver] | None = None,
        clock: Callable[[], datetime] = system_clock,
    ) -> TokenService:
        """Load every configured and catalogued library, each by its family's driver;
        a library that fails to load is recorded with its error, not fatal."""
        if config.softhsm2_conf and "SOFTHSM2_CONF" not in os.environ:
            os.environ["SOFTHSM2_CONF"] = config.softhsm2_conf  # read at C_Initialize
        if config.softskf_dir and "SOFTSKF_DIR" not in os.environ:
            os.environ["SOFTSKF_DIR"] = config.softskf_dir  # read by libsoftskf on every call
        factory = driver_factory or (
            lambda req, timeout: get_driver(
                req.path, family=req.family, timeout=timeout, native_long=req.native_long
            )
        )
        explicit = [LibraryRequest("pkcs11", p, "config") for p in config.modules]
        explicit += [
            LibraryRequest("skf", s.path, "config", s.native_long) for s in config.skf_libraries
        ]
        statuses: list[ModuleStatus] = []
        for req in requested_libraries(explicit, use_catalog=config.use_catalog):
            status = ModuleStatus(path=req.path, source=req.source, family=req.family)
            try:
                status.driver = factory(req, config.token_timeout)
            except CertHelperError as exc:
                log.warning("library %s not loaded: %s", req.path, exc.code)
                status.error = exc
            statuses.append(status)
        return cls(statuses, clock=clock)

    @property
    def drivers(self) -> list[TokenDriver]:
        return [m.driver for m in self.modules if m.driver is not None]

    def close(self) -> None:
        for d in self.drivers:
            d.close()

    # --- reading -----------------------------------------------------------

    def tokens(self) -> list[tuple[TokenDriver, TokenInfo]]:
        out = []
        for d in self.drivers:
            try:
                out += [(d, t) for t in d.list_tokens()]
            except CertHelperError as exc:
                log.warning("listing tokens of %s failed: %s", d.module_path, exc.code)
        return out

    def snapshot(self) -> list[TokenView]:
        views: list[TokenView] = []
        for d in self.drivers:
            try:
                views += self._views_of(d)
            except CertHelperError as exc:
                log.warning("listing tokens of %s failed: %s", d.module_path, exc.code)
        return sorted(views, key=lambda v: (v.token.label, v.token.serial))

    @staticmethod
    def _views_of(d: TokenDriver) -> list[TokenView]:
        """Every token of one library, read and paired (a token that vanished while
        being read is a view with its error)."""
        views = []
        for t in d.list_tokens():
            try:
                contents = d.read_objects(t.serial)
            except CertHelperError as exc:
                views.append(TokenView(token=t, error=exc))
                continue
            views.append(
                pair_objects(contents.token, contents.certificates, contents.private_keys, d)
            )
        return views

    async def snapshot_async(self) -> list[TokenView]:
        """:meth:`snapshot` with one job per library on its worker thread."""
        views: list[TokenView] = []
        for d in self.drivers:
            try:
                views += await AsyncDriver(d).run(self._views_of, d)
            except CertHelperError as exc:
                log.warning("reading tokens of %s failed: %s", d.module_path, exc.code)
        return sorted(views, key=lambda v: (v.token.label, v.token.serial))

    async def tokens_async(self) -> list[tuple[TokenDriver, TokenInfo]]:
        out: list[tuple[TokenDriver, TokenInfo]] = []
        for d in self.drivers:
            try:
                out += [(d, t) for t in await AsyncDriver(d).list_tokens()]
            except CertHelperError as exc:
                log.warning("listing tokens of %s failed: %s", d.module_path, exc.code)
        return out

    def aio(self, token: TokenInfo) -> AsyncDriver:
        """The async door to the driver that reads ``token``."""
        return AsyncDriver(self.driver_for(token))

    def driver_for(self, token: TokenInfo) -> TokenDriver:
        for d in self.drivers:
            if d.module_path == token.module_path:
                return d
        raise TokenNotFound(detail=token.serial)

    def find_token(self, query: str | None) -> tuple[TokenDriver, TokenInfo]:
        """By label or serial; with no query, the only token there is."""
        tokens = self.tokens()
        if query:
            tokens = [(d, t) for d, t in tokens if query in (t.label, t.serial)]
        if not tokens:
            raise TokenNotFound(detail=query) if query else TokenNotFound()
        if len(tokens) > 1:
            names = ", ".join(f"{t.label} ({t.serial})" for _, t in tokens)
            raise TokenAmbiguous(detail=names)
        return tokens[0]

    def find_certificate(self, query: str) -> CertEntry:
        """By id, SHA-256 thumbprint prefix (>= 8 hex digits) or serial number."""
        entries = [c for v in self.snapshot() for c in v.certificates]
        exact = [c for c in entries if c.id == query.strip()]
        if exact:
            return exact[0]
        qn = query.strip().lower().replace(":", "").replace(" ", "").removeprefix("0x")
        matches = []
        for c in entries:
            if c.model is None:
                continue
            serial = c.model.serial_hex.lower()
            if (len(qn) >= 8 and c.model.sha256.startswith(qn)) or qn in (
                serial,
                serial.lstrip("0"),
            ):
                matches.append(c)
        if not matches:
            raise CertificateNotFound(detail=query)
        if len(matches) > 1:
            raise CertificateAmbiguous(detail=", ".join(c.id for c in matches))
        return matches[0]
