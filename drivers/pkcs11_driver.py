"""One loaded PKCS#11 module, driven from one dedicated worker thread.

python-pkcs11 releases the GIL and initialises the module without OS locking,
so every call for a module runs on that module's single worker thread
(pkcs11-notes.md, pitfall 1). Public methods are blocking and thread-safe: they
hand the work to the worker and wait (with a timeout). ``submit`` returns the
future for async callers (see :mod:`drivers.aio`).

Login state is tracked here: one logged-in read-write session per token, reused
for every read, signature and write on that token while it lasts, because
opening and closing other sessions can end the login (pitfall 2).

Online renewal writes to the token (a key pair, then a certificate); each write
is all-or-nothing: one C_GenerateKeyPair, or a certificate write that undoes
itself when a later step fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pkcs11
import pkcs11.exceptions as pe
from asn1crypto import keys as asn1_keys
from pkcs11 import (
    Attribute,
    CertificateType,
    KeyType,
    Mechanism,
    MechanismFlag,
    ObjectClass,
    TokenFlag,
)
from pkcs11.util.ec import encode_ec_public_key, encode_ecdsa_signature
from pkcs11.util.rsa import encode_rsa_public_key

from drivers import errors as E
from drivers.ckraw import RawModule
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

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0

# DER DigestInfo prefixes (RFC 8017, section 9.2, note 1) for CKM_RSA_PKCS.
_DIGEST_INFO = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
}
_RSA_COMBINED = {
    SignAlgorithm.RSA_PKCS1_SHA256: Mechanism.SHA256_RSA_PKCS,
    SignAlgorithm.RSA_PKCS1_SHA1: Mechanism.SHA1_RSA_PKCS,
}
_EC_COMBINED = {
    SignAlgorithm.ECDSA_SHA256: Mechanism.ECDSA_SHA256,
    SignAlgorithm.ECDSA_SHA384: Mechanism.ECDSA_SHA384,
}

# python-pkcs11 exception -> our error class. Order matters: first match wins.
_ERROR_MAP: tuple[tuple[type[Exception], type[E.CertHelperError]], ...] = (
    (pe.PinIncorrect, E.PinIncorrect),
    (pe.PinLocked, E.PinLocked),
    (pe.PinLenRange, E.PinLenRange),
    (pe.PinInvalid, E.PinInvalid),
    (pe.PinTooWeak, E.PinInvalid),
    (pe.PinExpired, E.PinExpired),
    (pe.UserNotLoggedIn, E.NotLoggedIn),
    (pe.UserPinNotInitialized, E.PinLocked),
    (pe.TokenNotPresent, E.TokenAbsent),
    (pe.DeviceRemoved, E.TokenAbsent),
    (pe.TokenNotRecognised, E.TokenAbsent),
    (pe.SlotIDInvalid, E.TokenAbsent),
    (pe.SessionHandleInvalid, E.TokenAbsent),
    (pe.SessionClosed, E.TokenAbsent),
    (pe.NoSuchToken, E.TokenNotFound),
    (pe.MultipleTokensReturned, E.TokenAmbiguous),
    (pe.MechanismInvalid, E.MechanismUnsupported),
    (pe.MechanismParamInvalid, E.MechanismUnsupported),
    (pe.FunctionNotSupported, E.MechanismUnsupported),
    (pe.KeyTypeInconsistent, E.MechanismUnsupported),
    (pe.KeySizeRange, E.MechanismUnsupported),  # key generation: size the token cannot make
    (pe.DomainParamsInvalid, E.MechanismUnsupported),  # key generation: unknown curve
    (pe.NoSuchKey, E.KeyNotFound),
    (pe.KeyHandleInvalid, E.KeyNotFound),
    (pe.ObjectHandleInvalid, E.KeyNotFound),
    (pe.OperationActive, E.TokenBusy),
    (pe.SessionCount, E.TokenBusy),
    (pe.DataLenRange, E.BadInput),
    (pe.DataInvalid, E.BadInput),
    (pe.ArgumentsBad, E.BadInput),
)


def map_pkcs11_error(exc: BaseException) -> E.CertHelperError:
    """Translate a python-pkcs11 exception (the one place this happens)."""
    for src, dst in _ERROR_MAP:
        if isinstance(exc, src):
            return dst(detail=type(exc).__name__)
    # str(exc) is empty for most of these (pitfall 4): name the type.
    return E.DeviceError(detail=type(exc).__name__)


def pin_state_from_flags(flags: int) -> PinState:
    """The worst user-PIN condition the token flags report."""
    f = TokenFlag(flags) if not isinstance(flags, TokenFlag) else flags
    if f & TokenFlag.USER_PIN_LOCKED:
        return PinState.LOCKED
    if f & TokenFlag.USER_PIN_FINAL_TRY:
        return PinState.FINAL_TRY
    if f & TokenFlag.USER_PIN_COUNT_LOW:
        return PinState.COUNT_LOW
    if f & TokenFlag.USER_PIN_TO_BE_CHANGED:
        return PinState.TO_BE_CHANGED
    return PinState.OK


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).rstrip(" \x00")


@dataclass
class _Login:
    session: Any  # pkcs11.Session
    slot_id: int
    keys: dict[tuple[bytes, str], Any] = field(default_factory=dict)


class Pkcs11Driver:
    """A PKCS#11 module with its worker thread. Tokens are addressed by serial."""

    def __init__(
        self,
        module_path: str | os.PathLike[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        raw_module: Callable[[str], RawModule] = RawModule,
    ) -> None:
        """``raw_module`` reads token info beside python-pkcs11; tests pass a double
        that adds flags SoftHSM never sets (locked, final try, to be changed)."""
        self.module_path = os.fspath(module_path)
        self._raw_factory = raw_module
        self.timeout = timeout
        name = os.path.basename(self.module_path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"pkcs11-{name}")
        self._worker: threading.Thread | None = None
        self._lib: Any = None
        self._raw: RawModule | None = None
        self._logins: dict[str, _Login] = {}
        self._slots: dict[str, Any] = {}  # serial -> pkcs11.Slot from the last enumeration
        self._mechs: dict[str, frozenset[Mechanism]] = {}
        self.library_description = ""
        self.manufacturer = ""
        self._closed = False
        try:
            self.call(self._load)
        except BaseException:
            self._closed = True
            self._executor.shutdown(wait=False)
            raise

    # --- worker plumbing ---------------------------------------------------

    def _on_worker(self) -> bool:
        return threading.current_thread() is self._worker

    def _wrap(self, fn: Callable[..., T], *args: Any) -> T:
        if self._worker is None:
            self._worker = threading.current_thread()
        try:
            return fn(*args)
        except E.CertHelperError:
            raise
        except pe.PKCS11Error as exc:
            raise map_pkcs11_error(exc) from None

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on the worker thread; errors arrive already mapped."""
        if self._closed:
            raise E.DeviceError(detail=f"driver for {self.module_path} is closed")
        return self._executor.submit(self._wrap, fn, *args)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        if self._on_worker():
            return self._wrap(fn, *args)
        fut = self.submit(fn, *args)
        try:
            return fut.result(timeout=self.timeout if timeout is None else timeout)
        except FutureTimeout:
            raise E.OperationTimeout(detail=f"{self.timeout:.0f}s") from None

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Log out of every token and stop the worker. The library stays cached."""
        if self._closed:
            return
        with contextlib.suppress(E.CertHelperError):
            self.call(self._logout_all, timeout=5)
        self._closed = True
        self._executor.shutdown(wait=True)

    # --- loading -----------------------------------------------------------

    def _load(self) -> None:
        if not os.path.isfile(self.module_path):
            raise E.ModuleLoadFailed(detail=f"not found: {self.module_path}")
        try:
            self._lib = pkcs11.lib(self.module_path)
        except pe.PKCS11Error as exc:
            raise E.ModuleLoadFailed(detail=f"{self.module_path}: {exc}") from None
        except (OSError, RuntimeError) as exc:
            raise E.ModuleLoadFailed(detail=f"{self.module_path}: {exc}") from None
        self._raw = self._raw_factory(self.module_path)
        self.library_description = _text(getattr(self._lib, "library_description", ""))
        self.manufacturer = _text(getattr(self._lib, "manufacturer_id", ""))

    # --- enumeration -------------------------------------------------------

    def list_tokens(self, *, rescan: bool = False) -> list[TokenInfo]:
        """Initialised tokens now present. ``rescan`` re-initialises the module
        to see tokens SoftHSM created since load, but only when no token of this
        module is logged in (it would end those logins)."""
        return self.call(self._list_tokens, rescan)

    def _list_tokens(self, rescan: bool) -> list[TokenInfo]:
        if rescan and not self._logins:
            self._lib.reinitialize()
            self._mechs.clear()
        found: list[TokenInfo] = []
        slots: dict[str, Any] = {}
        for slot in self._lib.get_slots(token_present=True):
            try:
                token = slot.get_token()
            except pe.PKCS11Error as exc:  # removed mid-enumeration, or a SoftHSM dir gone
                log.debug("slot %s: no token (%s)", slot.slot_id, type(exc).__name__)
                continue
            flags = int(token.flags)
            raw = self._raw.token_info(slot.slot_id) if self._raw else None
            if raw is not None:
                flags = raw.flags
            if not flags & TokenFlag.TOKEN_INITIALIZED:
                continue
            serial = _text(token.serial)
            slots[serial] = slot
            found.append(
                TokenInfo(
                    module_path=self.module_path,
                    slot_id=int(slot.slot_id),
                    label=_text(token.label),
                    serial=serial,
                    manufacturer=_text(token.manufacturer_id),
                    model=_text(token.model),
                    flags=flags,
                    pin_state=pin_state_from_flags(flags),
                    pin_min_len=raw.min_pin_len if raw else None,
                    pin_max_len=raw.max_pin_len if raw else None,
                    protected_auth_path=bool(flags & TokenFlag.PROTECTED_AUTHENTICATION_PATH),
                    login_required=bool(flags & TokenFlag.LOGIN_REQUIRED),
                )
            )
        self._slots = slots
        for gone in set(self._logins) - set(slots):  # removed while logged in
            log.info("token %s removed; dropping its login", gone)
            self._logins.pop(gone, None)
        return found

    def _token(self, serial: str) -> Any:
        slot = self._slots.get(serial)
        if slot is None:
            self._list_tokens(False)
            slot = self._slots.get(serial)
        if slot is None:
            raise E.TokenAbsent(detail=serial)
        try:
            return slot.get_token()
        except pe.PKCS11Error:
            self._logins.pop(serial, None)
            raise E.TokenAbsent(detail=serial) from None

    def token_info(self, serial: str) -> TokenInfo:
        """Fresh flags and PIN state of one token."""

        def fresh() -> TokenInfo:
            for info in self._list_tokens(False):
                if info.serial == serial:
                    return info
            raise E.TokenAbsent(detail=serial)

        return self.call(fresh)

    # --- objects -----------------------------------------------------------

    def read_objects(self, serial: str) -> TokenContents:
        """Certificates and private keys (by CKA_ID). Without a login, private
        keys are usually invisible: their public-key twins stand in for them."""
        return self.call(self._read_objects, serial)

    def _read_objects(self, serial: str) -> TokenContents:
        info = next((t for t in self._list_tokens(False) if t.serial == serial), None)
        if info is None:
            raise E.TokenAbsent(detail=serial)
        login = self._logins.get(serial)
        if login is not None:
            return self._collect(info, login.session)
        with self._token(serial).open() as session:
            return self._collect(info, session)

    def _collect(self, info: TokenInfo, session: Any) -> TokenContents:
        certs: list[CertObject] = []
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}):
            certs.append(
                CertObject(
                    key_id=_attr(obj, Attribute.ID, b""),
                    label=_text(_attr(obj, Attribute.LABEL, "")),
                    value=_attr(obj, Attribute.VALUE, b""),
                )
            )
        keys: dict[bytes, KeyObject] = {}
        for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
            for obj in session.get_objects({Attribute.CLASS: cls}):
                key_id = _attr(obj, Attribute.ID, b"")
                if key_id in keys:
                    continue
                if cls == ObjectClass.PUBLIC_KEY and info.serial in self._logins:
                    continue  # logged in: the real private keys were listed
                keys[key_id] = _key_object(obj, key_id, from_public=cls == ObjectClass.PUBLIC_KEY)
        return TokenContents(token=info, certificates=certs, private_keys=list(keys.values()))

    # --- login -------------------------------------------------------------

    def login(self, serial: str, pin: Pin | None) -> None:
        """Log in to a token, keeping one session. ``pin=None`` uses the PIN pad
        of a token with a protected authentication path. Never retries; refuses
        at once when the flags say the PIN is locked."""
        self.call(self._login, serial, pin)

    def _login(self, serial: str, pin: Pin | None) -> None:
        self._logout(serial)
        token = self._token(serial)
        flags = self._fresh_flags(token)
        if flags & TokenFlag.USER_PIN_LOCKED:
            raise E.PinLocked(detail=_text(token.label))
        if pin is None:
            if not flags & TokenFlag.PROTECTED_AUTHENTICATION_PATH:
                raise E.BadInput(detail="a PIN is required for this token")
            user_pin: Any = pkcs11.PROTECTED_AUTH
        else:
            user_pin = pin.reveal()
        try:
            session = token.open(rw=True, user_pin=user_pin)
        except pe.UserAlreadyLoggedIn:
            # Logged in by a session we lost track of: close them all and retry once
            # without a PIN try burned (the failed call never reached C_Login's check).
            self._close_all(token)
            session = token.open(rw=True, user_pin=user_pin)
        except pe.PKCS11Error:
            self._close_all(token)  # python-pkcs11 leaks the session on a failed login
            raise
        self._logins[serial] = _Login(session=session, slot_id=int(token.slot.slot_id))

    def _fresh_flags(self, token: Any) -> int:
        raw = self._raw.token_info(token.slot.slot_id) if self._raw else None
        return raw.flags if raw is not None else int(token.flags)

    def _close_all(self, token: Any) -> None:
        if self._raw is not None:
            self._raw.close_all_sessions(token.slot.slot_id)

    def is_logged_in(self, serial: str) -> bool:
        return self.call(lambda: serial in self._logins)

    def logout(self, serial: str) -> None:
        self.call(self._logout, serial)

    def _logout(self, serial: str) -> None:
        login = self._logins.pop(serial, None)
        if login is None:
            return
        try:
            login.session.close()  # closing the last session ends the login
        except pe.PKCS11Error as exc:
            log.debug("logout %s: %s", serial, type(exc).__name__)

    def _logout_all(self) -> None:
        for serial in list(self._logins):
            self._logout(serial)

    # --- signing -----------------------------------------------------------

    def sign(self, serial: str, key_id: bytes, data: bytes, algorithm: SignAlgorithm) -> bytes:
        """Sign ``data`` (hashed here) with the private key ``key_id``; needs a login.
        ECDSA signatures come back DER-encoded."""
        return self.call(self._sign, serial, key_id, data, SignAlgorithm(algorithm))

    def _sign(self, serial: str, key_id: bytes, data: bytes, algorithm: SignAlgorithm) -> bytes:
        login = self._logins.get(serial)
        if login is None:
            raise E.NotLoggedIn(detail=serial)
        ec = algorithm in _EC_COMBINED
        key = self._private_key(login, key_id, KeyType.EC if ec else KeyType.RSA)
        mechs = self._mechanisms(serial, login)
        digest_name = algorithm.hash_name
        if ec:
            if Mechanism.ECDSA in mechs or not mechs:
                raw = key.sign(hashlib.new(digest_name, data).digest(), mechanism=Mechanism.ECDSA)
            elif _EC_COMBINED[algorithm] in mechs:
                raw = key.sign(data, mechanism=_EC_COMBINED[algorithm])
            else:
                raise E.MechanismUnsupported(detail=algorithm.value)
            return encode_ecdsa_signature(raw)
        if Mechanism.RSA_PKCS in mechs or not mechs:
            digest_info = _DIGEST_INFO[digest_name] + hashlib.new(digest_name, data).digest()
            return key.sign(digest_info, mechanism=Mechanism.RSA_PKCS)
        if _RSA_COMBINED[algorithm] in mechs:
            return key.sign(data, mechanism=_RSA_COMBINED[algorithm])
        raise E.MechanismUnsupported(detail=algorithm.value)

    def _private_key(self, login: _Login, key_id: bytes, key_type: KeyType) -> Any:
        cache_key = (key_id, key_type.name)
        key = login.keys.get(cache_key)
        if key is None:
            try:
                key = login.session.get_key(
                    object_class=ObjectClass.PRIVATE_KEY, key_type=key_type, id=key_id
                )
            except pe.NoSuchKey:
                raise E.KeyNotFound(detail=key_id.hex()) from None
            except pe.MultipleObjectsReturned:
                raise E.KeyNotFound(detail=f"several keys with id {key_id.hex()}") from None
            login.keys[cache_key] = key
        return key

    def _mechanisms(self, serial: str, login: _Login) -> frozenset[Mechanism]:
        mechs = self._mechs.get(serial)
        if mechs is None:
            try:
                mechs = frozenset(self._slots[serial].get_mechanisms())
            except (pe.PKCS11Error, KeyError, ValueError):
                mechs = frozenset()  # unknown: try the plain mechanisms
            self._mechs[serial] = mechs
        return mechs

    # --- renewal: public keys, key generation, certificate writing ----------

    @contextlib.contextmanager
    def _session(self, serial: str, *, rw: bool = False) -> Iterator[Any]:
        """The login's session when logged in (another session's close could end
        the login), else a fresh one for the duration. Checks the token is present."""
        token = self._token(serial)
        login = self._logins.get(serial)
        if login is not None:
            yield login.session
            return
        with token.open(rw=rw) as session:
            yield session

    def public_keys(self, serial: str) -> list[PublicKeyObject]:
        """Every public-key object on the token as DER SubjectPublicKeyInfo; no
        login needed. Objects that cannot be encoded (other key types) are skipped."""
        return self.call(self._public_keys, serial)

    def _public_keys(self, serial: str) -> list[PublicKeyObject]:
        found: list[PublicKeyObject] = []
        with self._session(serial) as session:
            for obj in list(session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY})):
                label = _text(_attr(obj, Attribute.LABEL, ""))
                try:
                    spki = _spki(obj)
                except (pe.PKCS11Error, ValueError, TypeError, KeyError) as exc:
                    log.debug("public key %r skipped: %s", label, type(exc).__name__)
                    continue
                found.append(PublicKeyObject(_attr(obj, Attribute.ID, b""), label, spki))
        return found

    def generate_key_pair(self, serial: str, spec: KeyPairSpec, label: str) -> PublicKeyObject:
        """Generate a signing key pair on the token (one C_GenerateKeyPair, so
        all-or-nothing) under a fresh random 20-byte CKA_ID; needs a login. The
        private key is sensitive and never extractable."""
        return self.call(self._generate_key_pair, serial, spec, label)

    def _generate_key_pair(self, serial: str, spec: KeyPairSpec, label: str) -> PublicKeyObject:
        self._token(serial)  # present?
        login = self._logins.get(serial)
        if login is None:
            raise E.NotLoggedIn(detail=serial)
        kind = spec.key_type.upper()
        if kind == "RSA":
            if not isinstance(spec.bits, int) or spec.bits <= 0:
                raise E.BadInput(detail="an RSA key pair needs its modulus size in bits")
            gen_mech = Mechanism.RSA_PKCS_KEY_PAIR_GEN
        elif kind == "EC":
            if not spec.ec_params:
                raise E.BadInput(detail="an EC key pair needs the curve's CKA_EC_PARAMS")
            gen_mech = Mechanism.EC_KEY_PAIR_GEN
        else:
            raise E.MechanismUnsupported(detail=f"key type {spec.key_type}")
        mechs = self._mechanisms(serial, login)
        if mechs and gen_mech not in mechs:
            raise E.MechanismUnsupported(detail=gen_mech.name)

        session = login.session
        key_id = _unused_id(session)
        private_template = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        public_template: dict[Attribute, Any] = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: False,
            Attribute.VERIFY: True,
            Attribute.ENCRYPT: False,
            Attribute.WRAP: False,
        }
        options: dict[str, Any] = {
            "id": key_id,
            "label": label,
            "store": True,
            "capabilities": MechanismFlag.SIGN | MechanismFlag.VERIFY,
            "public_template": public_template,
            "private_template": private_template,
        }
        if kind == "RSA":
            public_template[Attribute.PUBLIC_EXPONENT] = b"\x01\x00\x01"
            public, private = session.generate_keypair(KeyType.RSA, spec.bits, **options)
        else:
            # Local (never stored) domain parameters carry CKA_EC_PARAMS into the
            # public template; the key pair is still one C_GenerateKeyPair.
            params = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: spec.ec_params}, local=True
            )
            public, private = params.generate_keypair(**options)
        try:
            spki = _spki(public)
        except Exception:
            _destroy_quietly((private, public), label)  # keep all-or-nothing
            raise
        log.info("generated %s key pair %s on %s", kind, key_id.hex(), serial)
        return PublicKeyObject(key_id=key_id, label=label, spki=spki)

    def write_certificate(
        self,
        serial: str,
        new: NewCertificate,
        *,
        replace: CertObject | None = None,
        archive_label: str | None = None,
    ) -> None:
        """Store ``new`` as a public certificate object, all-or-nothing.

        With ``replace`` (matched by value; it must still be on the token exactly
        once), the old certificate is then relabelled ``archive_label`` or, when
        that is None, destroyed. Keys are never touched. If a step after the new
        object was created fails, the new object is destroyed again.
        """
        self.call(self._write_certificate, serial, new, replace, archive_label)

    def _write_certificate(
        self,
        serial: str,
        new: NewCertificate,
        replace: CertObject | None,
        archive_label: str | None,
    ) -> None:
        if not new.der:
            raise E.BadInput(detail="empty certificate")
        with self._session(serial, rw=True) as session:
            certs = list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}))
            if any(_attr(c, Attribute.VALUE, None) == new.der for c in certs):
                raise E.CertificateExists(detail=new.label)
            old: Any = None
            old_label = ""
            if replace is not None:
                matches = [c for c in certs if _attr(c, Attribute.VALUE, None) == replace.value]
                if len(matches) != 1:
                    raise E.TokenChanged(
                        detail=f"{len(matches)} certificate objects match {replace.label!r}"
                    )
                old = matches[0]
                old_label = _attr(old, Attribute.LABEL, "")

            created = session.create_object(
                {
                    Attribute.CLASS: ObjectClass.CERTIFICATE,
                    Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: False,
                    Attribute.LABEL: new.label,
                    Attribute.ID: new.key_id,
                    Attribute.VALUE: new.der,
                    Attribute.SUBJECT: new.subject,
                    Attribute.ISSUER: new.issuer,
                    Attribute.SERIAL_NUMBER: new.serial_number,
                }
            )
            relabelled = False
            try:
                if old is not None and archive_label is not None:
                    old[Attribute.LABEL] = archive_label
                    relabelled = True
                elif old is not None:
                    old.destroy()
            except Exception as exc:
                log.warning(
                    "writing certificate %r to %s failed (%s); undoing",
                    new.label,
                    serial,
                    type(exc).__name__,
                )
                self._undo_write(serial, created, new.label, old if relabelled else None, old_label)
                raise  # mapped by _wrap
        log.info("wrote certificate %r to %s", new.label, serial)

    def _undo_write(
        self, serial: str, created: Any, new_label: str, old: Any, old_label: str
    ) -> None:
        """Destroy the new certificate object and give ``old`` (when it was
        relabelled) its label back. A failure here is only logged: the caller
        raises the original error."""
        try:
            if old is not None:
                old[Attribute.LABEL] = old_label
            created.destroy()
        except Exception as exc:
            log.error(
                "undo failed on %s (%s): the new certificate %r may remain and the old "
                "certificate %r may carry another label",
                serial,
                type(exc).__name__,
                new_label,
                old_label,
            )

    # --- PIN change --------------------------------------------------------

    def change_pin(self, serial: str, old: Pin, new: Pin) -> None:
        """C_SetPIN in a read-write session. Refuses on a locked PIN; never retries."""
        self.call(self._change_pin, serial, old, new)

    def _change_pin(self, serial: str, old: Pin, new: Pin) -> None:
        token = self._token(serial)
        if self._fresh_flags(token) & TokenFlag.USER_PIN_LOCKED:
            raise E.PinLocked(detail=_text(token.label))
        login = self._logins.get(serial)
        if login is not None:
            login.session.set_pin(old.reveal(), new.reveal())
            return
        with token.open(rw=True) as session:
            session.set_pin(old.reveal(), new.reveal())


