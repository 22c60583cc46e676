"""One SKF (GM/T 0016-2012) shared library through ctypes: thin, typed calls.

This is the low-level binding; the token driver is built on top of it. Each method is one
SKF call (two when a buffer size is negotiated) and returns Python values; every failure is
raised as the error class :func:`drivers.skf.errors.map_sar` picks, so no ``SAR_*`` code leaks
upward.

- Loading checks the symbols: a file that is no SKF library, or lacks a required function,
  raises :class:`~drivers.errors.ModuleLoadFailed`. Optional functions may be absent
  (``missing_optional``); calling one raises :class:`~drivers.errors.MechanismUnsupported`.
  In particular ``SKF_WaitForDevEvent`` is optional: without it (``has_device_events`` false)
  callers poll :meth:`SkfLibrary.enum_devices`.
- PINs are :class:`drivers.types.Pin` and are revealed only into a ctypes buffer that is
  zeroed after the call. Nothing here logs a PIN.
- Names (devices, applications, containers) are decoded as UTF-8, else GB18030 (vendor
  libraries on Chinese systems), and the exact bytes are kept so that a name given back to
  the library is the one it reported.
- ctypes releases the GIL during each call; the library serialises calls itself, but the
  driver should still use one worker thread per library, as for PKCS#11.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NewType

from drivers import errors as E
from drivers.skf import abi
from drivers.skf.abi import BOOL, HANDLE, LPSTR, ContainerType, DevEvent, PinType, Sar
from drivers.skf.errors import map_sar
from drivers.skf.keys import (
    EccPublicKey,
    PublicKey,
    RsaPublicKey,
    signature_from_blob,
    signature_to_blob,
)
from drivers.types import Pin

log = logging.getLogger(__name__)

DevHandle = NewType("DevHandle", int)
AppHandle = NewType("AppHandle", int)
ConHandle = NewType("ConHandle", int)

#: what a token driver cannot do without
REQUIRED = (
    "SKF_EnumDev",
    "SKF_ConnectDev",
    "SKF_DisConnectDev",
    "SKF_GetDevInfo",
    "SKF_EnumApplication",
    "SKF_OpenApplication",
    "SKF_CloseApplication",
    "SKF_GetPINInfo",
    "SKF_VerifyPIN",
    "SKF_ChangePIN",
    "SKF_ClearSecureState",
    "SKF_EnumContainer",
    "SKF_OpenContainer",
    "SKF_CloseContainer",
    "SKF_GetContainerType",
    "SKF_ExportCertificate",
    "SKF_ExportPublicKey",
    "SKF_ECCSignData",
)
OPTIONAL = (
    "SKF_WaitForDevEvent",
    "SKF_CancelWaitForDevEvent",
    "SKF_GetDevState",
    "SKF_UnblockPIN",
    "SKF_CreateApplication",
    "SKF_CreateContainer",
    "SKF_DeleteContainer",
    "SKF_ImportCertificate",
    "SKF_GenECCKeyPair",
    "SKF_GenRSAKeyPair",
    "SKF_RSASignData",
    "SKF_ECCVerify",
    "SKF_GenRandom",
    # libsoftskf's fixture extension: never present in a real key's library
    "SOFTSKF_ImportKeyPairPEM",
)
_BUFFER_RETRIES = 4
_CERT_BUFFER = 8192  # one call for any usual certificate
_RSA_SIGNATURE_BUFFER = 512  # RSA-4096
_PIN_ERRORS = (Sar.PIN_INCORRECT, Sar.PIN_LOCKED)


def _prototypes(layout: abi.Abi) -> dict[str, list[Any]]:
    """argtypes of every function; buffers and PINs go as void* (ctypes arrays or None)."""
    u = layout.ulong
    pu = ctypes.POINTER(u)
    dword = ctypes.c_uint32
    ph = ctypes.POINTER(HANDLE)
    buf = ctypes.c_void_p
    return {
        "SKF_WaitForDevEvent": [buf, pu, pu],
        "SKF_CancelWaitForDevEvent": [],
        "SKF_EnumDev": [BOOL, buf, pu],
        "SKF_ConnectDev": [LPSTR, ph],
        "SKF_DisConnectDev": [HANDLE],
        "SKF_GetDevState": [LPSTR, pu],
        "SKF_GetDevInfo": [HANDLE, ctypes.POINTER(layout.DEVINFO)],
        "SKF_ChangePIN": [HANDLE, u, buf, buf, pu],
        "SKF_GetPINInfo": [HANDLE, u, pu, pu, buf],
        "SKF_VerifyPIN": [HANDLE, u, buf, pu],
        "SKF_UnblockPIN": [HANDLE, buf, buf, pu],
        "SKF_ClearSecureState": [HANDLE],
        "SKF_CreateApplication": [HANDLE, LPSTR, buf, dword, buf, dword, dword, ph],
        "SKF_EnumApplication": [HANDLE, buf, pu],
        "SKF_OpenApplication": [HANDLE, LPSTR, ph],
        "SKF_CloseApplication": [HANDLE],
        "SKF_CreateContainer": [HANDLE, LPSTR, ph],
        "SKF_DeleteContainer": [HANDLE, LPSTR],
        "SKF_OpenContainer": [HANDLE, LPSTR, ph],
        "SKF_CloseContainer": [HANDLE],
        "SKF_EnumContainer": [HANDLE, buf, pu],
        "SKF_GetContainerType": [HANDLE, pu],
        "SKF_ImportCertificate": [HANDLE, BOOL, buf, u],
        "SKF_ExportCertificate": [HANDLE, BOOL, buf, pu],
        "SKF_GenRandom": [HANDLE, buf, u],
        "SKF_GenRSAKeyPair": [HANDLE, u, ctypes.POINTER(layout.RSAPUBLICKEYBLOB)],
        "SKF_RSASignData": [HANDLE, buf, u, buf, pu],
        "SKF_GenECCKeyPair": [HANDLE, u, ctypes.POINTER(layout.ECCPUBLICKEYBLOB)],
        "SKF_ECCSignData": [HANDLE, buf, u, ctypes.POINTER(layout.ECCSIGNATUREBLOB)],
        "SKF_ECCVerify": [
            HANDLE,
            ctypes.POINTER(layout.ECCPUBLICKEYBLOB),
            buf,
            u,
            ctypes.POINTER(layout.ECCSIGNATUREBLOB),
        ],
        "SKF_ExportPublicKey": [HANDLE, BOOL, buf, pu],
        "SOFTSKF_ImportKeyPairPEM": [HANDLE, BOOL, buf, u],
    }


@dataclass(frozen=True)
class DeviceInfo:
    """SKF_GetDevInfo's DEVINFO, texts decoded."""

    version: tuple[int, int]
    manufacturer: str
    issuer: str
    label: str
    serial: str
    hw_version: tuple[int, int]
    firmware_version: tuple[int, int]
    alg_sym_cap: int
    alg_asym_cap: int
    alg_hash_cap: int
    dev_auth_alg_id: int
    total_space: int
    free_space: int
    max_ecc_buffer_size: int
    max_buffer_size: int


