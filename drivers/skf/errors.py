"""SKF return codes → certhelper errors, in this one place.

Every code of GM/T 0016 (and the few vendor codes in :class:`~drivers.skf.abi.Sar`) maps to
one class of :mod:`drivers.errors`; an unknown code becomes :class:`~drivers.errors.DeviceError`
with the code in hex. ``SAR_BUFFER_TOO_SMALL`` and ``SAR_NOT_EVENTERR`` are normally handled
by the binding itself (buffer negotiation, a cancelled wait); they are mapped all the same.
"""

from __future__ import annotations

from drivers import errors as E
from drivers.skf.abi import Sar, sar_name

SAR_ERRORS: dict[Sar, type[E.CertHelperError]] = {
    Sar.FAIL: E.DeviceError,
    Sar.UNKNOWNERR: E.DeviceError,
    Sar.NOTSUPPORTYETERR: E.MechanismUnsupported,
    Sar.FILEERR: E.DeviceError,
    # A handle goes invalid when its device is unplugged and re-plugged, or its object was
    # deleted: the same as PKCS#11's SessionHandleInvalid, which the driver reads as "absent".
    Sar.INVALIDHANDLEERR: E.TokenAbsent,
    Sar.INVALIDPARAMERR: E.BadInput,
    Sar.READFILEERR: E.DeviceError,
    Sar.WRITEFILEERR: E.DeviceError,
    Sar.NAMELENERR: E.BadInput,
    Sar.KEYUSAGEERR: E.MechanismUnsupported,
    Sar.MODULUSLENERR: E.MechanismUnsupported,
    Sar.NOTINITIALIZEERR: E.DeviceError,
    Sar.OBJERR: E.DeviceError,
    Sar.MEMORYERR: E.DeviceError,
    Sar.TIMEOUTERR: E.OperationTimeout,
    Sar.INDATALENERR: E.BadInput,
    Sar.INDATAERR: E.BadInput,
    Sar.GENRANDERR: E.DeviceError,
    Sar.HASHOBJERR: E.DeviceError,
    Sar.HASHERR: E.DeviceError,
    Sar.GENRSAKEYERR: E.DeviceError,
    Sar.RSAMODULUSLENERR: E.MechanismUnsupported,
    Sar.CSPIMPRTPUBKEYERR: E.DeviceError,
    Sar.RSAENCERR: E.DeviceError,
    Sar.RSADECERR: E.DeviceError,
    Sar.HASHNOTEQUALERR: E.DeviceError,
    Sar.KEYNOTFOUNTERR: E.KeyNotFound,
    Sar.CERTNOTFOUNTERR: E.ObjectNotFound,
    Sar.NOTEXPORTERR: E.MechanismUnsupported,
    Sar.DECRYPTPADERR: E.DeviceError,
    Sar.MACLENERR: E.BadInput,
    Sar.BUFFER_TOO_SMALL: E.DeviceError,
    Sar.KEYINFOTYPEERR: E.MechanismUnsupported,
    Sar.NOT_EVENTERR: E.OperationTimeout,
    Sar.DEVICE_REMOVED: E.TokenAbsent,
    Sar.PIN_INCORRECT: E.PinIncorrect,
    Sar.PIN_LOCKED: E.PinLocked,
    Sar.PIN_INVALID: E.PinInvalid,
    Sar.PIN_LEN_RANGE: E.PinLenRange,
    Sar.USER_ALREADY_LOGGED_IN: E.DeviceError,
    Sar.USER_PIN_NOT_INITIALIZED: E.PinLocked,  # as PKCS#11's UserPinNotInitialized
    Sar.USER_TYPE_INVALID: E.BadInput,
    Sar.APPLICATION_NAME_INVALID: E.BadInput,
    Sar.APPLICATION_EXISTS: E.ObjectExists,
    Sar.USER_NOT_LOGGED_IN: E.NotLoggedIn,
    Sar.APPLICATION_NOT_EXISTS: E.ObjectNotFound,
    Sar.FILE_ALREADY_EXIST: E.ObjectExists,
    Sar.NO_ROOM: E.TokenFull,
    Sar.FILE_NOT_EXIST: E.ObjectNotFound,
    Sar.REACH_MAX_CONTAINER_COUNT: E.TokenFull,
    Sar.CONTAINER_ALREADY_EXIST: E.ObjectExists,
    Sar.CONTAINER_NOT_EXIST: E.ObjectNotFound,
    Sar.CONTAINER_NOT_OPEN: E.TokenAbsent,
}


def map_sar(code: int, function: str, *, retries_left: int | None = None) -> E.CertHelperError:
    """The error for a failed SKF call. ``retries_left`` goes into ``.data`` of PIN errors."""
    detail = f"{function}: {sar_name(code)}"
    try:
        cls = SAR_ERRORS[Sar(code)]
    except (ValueError, KeyError):
        return E.DeviceError(detail=detail, sar=f"0x{code:08X}")
    if cls in (E.PinIncorrect, E.PinLocked) and retries_left is not None:
        return cls(detail=detail, retries_left=retries_left)
    return cls(detail=detail)
