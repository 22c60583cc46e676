"""One loaded PKCS#11 module, driven from one dedicated worker thread.

python-pkcs11 releases the GIL and initialises the module without OS locking,
so every call for a module runs on that module's single worker thread
(pkcs11-notes.md, pitfall 1; :mod:`drivers.worker`). Public methods are
blocking and thread-safe; async callers go through :mod:`drivers.aio`.

Login state is tracked here: one logged-in read-write session per token, reused
for every read, signature and write on that token while it lasts, because
opening and closing other sessions can end the login (pitfall 2).

SM2 needs a vendor's mechanism: when the module matches an entry of
``vendors.toml`` (:mod:`drivers.pkcs11.vendors`), keys of that vendor's key type
are listed as SM2 and sign through :mod:`drivers.pkcs11.vendor_sm2`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pkcs11
import pkcs11.exceptions as pe
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass, TokenFlag
from pkcs11.util.ec import encode_ecdsa_signature

from drivers import errors as E
from drivers import sm2
from drivers.pkcs11 import vendor_sm2, writes
from drivers.pkcs11.ckraw import RawModule
from drivers.pkcs11.errors import map_worker_error, pin_state_from_flags
from drivers.pkcs11.objects import attr, attribute_mapper, key_object, spki, text
from drivers.pkcs11.vendors import VendorEntry, VendorTableError, load_vendors, match_vendor
from drivers.protocol import Capabilities
from drivers.sm2 import DEFAULT_ID
from drivers.types import (
    CertObject,
    KeyObject,
    KeyPairSpec,
    NewCertificate,
    Pin,
    PublicKeyObject,
    SignAlgorithm,
    TokenContents,
    TokenInfo,
)
from drivers.worker import Worker

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


@dataclass
class _Login:
    session: Any  # pkcs11.Session
    slot_id: int
    keys: dict[tuple[bytes, str], Any] = field(default_factory=dict)
    #: SM2 Z values by (key id, ID): they depend on the key and the ID only
    z_values: dict[tuple[bytes, bytes], bytes] = field(default_factory=dict)


CAPABILITIES = Capabilities(
    algorithms=frozenset(
        {
            SignAlgorithm.RSA_PKCS1_SHA256,
            SignAlgorithm.RSA_PKCS1_SHA1,
            SignAlgorithm.ECDSA_SHA256,
            SignAlgorithm.ECDSA_SHA384,
        }
    ),
    key_generation=frozenset({"RSA", "EC"}),
    certificate_writes=True,
)
SM2_CAPABILITIES = dataclasses.replace(
    CAPABILITIES, algorithms=CAPABILITIES.algorithms | {SignAlgorithm.SM2_SM3}
)


class Pkcs11Driver:
    """A PKCS#11 module with its worker thread. Tokens are addressed by serial."""

    family = "pkcs11"

    def __init__(
        self,
        module_path: str | os.PathLike[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        raw_module: Callable[[str], RawModule] = RawModule,
        vendors: Sequence[VendorEntry] | None = None,
    ) -> None:
        """``raw_module`` reads token info beside python-pkcs11; tests pass a double
        that adds flags SoftHSM never sets (locked, final try, to be changed).
        ``vendors``: the SM2 vendor table (default: the shipped ``vendors.toml``)."""
        self.module_path = os.fspath(module_path)
        self._raw_factory = raw_module
        name = os.path.basename(self.module_path)
        self.worker = Worker(f"pkcs11-{name}", timeout=timeout, map_error=map_worker_error)
        self._lib: Any = None
        self._raw: RawModule | None = None
        self._logins: dict[str, _Login] = {}
        self._slots: dict[str, Any] = {}  # serial -> pkcs11.Slot from the last enumeration
        self._mechs: dict[str, frozenset[Mechanism]] = {}
        self.library_description = ""
        self.manufacturer = ""
        self._vendors = vendors
        #: the vendors.toml entry this module matches (SM2 through its mechanism), if any
        self.vendor: VendorEntry | None = None
        try:
            self.worker.call(self._load)
        except BaseException:
            self.worker.abandon()
            raise

    # --- worker plumbing ---------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        if self.vendor is not None and self.vendor.signs_sm2:
            return SM2_CAPABILITIES
        return CAPABILITIES

    @property
    def timeout(self) -> float:
        return self.worker.timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self.worker.timeout = value

    @property
    def closed(self) -> bool:
        return self.worker.closed

    def close(self) -> None:
        """Log out of every token and stop the worker. The library stays cached."""
        if self.worker.closed:
            return
        with contextlib.suppress(E.CertHelperError):
            self.worker.call(self._logout_all, timeout=5)
        self.worker.close()

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
        self.library_description = text(getattr(self._lib, "library_description", ""))
        self.manufacturer = text(getattr(self._lib, "manufacturer_id", ""))
        self.vendor = self._match_vendor()

    def _match_vendor(self) -> VendorEntry | None:
        try:
            entries = load_vendors() if self._vendors is None else self._vendors
        except VendorTableError as exc:  # a broken table costs SM2, never the module
            log.error("SM2 vendor table unusable: %s", exc)
            return None
        entry = match_vendor(entries, self.module_path, self.manufacturer, self.library_description)
        if entry is not None:
            log.info(
                "%s: SM2 vendor entry %r%s", self.module_path, entry.id,
                " (test double)" if entry.test_only else "",
            )  # fmt: skip
        return entry

    def _open(self, token: Any, **kwargs: Any) -> Any:
        """token.open with the mapper that reads vendor key types (objects.py)."""
        return token.open(attribute_mapper=attribute_mapper(), **kwargs)

    # --- enumeration -------------------------------------------------------

    def list_tokens(self, *, rescan: bool = False) -> list[TokenInfo]:
        """Initialised tokens now present. ``rescan`` re-initialises the module
        to see tokens SoftHSM created since load, but only when no token of this
        module is logged in (it would end those logins)."""
        return self.worker.call(self._list_tokens, rescan)

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
            serial = text(token.serial)
            slots[serial] = slot
            found.append(
                TokenInfo(
                    module_path=self.module_path,
                    slot_id=int(slot.slot_id),
                    label=text(token.label),
                    serial=serial,
                    manufacturer=text(token.manufacturer_id),
                    model=text(token.model),
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

        return self.worker.call(fresh)

    # --- objects -----------------------------------------------------------

    def read_objects(self, serial: str) -> TokenContents:
        """Certificates and private keys (by CKA_ID). Without a login, private
        keys are usually invisible: their public-key twins stand in for them."""
        return self.worker.call(self._read_objects, serial)

    def _read_objects(self, serial: str) -> TokenContents:
        info = next((t for t in self._list_tokens(False) if t.serial == serial), None)
        if info is None:
            raise E.TokenAbsent(detail=serial)
        login = self._logins.get(serial)
        if login is not None:
            return self._collect(info, login.session)
        with self._open(self._token(serial)) as session:
            return self._collect(info, session)

    def _collect(self, info: TokenInfo, session: Any) -> TokenContents:
        certs: list[CertObject] = []
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}):
            certs.append(
                CertObject(
                    key_id=attr(obj, Attribute.ID, b""),
                    label=text(attr(obj, Attribute.LABEL, "")),
                    value=attr(obj, Attribute.VALUE, b""),
                )
            )
        keys: dict[bytes, KeyObject] = {}
        for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
            for obj in session.get_objects({Attribute.CLASS: cls}):
                key_id = attr(obj, Attribute.ID, b"")
                if key_id in keys:
                    continue
                if cls == ObjectClass.PUBLIC_KEY and info.serial in self._logins:
                    continue  # logged in: the real private keys were listed
                keys[key_id] = key_object(
                    obj,
                    key_id,
                    from_public=cls == ObjectClass.PUBLIC_KEY,
                    sm2_key_type=self.vendor.sm2.key_type if self.vendor else None,
                )
        return TokenContents(token=info, certificates=certs, private_keys=list(keys.values()))

    # --- login -------------------------------------------------------------

    def login(self, serial: str, pin: Pin | None) -> None:
        """Log in to a token, keeping one session. ``pin=None`` uses the PIN pad
        of a token with a protected authentication path. Never retries; refuses
        at once when the flags say the PIN is locked."""
        self.worker.call(self._login, serial, pin)

    def _login(self, serial: str, pin: Pin | None) -> None:
        self._logout(serial)
        token = self._token(serial)
        flags = self._fresh_flags(token)
        if flags & TokenFlag.USER_PIN_LOCKED:
            raise E.PinLocked(detail=text(token.label))
        if pin is None:
            if not flags & TokenFlag.PROTECTED_AUTHENTICATION_PATH:
                raise E.BadInput(detail="a PIN is required for this token")
            user_pin: Any = pkcs11.PROTECTED_AUTH
        else:
            user_pin = pin.reveal()
        try:
            session = self._open(token, rw=True, user_pin=user_pin)
        except pe.UserAlreadyLoggedIn:
            # Logged in by a session we lost track of: close them all and retry once
            # without a PIN try burned (the failed call never reached C_Login's check).
            self._close_all(token)
            session = self._open(token, rw=True, user_pin=user_pin)
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
        """From our own bookkeeping: no library call, so no worker hop (a dict
        lookup is atomic); a login the token dropped shows at the next call."""
        return serial in self._logins

    def logout(self, serial: str) -> None:
        self.worker.call(self._logout, serial)

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

    def sign(
        self,
        serial: str,
        key_id: bytes,
        data: bytes,
        algorithm: SignAlgorithm,
        *,
        sm2_id: bytes = DEFAULT_ID,
    ) -> bytes:
        """Sign ``data`` (hashed here) with the private key ``key_id``; needs a login.
        ECDSA and SM2 signatures come back DER-encoded. SM2 needs a vendors.toml entry:
        e = SM3(Z ‖ data) with ``sm2_id`` is computed here and signed by the vendor's
        mechanism."""
        algorithm = SignAlgorithm(algorithm)
        if algorithm is SignAlgorithm.SM2_SM3:
            vendor = self.vendor
            if vendor is None:
                raise E.MechanismUnsupported(detail=f"SM2 through {self.module_path}")
            if not vendor.signs_sm2:
                raise E.MechanismUnsupported(
                    detail=f"SM2 through {self.module_path}: vendor entry {vendor.id!r} "
                    f"takes {vendor.sm2.input.value!r}; certhelper signs only a host-computed e"
                )
            if not 0 < len(sm2_id) <= sm2.MAX_ID_BYTES:
                raise E.BadInput(detail=f"an SM2 ID holds 1 to {sm2.MAX_ID_BYTES} bytes")
            return self.worker.call(self._sign_sm2, vendor, serial, key_id, bytes(data), sm2_id)
        return self.worker.call(self._sign, serial, key_id, data, algorithm)

    def _sign_sm2(
        self, vendor: VendorEntry, serial: str, key_id: bytes, data: bytes, sm2_id: bytes
    ) -> bytes:
        login = self._logins.get(serial)
        if login is None:
            raise E.NotLoggedIn(detail=serial)
        mechs = self._mechanisms(serial, login)
        if mechs and vendor.sm2.mechanism not in mechs:
            raise E.MechanismUnsupported(
                detail=f"{self.module_path} lacks mechanism {vendor.sm2.mechanism:#x}"
            )
        key = login.keys.get((key_id, "SM2"))
        if key is None:
            key = login.keys[(key_id, "SM2")] = vendor_sm2.private_key(
                login.session, vendor, key_id
            )
        z = login.z_values.get((key_id, sm2_id))
        if z is None:
            point = vendor_sm2.public_point(login.session, vendor, key_id, key)
            z = login.z_values[(key_id, sm2_id)] = sm2.z_value(point, sm2_id)
        if self._raw is None:
            raise E.MechanismUnsupported(detail="raw Cryptoki calls unavailable")
        raw = self._raw.sign(
            int(login.session.handle), vendor.sm2.mechanism, int(key.handle), sm2.sm3(z + data)
        )  # e = SM3(Z ‖ M)
        r, s = vendor_sm2.decode_signature(raw, vendor.sm2.signature)
        return sm2.signature_der(r, s)

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
        with self._open(token, rw=rw) as session:
            yield session

    def public_keys(self, serial: str) -> list[PublicKeyObject]:
        """Every public-key object on the token as DER SubjectPublicKeyInfo; no
        login needed. Objects that cannot be encoded (other key types) are skipped."""
        return self.worker.call(self._public_keys, serial)

    def _public_keys(self, serial: str) -> list[PublicKeyObject]:
        found: list[PublicKeyObject] = []
        with self._session(serial) as session:
            for obj in list(session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY})):
                label = text(attr(obj, Attribute.LABEL, ""))
                try:
                    der = spki(obj)
                except (pe.PKCS11Error, ValueError, TypeError, KeyError) as exc:
                    log.debug("public key %r skipped: %s", label, type(exc).__name__)
                    continue
                found.append(PublicKeyObject(attr(obj, Attribute.ID, b""), label, der))
        return found

    def generate_key_pair(self, serial: str, spec: KeyPairSpec, label: str) -> PublicKeyObject:
        """Generate a signing key pair on the token (one C_GenerateKeyPair, so
        all-or-nothing) under a fresh random 20-byte CKA_ID; needs a login. The
        private key is sensitive and never extractable."""
        return self.worker.call(self._generate_key_pair, serial, spec, label)

    def _generate_key_pair(self, serial: str, spec: KeyPairSpec, label: str) -> PublicKeyObject:
        self._token(serial)  # present?
        login = self._logins.get(serial)
        if login is None:
            raise E.NotLoggedIn(detail=serial)
        gen_mech = writes.generation_mechanism(spec)
        mechs = self._mechanisms(serial, login)
        if mechs and gen_mech not in mechs:
            raise E.MechanismUnsupported(detail=gen_mech.name)
        created = writes.generate_key_pair(login.session, spec, label)
        log.info("generated %s key pair %s on %s", spec.key_type, created.key_id.hex(), serial)
        return created

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
        self.worker.call(self._write_certificate, serial, new, replace, archive_label)

    def _write_certificate(
        self,
        serial: str,
        new: NewCertificate,
        replace: CertObject | None,
        archive_label: str | None,
    ) -> None:
        with self._session(serial, rw=True) as session:
            writes.write_certificate(session, serial, new, replace, archive_label)

    # --- PIN change --------------------------------------------------------

    def change_pin(self, serial: str, old: Pin, new: Pin) -> None:
        """C_SetPIN in a read-write session. Refuses on a locked PIN; never retries."""
        self.worker.call(self._change_pin, serial, old, new)

    def _change_pin(self, serial: str, old: Pin, new: Pin) -> None:
        token = self._token(serial)
        if self._fresh_flags(token) & TokenFlag.USER_PIN_LOCKED:
            raise E.PinLocked(detail=text(token.label))
        login = self._logins.get(serial)
        if login is not None:
            login.session.set_pin(old.reveal(), new.reveal())
            return
        with self._open(token, rw=True) as session:
            session.set_pin(old.reveal(), new.reveal())