@dataclass(frozen=True)
class PinInfo:
    """SKF_GetPINInfo: retry counters and whether the PIN is still the default one."""

    max_retries: int
    remaining: int
    is_default: bool

    @property
    def locked(self) -> bool:
        return self.remaining == 0


@dataclass(frozen=True)
class DeviceEvent:
    name: str
    event: DevEvent


def parse_multistring(raw: bytes) -> list[bytes]:
    """Split an SKF name list (``a\\0b\\0\\0``). Tolerates the forms libraries return for
    an empty list (``b""``, ``\\0``, ``\\0\\0``) and a missing final terminator."""
    names: list[bytes] = []
    for item in raw.split(b"\0"):
        if not item:
            break
        names.append(item)
    return names


def decode_text(raw: bytes) -> str:
    """A fixed CHAR field or a name: up to the first NUL, padding (spaces, 0xFF) removed."""
    raw = raw.split(b"\0", 1)[0].rstrip(b" \xff")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030", "replace")


class SkfLibrary:
    """A loaded SKF library. ``native_long`` selects a 64-bit ``ULONG`` (see :mod:`abi`)."""

    def __init__(self, path: str | os.PathLike[str], *, native_long: bool = False) -> None:
        self.path = os.fspath(path)
        self.abi = abi.abi_for(native_long)
        if os.sep in self.path and not os.path.exists(self.path):  # a bare soname is searched
            raise E.ModuleLoadFailed(detail=f"{self.path}: no such file")
        try:
            self._dll = ctypes.CDLL(self.path)
        except OSError as exc:
            raise E.ModuleLoadFailed(detail=f"{self.path}: {exc}") from None
        present = {name for name in (*REQUIRED, *OPTIONAL) if hasattr(self._dll, name)}
        if not present & set(REQUIRED):
            raise E.ModuleLoadFailed(detail=f"{self.path} is not an SKF (GM/T 0016) library")
        missing = [name for name in REQUIRED if name not in present]
        if missing:
            raise E.ModuleLoadFailed(
                detail=f"{self.path} is an incomplete SKF library: no {', '.join(missing)}"
            )
        self.missing_optional = tuple(name for name in OPTIONAL if name not in present)
        self._functions: dict[str, Any] = {}
        for name, argtypes in _prototypes(self.abi).items():
            if name in present:
                function = getattr(self._dll, name)
                function.argtypes = argtypes
                function.restype = self.abi.ulong
                self._functions[name] = function
        self._raw_names: dict[str, bytes] = {}
        self._names_lock = threading.Lock()
        if self.missing_optional:
            log.debug("%s lacks %s", self.path, ", ".join(self.missing_optional))

    # --- plumbing ----------------------------------------------------------------------

    @property
    def has_device_events(self) -> bool:
        """False: no SKF_WaitForDevEvent; poll :meth:`enum_devices` instead."""
        return "SKF_WaitForDevEvent" in self._functions and (
            "SKF_CancelWaitForDevEvent" in self._functions
        )

    def has(self, name: str) -> bool:
        return name in self._functions

    def raw(self, name: str) -> Any:
        """The ctypes function with its prototype, for tests and diagnostics of the ABI itself
        (return codes unmapped)."""
        if name not in self._functions:
            raise E.MechanismUnsupported(detail=f"{os.path.basename(self.path)} lacks {name}")
        return self._functions[name]

    def _call(self, name: str, *args: Any) -> int:
        function = self._functions.get(name)
        if function is None:
            raise E.MechanismUnsupported(detail=f"{os.path.basename(self.path)} lacks {name}")
        return int(function(*args))

    def _check(self, name: str, rv: int, retries_left: int | None = None) -> None:
        if rv != Sar.OK:
            log.debug("%s returned %s", name, abi.sar_name(rv))
            raise map_sar(rv, name, retries_left=retries_left)

    def _ulong(self, value: int = 0) -> Any:
        return self.abi.ulong(value)

    def _negotiate(
        self, name: str, call: Callable[[Any, Any], int], first_size: int | None = None
    ) -> bytes:
        """The standard's two-step output: NULL buffer for the size, then the data. Retries
        when the data grew in between (SAR_BUFFER_TOO_SMALL with the new size).

        With ``first_size`` the first call already brings a buffer of that size, so a
        signature is not computed twice by libraries that sign to learn the length."""
        size = self._ulong(first_size or 0)
        if first_size is None:
            self._check(name, call(None, ctypes.byref(size)))
        for _ in range(_BUFFER_RETRIES):
            needed = int(size.value)
            if needed == 0:
                return b""
            buffer = ctypes.create_string_buffer(needed)
            size.value = needed
            rv = call(buffer, ctypes.byref(size))
            if rv == Sar.BUFFER_TOO_SMALL and size.value > needed:
                continue
            self._check(name, rv)
            return buffer.raw[: min(int(size.value), needed)]
        raise E.DeviceError(detail=f"{name}: the buffer size kept changing")

    def _name_in(self, raw: bytes) -> str:
        raw = raw.split(b"\0", 1)[0]
        text = decode_text(raw)
        with self._names_lock:
            self._raw_names[text] = raw
        return text

    def _name_out(self, name: str) -> bytes:
        if not isinstance(name, str) or not name:
            raise E.BadInput(detail="an SKF name is a non-empty str")
        with self._names_lock:
            raw = self._raw_names.get(name)
        return raw if raw is not None else name.encode("utf-8")

    def _names(self, name: str, *head: Any) -> list[str]:
        raw = self._negotiate(name, lambda buf, size: self._call(name, *head, buf, size))
        return [self._name_in(item) for item in parse_multistring(raw)]

    @contextmanager
    def _secret(self, pin: Pin) -> Iterator[Any]:
        """The PIN in a C buffer that is zeroed as soon as the call returns."""
        if not isinstance(pin, Pin):
            raise TypeError("PINs are passed as drivers.types.Pin")
        raw = pin.reveal().encode("utf-8")
        buffer = ctypes.create_string_buffer(raw, len(raw) + 1)
        try:
            yield buffer
        finally:
            ctypes.memset(buffer, 0, len(raw) + 1)

    def _handle(self, name: str, *args: Any) -> int:
        handle = HANDLE()
        self._check(name, self._call(name, *args, ctypes.byref(handle)))
        if not handle.value:
            raise E.DeviceError(detail=f"{name} returned a NULL handle")
        return int(handle.value)

    # --- devices -------------------------------------------------------------------------

    def enum_devices(self, present: bool = True) -> list[str]:
        return self._names("SKF_EnumDev", abi.TRUE if present else abi.FALSE)

    def device_present(self, name: str) -> bool:
        state = self._ulong()
        self._check("SKF_GetDevState", self._call("SKF_GetDevState", self._name_out(name), state))
        return int(state.value) == abi.DevState.PRESENT

    def connect(self, name: str) -> DevHandle:
        return DevHandle(self._handle("SKF_ConnectDev", self._name_out(name)))

    def disconnect(self, dev: DevHandle) -> None:
        self._check("SKF_DisConnectDev", self._call("SKF_DisConnectDev", dev))

    def device_info(self, dev: DevHandle) -> DeviceInfo:
        info = self.abi.DEVINFO()
        self._check("SKF_GetDevInfo", self._call("SKF_GetDevInfo", dev, ctypes.byref(info)))
        return DeviceInfo(
            version=(info.Version.major, info.Version.minor),
            manufacturer=decode_text(info.Manufacturer),
            issuer=decode_text(info.Issuer),
            label=decode_text(info.Label),
            serial=decode_text(info.SerialNumber),
            hw_version=(info.HWVersion.major, info.HWVersion.minor),
            firmware_version=(info.FirmwareVersion.major, info.FirmwareVersion.minor),
            alg_sym_cap=int(info.AlgSymCap),
            alg_asym_cap=int(info.AlgAsymCap),
            alg_hash_cap=int(info.AlgHashCap),
            dev_auth_alg_id=int(info.DevAuthAlgId),
            total_space=int(info.TotalSpace),
            free_space=int(info.FreeSpace),
            max_ecc_buffer_size=int(info.MaxECCBufferSize),
            max_buffer_size=int(info.MaxBufferSize),
        )

    def wait_for_device_event(self) -> DeviceEvent | None:
        """Block until a device is inserted or removed; None when :meth:`cancel_wait` ended
        the wait. Run it on its own thread."""
        size = 256
        for _ in range(_BUFFER_RETRIES):
            buffer = ctypes.create_string_buffer(size)
            length, event = self._ulong(size), self._ulong()
            rv = self._call("SKF_WaitForDevEvent", buffer, ctypes.byref(length), event)
            if rv == Sar.NOT_EVENTERR:
                return None
            if rv == Sar.BUFFER_TOO_SMALL and length.value > size:
                size = int(length.value)
                continue
            self._check("SKF_WaitForDevEvent", rv)
            raw = buffer.raw[: max(int(length.value), 1)]
            return DeviceEvent(self._name_in(raw), DevEvent(int(event.value)))
        raise E.DeviceError(detail="SKF_WaitForDevEvent: the name does not fit")

    def cancel_wait(self) -> None:
        self._check("SKF_CancelWaitForDevEvent", self._call("SKF_CancelWaitForDevEvent"))

    def gen_random(self, dev: DevHandle, length: int) -> bytes:
        buffer = ctypes.create_string_buffer(max(length, 1))
        self._check("SKF_GenRandom", self._call("SKF_GenRandom", dev, buffer, length))
        return buffer.raw[:length]

    # --- applications and PINs -------------------------------------------------------------

    def enum_applications(self, dev: DevHandle) -> list[str]:
        return self._names("SKF_EnumApplication", dev)

    def create_application(
        self,
        dev: DevHandle,
        name: str,
        *,
        admin_pin: Pin,
        user_pin: Pin,
        admin_retries: int = 6,
        user_retries: int = 6,
        rights: int = abi.SECURE_ANYONE_ACCOUNT,
    ) -> AppHandle:
        with self._secret(admin_pin) as admin, self._secret(user_pin) as user:
            return AppHandle(
                self._handle(
                    "SKF_CreateApplication",
                    dev,
                    self._name_out(name),
                    admin,
                    admin_retries,
                    user,
                    user_retries,
                    rights,
                )
            )

    def open_application(self, dev: DevHandle, name: str) -> AppHandle:
        return AppHandle(self._handle("SKF_OpenApplication", dev, self._name_out(name)))

    def close_application(self, app: AppHandle) -> None:
        self._check("SKF_CloseApplication", self._call("SKF_CloseApplication", app))

    def pin_info(self, app: AppHandle, pin_type: PinType = PinType.USER) -> PinInfo:
        max_retries, remaining = self._ulong(), self._ulong()
        is_default = ctypes.create_string_buffer(8)  # BOOL is 4 bytes, or 8 (long) in GmSSL's
        rv = self._call("SKF_GetPINInfo", app, int(pin_type), max_retries, remaining, is_default)
        self._check("SKF_GetPINInfo", rv)
        return PinInfo(
            max_retries=int(max_retries.value),
            remaining=int(remaining.value),
            is_default=int.from_bytes(is_default.raw[:4], "little") != 0,
        )

    def _pin_call(self, name: str, *args: Any) -> None:
        retries = self._ulong()
        rv = self._call(name, *args, ctypes.byref(retries))
        self._check(name, rv, retries_left=int(retries.value) if rv in _PIN_ERRORS else None)

    def verify_pin(self, app: AppHandle, pin: Pin, pin_type: PinType = PinType.USER) -> None:
        """Log in. Raises PinIncorrect (``.data["retries_left"]``), PinLocked or PinLenRange."""
        with self._secret(pin) as secret:
            self._pin_call("SKF_VerifyPIN", app, int(pin_type), secret)

    def change_pin(
        self, app: AppHandle, old: Pin, new: Pin, pin_type: PinType = PinType.USER
    ) -> None:
        with self._secret(old) as old_secret, self._secret(new) as new_secret:
            self._pin_call("SKF_ChangePIN", app, int(pin_type), old_secret, new_secret)

    def unblock_pin(self, app: AppHandle, admin_pin: Pin, new_user_pin: Pin) -> None:
        """Reset the user PIN with the admin PIN; a wrong admin PIN counts against it."""
        with self._secret(admin_pin) as admin, self._secret(new_user_pin) as user:
            self._pin_call("SKF_UnblockPIN", app, admin, user)

    def clear_secure_state(self, app: AppHandle) -> None:
        """Log out (user and admin) of this application."""
        self._check("SKF_ClearSecureState", self._call("SKF_ClearSecureState", app))

    # --- containers ---------------------------------------------------------------------

    def enum_containers(self, app: AppHandle) -> list[str]:
        return self._names("SKF_EnumContainer", app)

    def create_container(self, app: AppHandle, name: str) -> ConHandle:
        return ConHandle(self._handle("SKF_CreateContainer", app, self._name_out(name)))

    def delete_container(self, app: AppHandle, name: str) -> None:
        rv = self._call("SKF_DeleteContainer", app, self._name_out(name))
        self._check("SKF_DeleteContainer", rv)

    def open_container(self, app: AppHandle, name: str) -> ConHandle:
        return ConHandle(self._handle("SKF_OpenContainer", app, self._name_out(name)))

    def close_container(self, con: ConHandle) -> None:
        self._check("SKF_CloseContainer", self._call("SKF_CloseContainer", con))

    def container_type(self, con: ConHandle) -> ContainerType:
        value = self._ulong()
        self._check("SKF_GetContainerType", self._call("SKF_GetContainerType", con, value))
        try:
            return ContainerType(int(value.value))
        except ValueError:
            raise E.DeviceError(detail=f"unknown container type {value.value}") from None

    def export_certificate(self, con: ConHandle, sign: bool = True) -> bytes | None:
        """The signing (or encryption) certificate as stored; None when there is none."""
        flag = abi.TRUE if sign else abi.FALSE
        try:
            der = self._negotiate(
                "SKF_ExportCertificate",
                lambda buf, size: self._call("SKF_ExportCertificate", con, flag, buf, size),
                first_size=_CERT_BUFFER,
            )
        except E.ObjectNotFound:
            return None
        return der or None

    def import_certificate(self, con: ConHandle, der: bytes, sign: bool = True) -> None:
        data = ctypes.create_string_buffer(bytes(der), len(der))
        flag = abi.TRUE if sign else abi.FALSE
        rv = self._call("SKF_ImportCertificate", con, flag, data, len(der))
        self._check("SKF_ImportCertificate", rv)

    def export_public_key(self, con: ConHandle, sign: bool = True) -> PublicKey | None:
        """The signing (or encryption) public key; None when the container has no such key."""
        flag = abi.TRUE if sign else abi.FALSE
        try:
            raw = self._negotiate(
                "SKF_ExportPublicKey",
                lambda buf, size: self._call("SKF_ExportPublicKey", con, flag, buf, size),
            )
        except E.KeyNotFound:
            return None
        return self._public_key(raw)

    def _public_key(self, raw: bytes) -> PublicKey:
        try:
            if len(raw) == ctypes.sizeof(self.abi.ECCPUBLICKEYBLOB):
                return EccPublicKey.from_blob(self.abi.ECCPUBLICKEYBLOB.from_buffer_copy(raw))
            if len(raw) == ctypes.sizeof(self.abi.RSAPUBLICKEYBLOB):
                return RsaPublicKey.from_blob(self.abi.RSAPUBLICKEYBLOB.from_buffer_copy(raw))
        except ValueError as exc:
            raise E.DeviceError(detail=f"SKF_ExportPublicKey: {exc}") from None
        raise E.DeviceError(detail=f"SKF_ExportPublicKey: a {len(raw)}-byte blob is no key")

    def public_key_spki(self, con: ConHandle, sign: bool = True) -> bytes | None:
        """The public key as DER SubjectPublicKeyInfo (SM2 under id-ecPublicKey)."""
        key = self.export_public_key(con, sign)
        return key.spki_der() if key is not None else None

    # --- keys and signatures --------------------------------------------------------------

    def gen_ecc_key_pair(self, con: ConHandle, alg_id: int = abi.SGD_SM2_1) -> EccPublicKey:
        """A new SM2 signing key pair inside the key (the user must be logged in)."""
        blob = self.abi.ECCPUBLICKEYBLOB()
        rv = self._call("SKF_GenECCKeyPair", con, alg_id, ctypes.byref(blob))
        self._check("SKF_GenECCKeyPair", rv)
        return EccPublicKey.from_blob(blob)

    def gen_rsa_key_pair(self, con: ConHandle, bits: int = 2048) -> RsaPublicKey:
        blob = self.abi.RSAPUBLICKEYBLOB()
        self._check(
            "SKF_GenRSAKeyPair", self._call("SKF_GenRSAKeyPair", con, bits, ctypes.byref(blob))
        )
        return RsaPublicKey.from_blob(blob)

    def ecc_sign(self, con: ConHandle, e: bytes) -> tuple[int, int]:
        """Sign e = SM3(Z ‖ M) (see :mod:`drivers.sm2`) with the signing key: (r, s)."""
        if len(e) != 32:
            raise E.BadInput(detail="SKF_ECCSignData signs the 32-byte e = SM3(Z ‖ M)")
        digest = ctypes.create_string_buffer(bytes(e), 32)
        blob = self.abi.ECCSIGNATUREBLOB()
        rv = self._call("SKF_ECCSignData", con, digest, 32, ctypes.byref(blob))
        self._check("SKF_ECCSignData", rv)
        try:
            return signature_from_blob(blob)
        except ValueError as exc:
            raise E.DeviceError(detail=f"SKF_ECCSignData: {exc}") from None

    def rsa_sign(self, con: ConHandle, data: bytes) -> bytes:
        """PKCS#1 v1.5 signature over ``data`` as given: pass a DER DigestInfo."""
        payload = ctypes.create_string_buffer(bytes(data), max(len(data), 1))
        return self._negotiate(
            "SKF_RSASignData",
            lambda buf, size: self._call("SKF_RSASignData", con, payload, len(data), buf, size),
            first_size=_RSA_SIGNATURE_BUFFER,
        )

    def ecc_verify(
        self, dev: DevHandle, key: EccPublicKey, e: bytes, signature: tuple[int, int]
    ) -> bool:
        """Verify an SM2 signature over e inside the library: False when it does not match."""
        blob = key.to_blob(self.abi)
        sig = signature_to_blob(*signature, layout=self.abi)
        digest = ctypes.create_string_buffer(bytes(e), max(len(e), 1))
        rv = self._call("SKF_ECCVerify", dev, ctypes.byref(blob), digest, len(e), ctypes.byref(sig))
        if rv in (Sar.FAIL, Sar.HASHNOTEQUALERR):
            return False
        self._check("SKF_ECCVerify", rv)
        return True

    def import_key_pair_pem(self, con: ConHandle, pem: bytes, sign: bool) -> None:
        """libsoftskf's fixture extension: put a PEM private key into a container. Real keys
        never accept a private key this way."""
        data = ctypes.create_string_buffer(bytes(pem), max(len(pem), 1))
        flag = abi.TRUE if sign else abi.FALSE
        try:
            rv = self._call("SOFTSKF_ImportKeyPairPEM", con, flag, data, len(pem))
            self._check("SOFTSKF_ImportKeyPairPEM", rv)
        finally:
            ctypes.memset(data, 0, len(data))
