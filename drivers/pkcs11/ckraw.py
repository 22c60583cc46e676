"""The two Cryptoki calls python-pkcs11 0.10 does not expose, through ctypes.

* ``C_GetTokenInfo`` for the PIN length range (``ulMinPinLen``/``ulMaxPinLen``)
  and fresh flags (python-pkcs11's ``Token.flags`` is a snapshot).
* ``C_CloseAllSessions`` to close the session that python-pkcs11 leaks when
  ``C_Login`` fails (pkcs11-notes.md, pitfall 3).

``ctypes.CDLL`` on the path python-pkcs11 already loaded returns the same
library handle, so these calls see the module python-pkcs11 initialised. They
must run on the module's worker thread like every other call.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass

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
_N_FUNCS = 68


class _FunctionList(ctypes.Structure):
    if _PACK:
        _pack_ = _PACK
    _fields_ = (("version", CK_VERSION), ("funcs", ctypes.c_void_p * _N_FUNCS))


_FUNCTYPE = ctypes.WINFUNCTYPE if sys.platform == "win32" else ctypes.CFUNCTYPE  # type: ignore[attr-defined]
_GetTokenInfo = _FUNCTYPE(CK_RV, CK_ULONG, ctypes.POINTER(CK_TOKEN_INFO))
_CloseAllSessions = _FUNCTYPE(CK_RV, CK_ULONG)
_GetFunctionList = _FUNCTYPE(CK_RV, ctypes.POINTER(ctypes.POINTER(_FunctionList)))

# CK_UNAVAILABLE_INFORMATION / CK_EFFECTIVELY_INFINITE markers for lengths
_UNAVAILABLE = ctypes.c_ulong(-1).value


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