_LIVE: dict[str, Pkcs11Driver] = {}
_LIVE_LOCK = threading.Lock()


def get_driver(module_path: str | os.PathLike[str], **kwargs: Any) -> Pkcs11Driver:
    """The one live driver for a module file in this process.

    python-pkcs11 caches the library per path and login state is per process,
    so two drivers on one module would share a login and break the one-thread
    rule. Everything goes through this registry instead.
    """
    real = os.path.realpath(module_path)
    with _LIVE_LOCK:
        drv = _LIVE.get(real)
        if drv is None or drv.closed:
            drv = Pkcs11Driver(module_path, **kwargs)
            _LIVE[real] = drv
        return drv


def _attr(obj: Any, attr: Attribute, default: Any) -> Any:
    try:
        value = obj[attr]
    except (pe.AttributeTypeInvalid, pe.AttributeSensitive, KeyError):
        return default
    return default if value is None else value


def _spki(obj: Any) -> bytes:
    """DER SubjectPublicKeyInfo of an RSA or EC public-key object."""
    key_type = obj[Attribute.KEY_TYPE]
    if key_type == KeyType.RSA:
        pkcs1 = asn1_keys.RSAPublicKey.load(encode_rsa_public_key(obj))  # PKCS#1, not SPKI
        return asn1_keys.PublicKeyInfo.wrap(pkcs1, "rsa").dump()
    if key_type == KeyType.EC:
        return encode_ec_public_key(obj)
    raise ValueError(f"key type {key_type!r} has no SPKI encoding here")


