"""The SKF ABI as ctypes sees it, the SAR → error table and the small parsers; no library."""

from __future__ import annotations

import ctypes

import pytest

from drivers import errors as E
from drivers.skf import abi
from drivers.skf.abi import Sar
from drivers.skf.errors import SAR_ERRORS, map_sar
from drivers.skf.keys import (
    EccPublicKey,
    RsaPublicKey,
    signature_from_blob,
    signature_to_blob,
)
from drivers.skf.library import decode_text, parse_multistring
from drivers.sm2 import GX, GY

# --------------------------------------------------------------------------------------------
# Layout (#pragma pack(1), 32-bit ULONG)


def test_structure_sizes_match_the_standard() -> None:
    for name, size in abi.SIZES.items():
        assert ctypes.sizeof(getattr(abi, name)) == size, name


@pytest.mark.parametrize(
    ("field", "offset"),
    [
        ("Version", 0),
        ("Manufacturer", 2),
        ("Issuer", 66),
        ("Label", 130),
        ("SerialNumber", 162),
        ("HWVersion", 194),
        ("FirmwareVersion", 196),
        ("AlgSymCap", 198),
        ("MaxBufferSize", 226),
        ("Reserved", 230),
    ],
)
def test_devinfo_is_packed(field: str, offset: int) -> None:
    assert getattr(abi.DEVINFO, field).offset == offset


def test_blob_offsets() -> None:
    assert abi.ECCPUBLICKEYBLOB.XCoordinate.offset == 4
    assert abi.ECCPUBLICKEYBLOB.YCoordinate.offset == 68
    assert abi.ECCSIGNATUREBLOB.s.offset == 64
    assert abi.RSAPUBLICKEYBLOB.Modulus.offset == 8
    assert abi.RSAPUBLICKEYBLOB.PublicExponent.offset == 264


def test_native_long_abi_widens_ulong_fields() -> None:
    wide = abi.abi_for(native_long=True)
    assert wide.native_long and not abi.STANDARD.native_long
    assert ctypes.sizeof(wide.ECCPUBLICKEYBLOB) == 8 + 128
    assert ctypes.sizeof(wide.DEVINFO) == 294 + 8 * 4
    assert abi.abi_for(native_long=True) is wide  # cached


# --------------------------------------------------------------------------------------------
# SAR codes


def test_every_standard_code_is_mapped() -> None:
    for code in Sar:
        if code is not Sar.OK:
            assert code in SAR_ERRORS, code.sar_name
    codes = [c.value for c in Sar if c is not Sar.OK]
    assert codes == list(range(0x0A000001, 0x0A000036))


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (Sar.PIN_INCORRECT, E.PinIncorrect),
        (Sar.PIN_LOCKED, E.PinLocked),
        (Sar.PIN_LEN_RANGE, E.PinLenRange),
        (Sar.PIN_INVALID, E.PinInvalid),
        (Sar.DEVICE_REMOVED, E.TokenAbsent),
        (Sar.USER_NOT_LOGGED_IN, E.NotLoggedIn),
        (Sar.KEYNOTFOUNTERR, E.KeyNotFound),
        (Sar.NOTSUPPORTYETERR, E.MechanismUnsupported),
        (Sar.TIMEOUTERR, E.OperationTimeout),
        (Sar.INDATALENERR, E.BadInput),
        (Sar.APPLICATION_NOT_EXISTS, E.ObjectNotFound),
        (Sar.FILE_ALREADY_EXIST, E.ObjectExists),
        (Sar.NO_ROOM, E.TokenFull),
        (Sar.FAIL, E.DeviceError),
    ],
)
def test_mapping(code: Sar, cls: type[E.CertHelperError]) -> None:
    error = map_sar(code, "SKF_Something")
    assert type(error) is cls
    assert error.detail == f"SKF_Something: {code.sar_name}"


def test_pin_errors_carry_the_tries_left() -> None:
    error = map_sar(Sar.PIN_INCORRECT, "SKF_VerifyPIN", retries_left=4)
    assert isinstance(error, E.PinIncorrect) and error.data == {"retries_left": 4}
    assert map_sar(Sar.PIN_LOCKED, "SKF_VerifyPIN", retries_left=0).data == {"retries_left": 0}
    assert map_sar(Sar.DEVICE_REMOVED, "SKF_VerifyPIN", retries_left=3).data == {}


def test_unknown_code_is_a_device_error_with_the_hex_code() -> None:
    error = map_sar(0x0A0000FF, "SKF_X")
    assert type(error) is E.DeviceError
    assert error.data == {"sar": "0x0A0000FF"} and "0x0A0000FF" in error.message()
    assert abi.sar_name(0x12345678) == "0x12345678"
    assert abi.sar_name(0x0A000024) == "SAR_PIN_INCORRECT"


# --------------------------------------------------------------------------------------------
# Name lists and texts


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        (b"", []),
        (b"\0", []),
        (b"\0\0", []),
        (b"a\0\0", [b"a"]),
        (b"a\0b c\0\0", [b"a", b"b c"]),
        (b"a\0b", [b"a", b"b"]),  # no final terminator: tolerated
        (b"a\0\0garbage\0\0", [b"a"]),  # stops at the empty name
        ("设备一".encode() + b"\0dev2\0\0\0\0", ["设备一".encode(), b"dev2"]),
    ],
)
def test_parse_multistring(raw: bytes, names: list[bytes]) -> None:
    assert parse_multistring(raw) == names


def test_decode_text_handles_gb18030_and_padding() -> None:
    assert decode_text("河北CA测试".encode() + b"\0\0\0") == "河北CA测试"
    assert decode_text("河北CA测试".encode("gb18030") + b"\xff\xff") == "河北CA测试"
    assert decode_text(b"LABEL   ") == "LABEL"
    assert decode_text(b"A" * 32) == "A" * 32  # a full field has no NUL


# --------------------------------------------------------------------------------------------
# Blobs


def test_ecc_blob_round_trip_is_right_aligned() -> None:
    key = EccPublicKey(GX, GY)
    blob = key.to_blob()
    assert bytes(blob.XCoordinate)[:32] == bytes(32)
    assert bytes(blob.XCoordinate)[32:] == GX.to_bytes(32, "big")
    assert EccPublicKey.from_blob(blob) == key


def test_ecc_blob_refuses_bad_keys() -> None:
    blob = EccPublicKey(GX, GY).to_blob()
    blob.BitLen = 512
    with pytest.raises(ValueError, match="256 bits"):
        EccPublicKey.from_blob(blob)
    off_curve = EccPublicKey(GX, GY + 1).to_blob()
    with pytest.raises(ValueError, match="not on the SM2 curve"):
        EccPublicKey.from_blob(off_curve)


def test_signature_blob_round_trip() -> None:
    r, s = 3, (1 << 255) + 7
    assert signature_from_blob(signature_to_blob(r, s)) == (r, s)
    blob = signature_to_blob(r, s)
    blob.r[0] = 1  # a value above 256 bits
    with pytest.raises(ValueError):
        signature_from_blob(blob)


def test_rsa_blob_consistency_is_checked() -> None:
    blob = abi.RSAPUBLICKEYBLOB()
    blob.BitLen = 2048
    ctypes.memmove(ctypes.addressof(blob.Modulus), b"\x80" + bytes(255), 256)
    ctypes.memmove(ctypes.addressof(blob.PublicExponent), (65537).to_bytes(4, "big"), 4)
    key = RsaPublicKey.from_blob(blob)
    assert key.bits == 2048 and key.e == 65537
    blob.BitLen = 1024
    with pytest.raises(ValueError):
        RsaPublicKey.from_blob(blob)
