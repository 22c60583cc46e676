"""PINs: counters, real locking, unblocking, changing, the default flag, and what is stored."""

from __future__ import annotations

import ctypes

import pytest

from drivers import errors as E
from drivers.skf import PinType, Sar
from drivers.skf import abi as skf_abi
from drivers.types import Pin
from tests.drivers.skf.conftest import ADMIN_PIN, USER_PIN, WRONG_PIN, Skf

NEW_PIN = "24680135"


def wrong_tries_until_locked(skf: Skf, app, pin_type: PinType = PinType.USER) -> list[int]:
    left: list[int] = []
    for _ in range(6):
        with pytest.raises((E.PinIncorrect, E.PinLocked)) as caught:
            skf.lib.verify_pin(app, Pin(WRONG_PIN), pin_type)
        left.append(caught.value.data["retries_left"])
        if isinstance(caught.value, E.PinLocked):
            break
    return left


def test_wrong_pin_counts_down_then_really_locks(skf: Skf) -> None:
    _, app, con = skf.open_container("gm_company_sign", login=False)
    assert wrong_tries_until_locked(skf, app) == [5, 4, 3, 2, 1, 0]
    info = skf.lib.pin_info(app)
    assert (info.remaining, info.locked) == (0, True)
    with pytest.raises(E.PinLocked) as caught:  # the right PIN no longer works
        skf.lib.verify_pin(app, Pin(USER_PIN))
    assert caught.value.data == {"retries_left": 0}
    with pytest.raises(E.NotLoggedIn):
        skf.lib.ecc_sign(con, bytes(32))
    # locked for another handle and another opening too: the state is on the "device"
    _, other = skf.open_app("gm1")
    with pytest.raises(E.PinLocked):
        skf.lib.verify_pin(other, Pin(USER_PIN))
    # the admin PIN is a separate counter
    assert skf.lib.pin_info(app, PinType.ADMIN).remaining == 6


def test_the_try_that_locks_reports_pin_locked_at_the_abi(skf: Skf) -> None:
    _, app = skf.open_app("gm2")
    verify = skf.lib.raw("SKF_VerifyPIN")
    retry = skf_abi.ULONG(99)
    codes = []
    for _ in range(6):
        codes.append((verify(app, 1, b"999999", ctypes.byref(retry)), retry.value))
    assert codes[:5] == [(Sar.PIN_INCORRECT, n) for n in (5, 4, 3, 2, 1)]
    assert codes[5] == (Sar.PIN_LOCKED, 0)
    assert verify(app, 1, USER_PIN.encode(), ctypes.byref(retry)) == Sar.PIN_LOCKED


def test_right_pin_resets_the_counter(skf: Skf) -> None:
    _, app = skf.open_app("gm2")
    for expected in (5, 4):
        with pytest.raises(E.PinIncorrect) as caught:
            skf.lib.verify_pin(app, Pin(WRONG_PIN))
        assert caught.value.data == {"retries_left": expected}
    assert skf.lib.pin_info(app).remaining == 4
    skf.lib.verify_pin(app, Pin(USER_PIN))
    assert skf.lib.pin_info(app).remaining == 6


def test_a_failed_try_logs_out(skf: Skf) -> None:
    _, app, con = skf.open_container("gm_company_sign")
    skf.lib.ecc_sign(con, bytes(32))
    with pytest.raises(E.PinIncorrect):
        skf.lib.verify_pin(app, Pin(WRONG_PIN))
    with pytest.raises(E.NotLoggedIn):
        skf.lib.ecc_sign(con, bytes(32))


def test_unblock_with_the_admin_pin(skf: Skf) -> None:
    _, app, con = skf.open_container("gm_company_sign", login=False)
    wrong_tries_until_locked(skf, app)
    with pytest.raises(E.PinIncorrect) as caught:  # a wrong admin PIN counts against it
        skf.lib.unblock_pin(app, Pin("87654321"), Pin(NEW_PIN))
    assert caught.value.data == {"retries_left": 5}
    assert skf.lib.pin_info(app, PinType.ADMIN).remaining == 5
    assert skf.lib.pin_info(app).locked
    skf.lib.unblock_pin(app, Pin(ADMIN_PIN), Pin(NEW_PIN))
    assert skf.lib.pin_info(app, PinType.ADMIN).remaining == 6
    info = skf.lib.pin_info(app)
    assert (info.remaining, info.is_default) == (6, True)  # set by the admin: to be changed
    with pytest.raises(E.PinIncorrect):
        skf.lib.verify_pin(app, Pin(USER_PIN))  # the old PIN is gone
    skf.lib.verify_pin(app, Pin(NEW_PIN))
    skf.lib.ecc_sign(con, bytes(32))


def test_admin_pin_locks_for_good(skf: Skf) -> None:
    _, app = skf.open_app("gm2")
    assert wrong_tries_until_locked(skf, app, PinType.ADMIN) == [5, 4, 3, 2, 1, 0]
    with pytest.raises(E.PinLocked):
        skf.lib.unblock_pin(app, Pin(ADMIN_PIN), Pin(NEW_PIN))
    with pytest.raises(E.PinLocked):
        skf.lib.verify_pin(app, Pin(ADMIN_PIN), PinType.ADMIN)
    skf.lib.verify_pin(app, Pin(USER_PIN))  # the user PIN is unaffected