def _unused_id(session: Any) -> bytes:
    """A random 20-byte CKA_ID no object on the token (as the session sees it) has."""
    for _ in range(8):
        key_id = os.urandom(20)
        # list(): an unfinished search would leave C_FindObjects active on the session
        if not list(session.get_objects({Attribute.ID: key_id})):
            return key_id
    raise E.DeviceError(detail="no unused CKA_ID found")


def _destroy_quietly(objects: tuple[Any, ...], label: str) -> None:
    for obj in objects:
        try:
            obj.destroy()
        except pe.PKCS11Error as exc:
            log.error("cannot remove key object %r again: %s", label, type(exc).__name__)


def _key_object(obj: Any, key_id: bytes, *, from_public: bool) -> KeyObject:
    key_type = _attr(obj, Attribute.KEY_TYPE, None)
    bits: int | None = None
    ec_params: bytes | None = None
    if key_type == KeyType.RSA:
        modulus = _attr(obj, Attribute.MODULUS, None)
        bits = len(modulus) * 8 if modulus else _attr(obj, Attribute.MODULUS_BITS, None)
        type_name = "RSA"
    elif key_type == KeyType.EC:
        ec_params = _attr(obj, Attribute.EC_PARAMS, None)
        type_name = "EC"
    else:
        type_name = getattr(key_type, "name", str(key_type))
    return KeyObject(
        key_id=key_id,
        label=_text(_attr(obj, Attribute.LABEL, "")),
        key_type=type_name,
        key_bits=bits,
        ec_params=ec_params,
        from_public_key=from_public,
    )
