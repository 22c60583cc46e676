"""The GM/T 0016-2012 (SKF) ABI: type widths, packed structures and constants.

Written from the standard's definitions as GmSSL's ``src/skf/skf.h`` and ``src/sgd.h``
reproduce them. Two facts decide whether a vendor library and this binding agree:

- ``ULONG`` (and ``DWORD``, ``LONG``) is 32 bits as the standard says, unless a library was
  built with "native long" (``SGD_NATIVE_LONG`` in GmSSL), where it is 64 bits on 64-bit Linux.
  :func:`abi_for` builds the structures for either width; the width belongs in the catalog
  entry of each vendor library.
- ``BOOL`` is ``INT32`` in the standard, but GmSSL declares ``long`` (64 bits on LP64). By
  value the two are indistinguishable on x86-64; through a pointer (``pbDefaultPin``) this
  binding passes 8 zeroed bytes and reads the low 4, which is right for both.

Every structure is ``#pragma pack(1)``.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from typing import Any

BOOL = ctypes.c_int32
BYTE = ctypes.c_uint8
HANDLE = ctypes.c_void_p
LPSTR = ctypes.c_char_p

MAX_RSA_MODULUS_LEN = 256
MAX_RSA_EXPONENT_LEN = 4
ECC_COORDINATE_LEN = 64  # ECC_MAX_XCOORDINATE_BITS_LEN / 8
SM2_COORDINATE_LEN = 32  # a 256-bit value sits in the last 32 bytes of a 64-byte field

TRUE = 1
FALSE = 0


class PinType(IntEnum):
    ADMIN = 0  # ADMIN_TYPE
    USER = 1  # USER_TYPE


class ContainerType(IntEnum):
    """SKF_GetContainerType: what key pairs a container holds."""

    EMPTY = 0
    RSA = 1
    ECC = 2


class DevEvent(IntEnum):
    """SKF_WaitForDevEvent's pulEvent."""

    INSERTED = 1
    REMOVED = 2


class DevState(IntEnum):
    ABSENT = 0
    PRESENT = 1


# Access rights (SKF_CreateApplication's dwCreateFileRights).
SECURE_NEVER_ACCOUNT = 0x00
SECURE_ADM_ACCOUNT = 0x01
SECURE_USER_ACCOUNT = 0x10
SECURE_ANYONE_ACCOUNT = 0xFF

# Algorithm identifiers (GM/T 0006). Vendors disagree on SGD_SM2_1: GmSSL (and GM/T 0006-2012)
# use 0x00020200, some vendor headers 0x00020100 (GmSSL's SGD_SM2). libsoftskf accepts both.
SGD_SM3 = 0x00000001
SGD_SHA1 = 0x00000002
SGD_SHA256 = 0x00000004
SGD_RSA = 0x00010000
SGD_SM2 = 0x00020100
SGD_SM2_1 = 0x00020200
SGD_SM2_2 = 0x00020400
SGD_SM2_3 = 0x00020800


class Sar(IntEnum):
    """Return codes. 0x0A000001..0x0A000032 are GM/T 0016's; 0x33..0x35 are vendor codes seen
    in the wild (haitaibrowser's skf_meth.h), where 0x0A000032 also means
    SAR_GENERATESYMKEYERR instead of SAR_REACH_MAX_CONTAINER_COUNT."""

    OK = 0x00000000
    FAIL = 0x0A000001
    UNKNOWNERR = 0x0A000002
    NOTSUPPORTYETERR = 0x0A000003
    FILEERR = 0x0A000004
    INVALIDHANDLEERR = 0x0A000005
    INVALIDPARAMERR = 0x0A000006
    READFILEERR = 0x0A000007
    WRITEFILEERR = 0x0A000008
    NAMELENERR = 0x0A000009
    KEYUSAGEERR = 0x0A00000A
    MODULUSLENERR = 0x0A00000B
    NOTINITIALIZEERR = 0x0A00000C
    OBJERR = 0x0A00000D
    MEMORYERR = 0x0A00000E
    TIMEOUTERR = 0x0A00000F
    INDATALENERR = 0x0A000010
    INDATAERR = 0x0A000011
    GENRANDERR = 0x0A000012
    HASHOBJERR = 0x0A000013
    HASHERR = 0x0A000014
    GENRSAKEYERR = 0x0A000015
    RSAMODULUSLENERR = 0x0A000016
    CSPIMPRTPUBKEYERR = 0x0A000017
    RSAENCERR = 0x0A000018
    RSADECERR = 0x0A000019
    HASHNOTEQUALERR = 0x0A00001A
    KEYNOTFOUNTERR = 0x0A00001B
    CERTNOTFOUNTERR = 0x0A00001C
    NOTEXPORTERR = 0x0A00001D
    DECRYPTPADERR = 0x0A00001E
    MACLENERR = 0x0A00001F
    BUFFER_TOO_SMALL = 0x0A000020
    KEYINFOTYPEERR = 0x0A000021
    NOT_EVENTERR = 0x0A000022
    DEVICE_REMOVED = 0x0A000023
    PIN_INCORRECT = 0x0A000024
    PIN_LOCKED = 0x0A000025
    PIN_INVALID = 0x0A000026
    PIN_LEN_RANGE = 0x0A000027
    USER_ALREADY_LOGGED_IN = 0x0A000028
    USER_PIN_NOT_INITIALIZED = 0x0A000029
    USER_TYPE_INVALID = 0x0A00002A
    APPLICATION_NAME_INVALID = 0x0A00002B
    APPLICATION_EXISTS = 0x0A00002C
    USER_NOT_LOGGED_IN = 0x0A00002D
    APPLICATION_NOT_EXISTS = 0x0A00002E
    FILE_ALREADY_EXIST = 0x0A00002F
    NO_ROOM = 0x0A000030
    FILE_NOT_EXIST = 0x0A000031
    REACH_MAX_CONTAINER_COUNT = 0x0A000032
    CONTAINER_ALREADY_EXIST = 0x0A000033  # vendor
    CONTAINER_NOT_EXIST = 0x0A000034  # vendor
    CONTAINER_NOT_OPEN = 0x0A000035  # vendor

    @property
    def sar_name(self) -> str:
        return f"SAR_{self.name}"


