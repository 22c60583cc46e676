"""One loaded SKF (GM/T 0016) library as a :class:`~drivers.protocol.TokenDriver`.

The model maps onto tokens like this:

- a device's **application** is a token: it holds the user PIN, so login, PIN state and
  change-PIN are per application (almost every key has exactly one). Its serial is the
  device's ``DEVINFO.SerialNumber`` (``serial/application`` when a device has several);
- a **container** holds up to two key pairs, signing and encryption, each with its
  certificate: ``key_id`` is ``<container name, UTF-8>/sign`` or ``/enc``. Only signing
  keys sign (SKF has no call that signs with the encryption key).

SKF libraries are not thread-safe, so every call runs on the library's worker thread
like a PKCS#11 module's. Device and application handles stay open while the device is
present: a login lives in its application handle. A device that disappears (or whose
handle went stale) drops its login, and the next call reconnects.

SM2 signing computes ``e = SM3(Z ‖ M)`` here (:mod:`drivers.sm2`) from the container's
signing public key and the caller's ID, and ``SKF_ECCSignData`` signs ``e``; the result is
DER ``SEQUENCE{r, s}``. RSA containers sign a DigestInfo built here with
``SKF_RSASignData`` (PKCS#1 v1.5).

Renewal (docs/renewal.md): a new key pair goes into a new container (the old one keeps its
key and certificate until the new certificate is in), and a certificate is written with one
``SKF_ImportCertificate``. SKF can neither relabel nor delete a certificate, so an old
certificate that a newer one of another container renews is reported archived
(:func:`superseded`) instead of being relabelled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from asn1crypto import x509 as asn1_x509

from drivers import errors as E
from drivers import sm2
from drivers.protocol import Capabilities
from drivers.skf.abi import ContainerType, PinType
from drivers.skf.keys import EccPublicKey, RsaPublicKey
from drivers.skf.library import AppHandle, ConHandle, DevHandle, PinInfo, SkfLibrary
from drivers.types import (
    CertObject,
    KeyObject,
    KeyPairSpec,
    NewCertificate,
    Pin,
    PinState,
    PublicKeyObject,
    SignAlgorithm,
    TokenContents,
    TokenInfo,
)
from drivers.worker import Worker

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
SIGN, ENC = b"/sign", b"/enc"

# DER DigestInfo prefixes (RFC 8017, section 9.2, note 1): SKF_RSASignData pads, we hash
_DIGEST_INFO = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
}
# DER of the SM2 curve's OID, as PKCS#11's CKA_EC_PARAMS would hold it
_SM2_EC_PARAMS = bytes.fromhex("06082a811ccf5501822d")


def _map_worker_error(exc: BaseException) -> E.CertHelperError | None:
    """ctypes failures inside a call are the library's fault, not ours to hide."""
    if isinstance(exc, OSError | ValueError):
        return E.DeviceError(detail=f"{type(exc).__name__}: {exc}")
    return None


def key_id(container: str, *, sign: bool) -> bytes:
    return container.encode("utf-8") + (SIGN if sign else ENC)


def split_key_id(value: bytes) -> tuple[str, bool]:
    """(container name, is the signing pair) of a key id; KeyNotFound for anything else."""
    for suffix, sign in ((SIGN, True), (ENC, False)):
        if value.endswith(suffix) and len(value) > len(suffix):
            try:
                return value[: -len(suffix)].decode("utf-8"), sign
            except UnicodeDecodeError:
                break
    raise E.KeyNotFound(detail=value.hex())


def pin_state(info: PinInfo) -> PinState:
    if info.locked:
        return PinState.LOCKED
    if info.remaining == 1:
        return PinState.FINAL_TRY
    if info.remaining < info.max_retries:
        return PinState.COUNT_LOW
    return PinState.OK


@dataclass
class _App:
    """One application of one present device: a token."""

    serial: str
    device_name: str
    dev: DevHandle
    name: str
    handle: AppHandle
    slot_id: int
    label: str
    manufacturer: str
    model: str
    logged_in: bool = False
    #: containers opened since the login, by name
    containers: dict[str, ConHandle] = field(default_factory=dict)
    #: signing public keys by container (read once per connection)
    public_keys: dict[str, EccPublicKey | RsaPublicKey] = field(default_factory=dict)
    #: SM2 Z values by (container, ID): they depend on the key and the ID only
    z_values: dict[tuple[str, bytes], bytes] = field(default_factory=dict)