def test_change_pin(skf: Skf) -> None:
    _, app, con = skf.open_container("gm_company_sign", login=False)
    assert skf.lib.pin_info(app).is_default
    skf.lib.change_pin(app, Pin(USER_PIN), Pin(NEW_PIN))
    assert not skf.lib.pin_info(app).is_default
    with pytest.raises(E.PinIncorrect):
        skf.lib.verify_pin(app, Pin(USER_PIN))
    skf.lib.verify_pin(app, Pin(NEW_PIN))
    skf.lib.ecc_sign(con, bytes(32))
    assert skf.lib.pin_info(app).remaining == 6
    assert skf.lib.pin_info(app, PinType.ADMIN).is_default  # the admin PIN is its own


def test_change_pin_failures(skf: Skf) -> None:
    _, app = skf.open_app("gm2")
    with pytest.raises(E.PinIncorrect) as caught:  # a wrong old PIN is a try
        skf.lib.change_pin(app, Pin(WRONG_PIN), Pin(NEW_PIN))
    assert caught.value.data == {"retries_left": 5}
    for short, long_ in (("12345", NEW_PIN), (USER_PIN, "1" * 17)):
        with pytest.raises(E.PinLenRange):  # refused before any try
            skf.lib.change_pin(app, Pin(short), Pin(long_))
    assert skf.lib.pin_info(app).remaining == 5
    assert skf.lib.pin_info(app).is_default  # nothing changed
    skf.lib.verify_pin(app, Pin(USER_PIN))
    change = skf.lib.raw("SKF_ChangePIN")
    retry = skf_abi.ULONG(0)
    assert change(app, 7, b"123456", b"654321", ctypes.byref(retry)) == Sar.USER_TYPE_INVALID
    assert change(app, 1, None, b"654321", ctypes.byref(retry)) == Sar.INVALIDPARAMERR


def test_change_admin_pin(skf: Skf) -> None:
    _, app = skf.open_app("gm2")
    skf.lib.change_pin(app, Pin(ADMIN_PIN), Pin(NEW_PIN), PinType.ADMIN)
    assert not skf.lib.pin_info(app, PinType.ADMIN).is_default
    assert skf.lib.pin_info(app).is_default
    skf.lib.verify_pin(app, Pin(NEW_PIN), PinType.ADMIN)


def test_pin_length_is_checked_without_counting(skf: Skf) -> None:
    _, app = skf.open_app("gm2")
    for bad in ("12345", "1" * 17, ""):
        with pytest.raises(E.PinLenRange):
            skf.lib.verify_pin(app, Pin(bad))
    assert skf.lib.pin_info(app).remaining == 6


def test_pin_calls_refuse_bad_arguments(skf: Skf) -> None:
    _, app = skf.open_app("gm2")
    verify = skf.lib.raw("SKF_VerifyPIN")
    info = skf.lib.raw("SKF_GetPINInfo")
    value = skf_abi.ULONG(0)
    flag = ctypes.create_string_buffer(8)
    assert verify(app, 2, b"123456", ctypes.byref(value)) == Sar.USER_TYPE_INVALID
    assert verify(app, 1, None, ctypes.byref(value)) == Sar.INVALIDPARAMERR
    assert verify(app, 1, USER_PIN.encode(), None) == Sar.OK  # the count is optional
    assert info(app, 1, None, ctypes.byref(value), flag) == Sar.INVALIDPARAMERR
    assert info(app, 5, ctypes.byref(value), ctypes.byref(value), flag) == Sar.USER_TYPE_INVALID
    with pytest.raises(TypeError):
        skf.lib.verify_pin(app, USER_PIN)  # type: ignore[arg-type]


def test_default_flag_fits_a_four_byte_bool(skf: Skf) -> None:
    _, app = skf.open_app("gm2")
    flag = ctypes.create_string_buffer(b"\xaa" * 8, 8)
    value = skf_abi.ULONG(0)
    rv = skf.lib.raw("SKF_GetPINInfo")(app, 1, ctypes.byref(value), ctypes.byref(value), flag)
    assert rv == Sar.OK
    assert flag.raw == b"\x01\x00\x00\x00" + b"\xaa" * 4  # BOOL is INT32: 4 bytes written


def test_no_pin_in_clear_on_disk(skf: Skf) -> None:
    _, app = skf.open_app("gm2")
    skf.lib.change_pin(app, Pin(USER_PIN), Pin(NEW_PIN))
    for path in skf.device_path("gm2").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for pin in (USER_PIN, ADMIN_PIN, NEW_PIN):
                assert pin.encode() not in data, path
    conf = next(skf.device_path("gm2").rglob("app.conf")).read_text()
    assert "user.kdf=pbkdf2-hmac-sha256" in conf and "user.salt=" in conf
