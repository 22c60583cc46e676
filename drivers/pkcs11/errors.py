"""python-pkcs11's exceptions and token flags, read once at the driver boundary."""

from __future__ import annotations

import pkcs11.exceptions as pe
from pkcs11 import TokenFlag

from drivers import errors as E
from drivers.types import PinState

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


def map_worker_error(exc: BaseException) -> E.CertHelperError | None:
    """The worker's hook: python-pkcs11 errors only; anything else is a bug to surface."""
    return map_pkcs11_error(exc) if isinstance(exc, pe.PKCS11Error) else None


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
