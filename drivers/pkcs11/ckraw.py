"""The Cryptoki calls python-pkcs11 0.10 does not expose, through ctypes.

* ``C_GetTokenInfo`` for the PIN length range (``ulMinPinLen``/``ulMaxPinLen``)
  and fresh flags (python-pkcs11's ``Token.flags`` is a snapshot).
* ``C_CloseAllSessions`` to close the session that python-pkcs11 leaks when
  ``C_Login`` fails (pkcs11-notes.md, pitfall 3).
* ``C_SignInit``/``C_Sign`` with a vendor-defined mechanism (a vendor's SM2):
  python-pkcs11 accepts only the members of its ``Mechanism`` enum.

``ctypes.CDLL`` on the path python-pkcs11 already loaded returns the same
library handle, so these calls see the module python-pkcs11 initialised. They
must run on the module's worker thread like every other call.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass

import pkcs11.exceptions as pe

CK_ULONG = ctypes.c_ulong
CK_RV = CK_ULONG
_PACK = 1 if sys.platform == "win32" else 0  # Cryptoki structs are packed on Windows


class CK_VERSION(ctypes.Structure):
    _fields_ = (("major", ctypes.c_ubyte), ("minor", ctypes.c_ubyte))


class CK_TOKEN_INFO(ctypes.Structure):
    if _PACK:
        _pack_ = _PACK
    _fields_ = (
        ("label", ctypes.c_ubyte * 32),
        ("manufacturerID", ctypes.c_ubyte * 32),
        ("model", ctypes.c_ubyte * 16),
        ("serialNumber", ctypes.c_ubyte * 16),
        ("flags", CK_ULONG),
        ("ulMaxSessionCount", CK_ULONG),
        ("ulSessionCount", CK_ULONG),
        ("ulMaxRwSessionCount", CK_ULONG),
        ("ulRwSessionCount", CK_ULONG),
        ("ulMaxPinLen", CK_ULONG),
        ("ulMinPinLen", CK_ULONG),
        ("ulTotalPublicMemory", CK_ULONG),
        ("ulFreePublicMemory", CK_ULONG),
        ("ulTotalPrivateMemory", CK_ULONG),
        ("ulFreePrivateMemory", CK_ULONG),
        ("hardwareVersion", CK_VERSION),
        ("firmwareVersion", CK_VERSION),
        ("utcTime", ctypes.c_ubyte * 16),
    )


# Positions in CK_FUNCTION_LIST after the version field (PKCS#11 v2.40, section 5.16).
_IDX_GET_TOKEN_INFO = 6
_IDX_CLOSE_ALL_SESSIONS = 14
_IDX_SIGN_INIT = 42
_IDX_SIGN = 43
_N_FUNCS = 68


class _FunctionList(ctypes.Structure):
    if _PACK:
        _pack_ = _PACK
    _fields_ = (("version", CK_VERSION), ("funcs", ctypes.c_void_p * _N_FUNCS))


_FUNCTYPE = ctypes.WINFUNCTYPE if sys.platform == "win32" else ctypes.CFUNCTYPE  # type: ignore[attr-defined]
_GetTokenInfo = _FUNCTYPE(CK_RV, CK_ULONG, ctypes.POINTER(CK_TOKEN_INFO))
_CloseAllSessions = _FUNCTYPE(CK_RV, CK_ULONG)


class CK_MECHANISM(ctypes.Structure):
    if _PACK:
        _pack_ = _PACK
    _fields_ = (
        ("mechanism", CK_ULONG),
        ("pParameter", ctypes.c_void_p),
        ("ulParameterLen", CK_ULONG),
    )


_SignInit = _FUNCTYPE(CK_RV, CK_ULONG, ctypes.POINTER(CK_MECHANISM), CK_ULONG)
_Sign = _FUNCTYPE(
    CK_RV, CK_ULONG, ctypes.c_char_p, CK_ULONG, ctypes.c_void_p, ctypes.POINTER(CK_ULONG)
)
_GetFunctionList = _FUNCTYPE(CK_RV, ctypes.POINTER(ctypes.POINTER(_FunctionList)))

# CK_UNAVAILABLE_INFORMATION / CK_EFFECTIVELY_INFINITE markers for lengths
_UNAVAILABLE = ctypes.c_ulong(-1).value


# CK_RV -> the python-pkcs11 exception it raises for the same code, so that the driver's one
# error mapping (drivers/pkcs11/errors.py) applies to raw calls too.
_RV_ERRORS: dict[int, type[pe.PKCS11Error]] = {
    0x20: pe.DataInvalid,
    0x21: pe.DataLenRange,
    0x30: pe.DeviceError,
    0x32: pe.DeviceRemoved,
    0x54: pe.FunctionNotSupported,
    0x60: pe.KeyHandleInvalid,
    0x63: pe.KeyTypeInconsistent,
    0x70: pe.MechanismInvalid,
    0x71: pe.MechanismParamInvalid,
    0x82: pe.ObjectHandleInvalid,
    0x90: pe.OperationActive,
    0xB0: pe.SessionClosed,
    0xB3: pe.SessionHandleInvalid,
    0xE0: pe.TokenNotPresent,
    0x101: pe.UserNotLoggedIn,
}


def raise_for(rv: int) -> None:
    if rv != 0:
        raise _RV_ERRORS.get(rv, pe.GeneralError)()


@dataclass(frozen=True)
class RawTokenInfo:
    flags: int
    min_pin_len: int | None
    max_pin_len: int | None


class RawModule:
    """Direct access to a module's function list; ``None`` results when unavailable."""

    def __init__(self, path: str) -> None:
        self._funcs: _FunctionList | None = None
        try:
            dll = ctypes.CDLL(path)
            getter = _GetFunctionList(("C_GetFunctionList", dll))
            ptr = ctypes.POINTER(_FunctionList)()
            if getter(ctypes.byref(ptr)) == 0 and ptr:
                self._funcs = ptr.contents
        except (OSError, AttributeError):
            self._funcs = None

    def _func(self, index: int, proto):  # type: ignore[no-untyped-def]
        if self._funcs is None:
            return None
        addr = self._funcs.funcs[index]
        return proto(addr) if addr else None

    def token_info(self, slot_id: int) -> RawTokenInfo | None:
        fn = self._func(_IDX_GET_TOKEN_INFO, _GetTokenInfo)
        if fn is None:
            return None
        info = CK_TOKEN_INFO()
        if fn(slot_id, ctypes.byref(info)) != 0:
            return None

        def length(v: int) -> int | None:
            return None if v == _UNAVAILABLE else v

        return RawTokenInfo(
            flags=int(info.flags),
            min_pin_len=length(int(info.ulMinPinLen)),
            max_pin_len=length(int(info.ulMaxPinLen)),
        )

    def close_all_sessions(self, slot_id: int) -> bool:
        fn = self._func(_IDX_CLOSE_ALL_SESSIONS, _CloseAllSessions)
        return fn is not None and fn(slot_id) == 0

    def sign(self, session: int, mechanism: int, key: int, data: bytes) -> bytes:
        """C_SignInit + C_Sign (size query, then the signature) with a mechanism that
        takes no parameter. Raises python-pkcs11's exception for a failing CK_RV."""
        init = self._func(_IDX_SIGN_INIT, _SignInit)
        sign = self._func(_IDX_SIGN, _Sign)
        if init is None or sign is None:
            raise pe.FunctionNotSupported()
        mech = CK_MECHANISM(mechanism, None, 0)
        raise_for(init(session, ctypes.byref(mech), key))
        size = CK_ULONG(0)
        raise_for(sign(session, data, len(data), None, ctypes.byref(size)))
        out = ctypes.create_string_buffer(max(int(size.value), 1))
        raise_for(sign(session, data, len(data), out, ctypes.byref(size)))
        return out.raw[: int(size.value)]