def sar_name(code: int) -> str:
    """``SAR_PIN_INCORRECT`` for a known code, ``0x0A0000FF`` for any other."""
    try:
        return Sar(code).sar_name
    except ValueError:
        return f"0x{code:08X}"


@dataclass(frozen=True)
class Abi:
    """The C types of one library's ABI (32- or 64-bit ULONG)."""

    ulong: Any  # ctypes.c_uint32 or ctypes.c_uint64
    VERSION: Any
    DEVINFO: Any
    ECCPUBLICKEYBLOB: Any
    ECCSIGNATUREBLOB: Any
    RSAPUBLICKEYBLOB: Any

    @property
    def native_long(self) -> bool:
        return ctypes.sizeof(self.ulong) == 8


@cache
def abi_for(native_long: bool = False) -> Abi:
    """The structures for ``ULONG`` of 32 bits (the standard) or of C ``unsigned long``."""
    ulong: Any = ctypes.c_ulong if native_long else ctypes.c_uint32

    class VERSION(ctypes.Structure):
        _pack_ = 1
        _fields_ = (("major", BYTE), ("minor", BYTE))

    class DEVINFO(ctypes.Structure):
        _pack_ = 1
        _fields_ = (
            ("Version", VERSION),
            ("Manufacturer", ctypes.c_char * 64),
            ("Issuer", ctypes.c_char * 64),
            ("Label", ctypes.c_char * 32),
            ("SerialNumber", ctypes.c_char * 32),
            ("HWVersion", VERSION),
            ("FirmwareVersion", VERSION),
            ("AlgSymCap", ulong),
            ("AlgAsymCap", ulong),
            ("AlgHashCap", ulong),
            ("DevAuthAlgId", ulong),
            ("TotalSpace", ulong),
            ("FreeSpace", ulong),
            ("MaxECCBufferSize", ulong),
            ("MaxBufferSize", ulong),
            ("Reserved", BYTE * 64),
        )

    class ECCPUBLICKEYBLOB(ctypes.Structure):
        _pack_ = 1
        _fields_ = (
            ("BitLen", ulong),
            ("XCoordinate", BYTE * ECC_COORDINATE_LEN),
            ("YCoordinate", BYTE * ECC_COORDINATE_LEN),
        )

    class ECCSIGNATUREBLOB(ctypes.Structure):
        _pack_ = 1
        _fields_ = (("r", BYTE * ECC_COORDINATE_LEN), ("s", BYTE * ECC_COORDINATE_LEN))

    class RSAPUBLICKEYBLOB(ctypes.Structure):
        _pack_ = 1
        _fields_ = (
            ("AlgID", ulong),
            ("BitLen", ulong),
            ("Modulus", BYTE * MAX_RSA_MODULUS_LEN),
            ("PublicExponent", BYTE * MAX_RSA_EXPONENT_LEN),
        )

    return Abi(ulong, VERSION, DEVINFO, ECCPUBLICKEYBLOB, ECCSIGNATUREBLOB, RSAPUBLICKEYBLOB)


STANDARD = abi_for(False)
ULONG = STANDARD.ulong
DEVINFO = STANDARD.DEVINFO
ECCPUBLICKEYBLOB = STANDARD.ECCPUBLICKEYBLOB
ECCSIGNATUREBLOB = STANDARD.ECCSIGNATUREBLOB
RSAPUBLICKEYBLOB = STANDARD.RSAPUBLICKEYBLOB

# The sizes GM/T 0016 implies with a 32-bit ULONG (checked by the tests).
SIZES = {"DEVINFO": 294, "ECCPUBLICKEYBLOB": 132, "ECCSIGNATUREBLOB": 128, "RSAPUBLICKEYBLOB": 268}