class SkfDriver:
    """An SKF library with its worker thread. Tokens are addressed by serial."""

    family = "skf"

    def __init__(
        self,
        library_path: str | os.PathLike[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        native_long: bool = False,
    ) -> None:
        self.module_path = os.fspath(library_path)
        name = os.path.basename(self.module_path)
        self.worker = Worker(f"skf-{name}", timeout=timeout, map_error=_map_worker_error)
        self.library_description = f"GM/T 0016 SKF ({name})"
        self.manufacturer = ""
        self._apps: dict[str, _App] = {}
        self._devices: dict[str, DevHandle] = {}  # device name -> open handle
        try:
            self.lib: SkfLibrary = self.worker.call(
                lambda: SkfLibrary(self.module_path, native_long=native_long)
            )
        except BaseException:
            self.worker.abandon()
            raise
        self._capabilities = Capabilities(
            algorithms=frozenset(
                {
                    SignAlgorithm.SM2_SM3,
                    SignAlgorithm.RSA_PKCS1_SHA256,
                    SignAlgorithm.RSA_PKCS1_SHA1,
                }
            ),
            pin_retry_counts=True,
            default_pin_flag=True,
            key_generation=frozenset(
                kind
                for kind, call in (("SM2", "SKF_GenECCKeyPair"), ("RSA", "SKF_GenRSAKeyPair"))
                if self.lib.has(call)
                and self.lib.has("SKF_CreateContainer")
                and self.lib.has("SKF_DeleteContainer")
            ),
            certificate_writes=self.lib.has("SKF_ImportCertificate"),
            one_certificate_per_key=True,
            writes_need_login=True,
            device_events=self.lib.has_device_events,
        )

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def closed(self) -> bool:
        return self.worker.closed

    def close(self) -> None:
        """Log out of every application, close the handles and stop the worker."""
        if self.worker.closed:
            return
        with contextlib.suppress(E.CertHelperError):
            self.worker.call(self._close_all, timeout=5)
        self.worker.close()

    def _close_all(self) -> None:
        for serial in list(self._apps):
            self._drop(serial, quietly=True)
        for device in list(self._devices):
            self._disconnect(device)

    # --- devices and applications ------------------------------------------------------

    def list_tokens(self, *, rescan: bool = False) -> list[TokenInfo]:
        """One token per application of every present device. SKF_EnumDev sees insertions
        by itself, so ``rescan`` changes nothing here."""
        return self.worker.call(self._list_tokens)

    def _list_tokens(self) -> list[TokenInfo]:
        present = self.lib.enum_devices(True)
        for gone in set(self._devices) - set(present):
            self._forget_device(gone)
        found: list[_App] = []
        for slot_id, device in enumerate(present):
            try:
                found += self._applications(device, slot_id)
            except E.TokenAbsent:  # pulled out while we looked, or a stale handle
                self._forget_device(device)
                with contextlib.suppress(E.CertHelperError):
                    found += self._applications(device, slot_id)
            except E.CertHelperError as exc:
                log.warning("SKF device %r unreadable: %s", device, exc.code)
        serials = {a.serial for a in found}
        for serial in set(self._apps) - serials:
            self._drop(serial, quietly=True)
        infos = []
        for app in found:
            self._apps.setdefault(app.serial, app)
            infos.append(self._info(self._apps[app.serial]))
        return infos

    def _applications(self, device: str, slot_id: int) -> list[_App]:
        dev = self._devices.get(device)
        if dev is None:
            dev = self._devices[device] = self.lib.connect(device)
        info = self.lib.device_info(dev)
        if not self.manufacturer:
            self.manufacturer = info.manufacturer
        names = self.lib.enum_applications(dev)
        base = info.serial or device
        apps = []
        for name in names:
            serial = base if len(names) == 1 else f"{base}/{name}"
            known = self._apps.get(serial)
            if known is not None and known.dev == dev:
                apps.append(known)
                continue
            apps.append(
                _App(
                    serial=serial,
                    device_name=device,
                    dev=dev,
                    name=name,
                    handle=self.lib.open_application(dev, name),
                    slot_id=slot_id,
                    label=info.label or device,
                    manufacturer=info.manufacturer,
                    model=f"SKF {name}",
                )
            )
        return apps

    def _info(self, app: _App) -> TokenInfo:
        pins = self.lib.pin_info(app.handle, PinType.USER)
        return TokenInfo(
            module_path=self.module_path,
            slot_id=app.slot_id,
            label=app.label,
            serial=app.serial,
            manufacturer=app.manufacturer,
            model=app.model,
            flags=0,
            pin_state=pin_state(pins),
            family=self.family,
            pin_retries_left=pins.remaining,
            pin_max_retries=pins.max_retries,
            pin_is_default=pins.is_default,
        )

    def _forget_device(self, device: str) -> None:
        for serial in [s for s, a in self._apps.items() if a.device_name == device]:
            self._drop(serial, quietly=True)
        self._disconnect(device)

    def _disconnect(self, device: str) -> None:
        dev = self._devices.pop(device, None)
        if dev is not None:
            with contextlib.suppress(E.CertHelperError):
                self.lib.disconnect(dev)

    def _drop(self, serial: str, *, quietly: bool) -> None:
        """Forget an application: containers closed, login cleared (if the device is
        still there), handle closed."""
        app = self._apps.pop(serial, None)
        if app is None:
            return
        with contextlib.suppress(E.CertHelperError):
            self._close_containers(app)
            if app.logged_in:
                self.lib.clear_secure_state(app.handle)
            self.lib.close_application(app.handle)
        if not quietly:
            log.info("SKF token %s dropped", serial)

    def _app(self, serial: str) -> _App:
        app = self._apps.get(serial)
        if app is None:
            self._list_tokens()
            app = self._apps.get(serial)
        if app is None:
            raise E.TokenAbsent(detail=serial)
        return app

    def _on(self, serial: str, call: Callable[[_App], T]) -> T:
        """``call(app)`` for a present token; a device that vanished under it is forgotten
        (its login with it) before the TokenAbsent goes up."""
        app = self._app(serial)
        try:
            return call(app)
        except E.TokenAbsent:
            self._forget_device(app.device_name)
            raise

    def token_info(self, serial: str) -> TokenInfo:
        """Fresh PIN counters of one token."""
        return self.worker.call(lambda: self._on(serial, self._info))

    # --- objects -----------------------------------------------------------------------

    def read_objects(self, serial: str) -> TokenContents:
        """Every container's certificates and key pairs; no login needed in SKF."""
        return self.worker.call(lambda: self._on(serial, self._read_objects))

    def _read_objects(self, app: _App) -> TokenContents:
        info = self._info(app)
        certs: list[CertObject] = []
        keys: list[KeyObject] = []
        for name in self.lib.enum_containers(app.handle):
            con = self.lib.open_container(app.handle, name)
            try:
                kind = self.lib.container_type(con)
                if kind is ContainerType.EMPTY:
                    continue
                for sign in (True, False):
                    kid = key_id(name, sign=sign)
                    der = self.lib.export_certificate(con, sign)
                    if der:
                        certs.append(CertObject(key_id=kid, label=name, value=der))
                    public = self.lib.export_public_key(con, sign)
                    if public is not None:
                        keys.append(_key_object(kid, name, public))
            finally:
                with contextlib.suppress(E.CertHelperError):
                    self.lib.close_container(con)
        return TokenContents(token=info, certificates=superseded(certs), private_keys=keys)

    def public_keys(self, serial: str) -> list[PublicKeyObject]:
        def collect(app: _App) -> list[PublicKeyObject]:
            out = []
            for name in self.lib.enum_containers(app.handle):
                con = self.lib.open_container(app.handle, name)
                try:
                    for sign in (True, False):
                        key = self.lib.export_public_key(con, sign)
                        if key is not None:
                            out.append(
                                PublicKeyObject(key_id(name, sign=sign), name, key.spki_der())
                            )
                finally:
                    with contextlib.suppress(E.CertHelperError):
                        self.lib.close_container(con)
            return out

        return self.worker.call(lambda: self._on(serial, collect))

    # --- PINs ----------------------------------------------------------------------------

    def login(self, serial: str, pin: Pin | None) -> None:
        """SKF_VerifyPIN on the token's application. A PIN the counters say is locked is
        never tried; a wrong one reports the tries left (``.data["retries_left"]``)."""
        if pin is None:
            raise E.BadInput(detail="a PIN is required for this key")
        self.worker.call(lambda: self._on(serial, lambda app: self._login(app, pin)))

    def _login(self, app: _App, pin: Pin) -> None:
        self._refuse_locked(app)
        if app.logged_in:  # a fresh login, as PKCS#11 does: the old one ends first
            self._logout(app)
        self.lib.verify_pin(app.handle, pin, PinType.USER)
        app.logged_in = True

    def _refuse_locked(self, app: _App) -> None:
        pins = self.lib.pin_info(app.handle, PinType.USER)
        if pins.locked:
            raise E.PinLocked(detail=app.label, retries_left=0)

    def is_logged_in(self, serial: str) -> bool:
        app = self._apps.get(serial)
        return app is not None and app.logged_in

    def logout(self, serial: str) -> None:
        def out(app: _App) -> None:
            self._logout(app)

        with contextlib.suppress(E.TokenAbsent):
            self.worker.call(lambda: self._on(serial, out))

    def _logout(self, app: _App) -> None:
        self._close_containers(app)
        if app.logged_in:
            app.logged_in = False
            self.lib.clear_secure_state(app.handle)

    def change_pin(self, serial: str, old: Pin, new: Pin) -> None:
        """SKF_ChangePIN (no login needed); a wrong old PIN counts and reports the tries
        left, a locked PIN is refused before any try."""

        def change(app: _App) -> None:
            self._refuse_locked(app)
            self.lib.change_pin(app.handle, old, new, PinType.USER)

        self.worker.call(lambda: self._on(serial, change))

    # --- signing ----------------------------------------------------------------------

    def sign(
        self,
        serial: str,
        key_id: bytes,
        data: bytes,
        algorithm: SignAlgorithm,
        *,
        sm2_id: bytes = sm2.DEFAULT_ID,
    ) -> bytes:
        """Sign ``data`` (hashed here) with a container's signing key; needs a login."""
        algorithm = SignAlgorithm(algorithm)
        if algorithm not in self._capabilities.algorithms:
            raise E.MechanismUnsupported(detail=f"{algorithm.value} on an SKF key")
        return self.worker.call(
            lambda: self._on(
                serial, lambda app: self._sign(app, key_id, bytes(data), algorithm, sm2_id)
            )
        )

    def _sign(
        self, app: _App, kid: bytes, data: bytes, algorithm: SignAlgorithm, sm2_id: bytes
    ) -> bytes:
        if not app.logged_in:
            raise E.NotLoggedIn(detail=app.serial)
        container, signing = split_key_id(kid)
        if not signing:
            raise E.MechanismUnsupported(detail="an SKF encryption key does not sign")
        con = self._container(app, container)
        public = app.public_keys.get(container)
        if public is None:
            public = self.lib.export_public_key(con, True)
            if public is None:
                raise E.KeyNotFound(detail=container)
            app.public_keys[container] = public
        if algorithm is SignAlgorithm.SM2_SM3:
            if not isinstance(public, EccPublicKey):
                raise E.MechanismUnsupported(detail=f"SM2 with the RSA container {container}")
            z = app.z_values.get((container, sm2_id))
            if z is None:
                z = app.z_values[(container, sm2_id)] = sm2.z_value((public.x, public.y), sm2_id)
            r, s = self.lib.ecc_sign(con, sm2.sm3(z + data))  # e = SM3(Z ‖ M)
            return sm2.signature_der(r, s)
        if not isinstance(public, RsaPublicKey):
            raise E.MechanismUnsupported(detail=f"{algorithm.value} with an SM2 container")
        name = algorithm.hash_name
        return self.lib.rsa_sign(con, _DIGEST_INFO[name] + hashlib.new(name, data).digest())

    def _container(self, app: _App, name: str) -> ConHandle:
        con = app.containers.get(name)
        if con is None:
            try:
                con = app.containers[name] = self.lib.open_container(app.handle, name)
            except E.ObjectNotFound:
                raise E.KeyNotFound(detail=name) from None
        return con

    def _close_containers(self, app: _App) -> None:
        for con in app.containers.values():
            with contextlib.suppress(E.CertHelperError):
                self.lib.close_container(con)
        app.containers.clear()

    # --- writes (online renewal) -------------------------------------------------------

    def generate_key_pair(self, serial: str, spec: KeyPairSpec, label: str) -> PublicKeyObject:
        """A new signing key pair (SM2, or RSA-1024/2048) in a **new container** named after
        ``label`` (the old container's name) with a random suffix; needs a login.

        An SKF container holds one signing key pair and SKF_GenECCKeyPair replaces it, so
        generating in the old container would destroy the key of the certificate still in
        use. The old container is not touched; a new key pair that never gets its
        certificate stays as a key without a certificate (keys are never deleted)."""
        kind = spec.key_type.upper()
        if kind == "SM2":
            if spec.bits not in (None, 256):
                raise E.BadInput(detail="an SM2 key pair has 256 bits")
        elif kind == "RSA":
            if spec.bits not in (1024, 2048):
                raise E.MechanismUnsupported(detail=f"RSA-{spec.bits} on an SKF key (1024/2048)")
        else:
            raise E.MechanismUnsupported(detail=f"{spec.key_type} key pairs on an SKF key")
        if kind not in self._capabilities.key_generation:
            raise E.MechanismUnsupported(detail=f"{os.path.basename(self.module_path)}: {kind}")
        return self.worker.call(
            lambda: self._on(serial, lambda app: self._generate(app, kind, spec.bits, label))
        )

    def _generate(self, app: _App, kind: str, bits: int | None, label: str) -> PublicKeyObject:
        if not app.logged_in:
            raise E.NotLoggedIn(detail=app.serial)
        name = new_container_name(label, set(self.lib.enum_containers(app.handle)))
        con = self.lib.create_container(app.handle, name)
        try:
            public: EccPublicKey | RsaPublicKey = (
                self.lib.gen_ecc_key_pair(con)
                if kind == "SM2"
                else self.lib.gen_rsa_key_pair(con, bits or 2048)
            )
        except E.CertHelperError:
            with contextlib.suppress(E.CertHelperError):  # still empty: no key is lost
                self.lib.close_container(con)
                self.lib.delete_container(app.handle, name)
            raise
        app.containers[name] = con
        app.public_keys[name] = public
        log.info("generated %s key pair in new container %r on %s", kind, name, app.serial)
        return PublicKeyObject(key_id(name, sign=True), name, public.spki_der())

    def write_certificate(
        self,
        serial: str,
        new: NewCertificate,
        *,
        replace: CertObject | None = None,
        archive_label: str | None = None,
    ) -> None:
        """Write ``new`` as the signing certificate of its container with **one**
        SKF_ImportCertificate: either it is there afterwards or nothing changed.

        A container has one signing-certificate slot and SKF can neither relabel nor delete
        a certificate alone, so ``archive_label`` does not apply (``one_certificate_per_key``):
        - ``replace`` in the same container (the same key) is overwritten by ``new``;
        - ``replace`` in another container (a new key) stays where it is, with its key, and
          is reported archived from then on because ``new`` supersedes it (see
          :func:`superseded`).
        ``replace`` must still be on the token exactly once; the certificate must carry the
        container's signing public key. Encryption certificates come with a CA-made key
        pair (SKF_ImportECCKeyPair) and are not written here."""
        self.worker.call(lambda: self._on(serial, lambda app: self._write(app, new, replace)))

    def _write(self, app: _App, new: NewCertificate, replace: CertObject | None) -> None:
        if not app.logged_in:
            raise E.NotLoggedIn(detail=app.serial)
        if not new.der:
            raise E.BadInput(detail="empty certificate")
        container, signing = split_key_id(new.key_id)
        if not signing:
            raise E.MechanismUnsupported(
                detail="an SKF encryption certificate comes with its CA-made key pair"
            )
        present = self._read_objects(app).certificates
        if any(c.value == new.der for c in present):
            raise E.CertificateExists(detail=container)
        if replace is not None:
            matches = [c for c in present if c.value == replace.value]
            if len(matches) != 1:
                raise E.TokenChanged(detail=f"{len(matches)} certificates match {replace.label!r}")
        con = self._container(app, container)
        public = self.lib.export_public_key(con, True)
        if public is None:
            raise E.KeyNotFound(detail=container)
        if not certificate_carries(new.der, public):
            raise E.BadInput(detail=f"the certificate is not for the key of {container!r}")
        self.lib.import_certificate(con, new.der, sign=True)
        log.info("wrote the signing certificate of %r on %s", container, app.serial)


def _key_object(kid: bytes, label: str, public: EccPublicKey | RsaPublicKey) -> KeyObject:
    if isinstance(public, EccPublicKey):
        return KeyObject(kid, label, "SM2", 256, _SM2_EC_PARAMS)
    return KeyObject(kid, label, "RSA", public.bits)


# --- renewal: container names, certificates and their keys, superseded certificates --------

MAX_CONTAINER_NAME = 64  # bytes (GmSSL's skf.h; libsoftskf's limit too)
_RENEWAL_SUFFIX = re.compile(r"-r[0-9a-f]{8}$")


def new_container_name(label: str, taken: set[str]) -> str:
    """``<label>-r<8 hex>``: the old container's name (a suffix of an earlier renewal
    dropped, unusable characters removed, cut to fit 64 bytes) and a random suffix."""
    base = "".join(c for c in label if c.isprintable() and c not in "/\\").lstrip(".")
    base = _RENEWAL_SUFFIX.sub("", base.strip()) or "certhelper"
    room = MAX_CONTAINER_NAME - 10
    while len(base.encode("utf-8")) > room:
        base = base[:-1]
    while True:
        name = f"{base}-r{secrets.token_hex(4)}"
        if name not in taken:
            return name


def certificate_carries(der: bytes, public: EccPublicKey | RsaPublicKey) -> bool:
    """Whether the certificate's subject public key is ``public``."""
    try:
        info = asn1_x509.Certificate.load(der)["tbs_certificate"]["subject_public_key_info"]
        algorithm = info["algorithm"]["algorithm"].native
        if isinstance(public, EccPublicKey):
            return algorithm == "ec" and bytes(info["public_key"]) == public.point
        numbers = info["public_key"].parsed
        return algorithm == "rsa" and (
            int(numbers["modulus"].native),
            int(numbers["public_exponent"].native),
        ) == (public.n, public.e)
    except (ValueError, TypeError, KeyError):
        return False


@dataclass(frozen=True)
class _Signing:
    index: int
    container: str
    subject: bytes
    issuer: bytes
    algorithm: str
    not_before: datetime
    not_after: datetime


def superseded(certs: list[CertObject]) -> list[CertObject]:
    """``certs`` with every signing certificate that a later one renews labelled
    ``archived-YYYYMMDD:<container>`` (the date: the newer one's notBefore, UTC).

    SKF cannot relabel or delete a certificate, so a renewal with a new key leaves the old
    certificate in its container. It counts as renewed (and is then listed, never used)
    when the signing certificate of **another** container names the same subject and
    issuer (DER, byte for byte), has a key of the same algorithm and runs later — what a
    renewal produces. A key holding RSA and SM2 certificates of one holder keeps both."""
    parsed: list[_Signing] = []
    for i, c in enumerate(certs):
        if not c.key_id.endswith(SIGN):
            continue
        try:
            tbs = asn1_x509.Certificate.load(c.value)["tbs_certificate"]
            info = tbs["subject_public_key_info"]["algorithm"]
            curve = info["parameters"].dump() if info["algorithm"].native == "ec" else b""
            parsed.append(
                _Signing(
                    i,
                    split_key_id(c.key_id)[0],
                    tbs["subject"].dump(),
                    tbs["issuer"].dump(),
                    f"{info['algorithm'].dotted}:{curve.hex()}",
                    tbs["validity"]["not_before"].native,
                    tbs["validity"]["not_after"].native,
                )
            )
        except (ValueError, TypeError, KeyError, E.KeyNotFound):
            continue  # unreadable: listed as it is, the layers above say why
    out = list(certs)
    for old in parsed:
        newer = [
            p
            for p in parsed
            if p.container != old.container
            and (p.subject, p.issuer, p.algorithm) == (old.subject, old.issuer, old.algorithm)
            and p.not_after > old.not_after
        ]
        if newer:
            latest = max(newer, key=lambda p: p.not_after)
            stamp = latest.not_before.astimezone(UTC).strftime("%Y%m%d")
            out[old.index] = dataclasses.replace(
                certs[old.index], label=f"archived-{stamp}:{old.container}"
            )
    return out
