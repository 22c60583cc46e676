"""New-PIN policy: every error and warning, the token's length range, confirmation."""

from __future__ import annotations

import pytest

from drivers.types import Pin
from helper.domain.pin_policy import (
    INITIAL_PIN,
    PolicyResult,
    check_confirmation,
    check_new_pin,
    raise_for,
)
from helper.errors import PinMismatch, PinPolicyRejected


def check(new: str, *, old: str | None = "246810", lo: int | None = None, hi: int | None = None):
    return check_new_pin(Pin(new), old=None if old is None else Pin(old), min_len=lo, max_len=hi)


@pytest.mark.parametrize("pin", ["582937", "13579246", "Hebca2024", "zx9#Qp", "5829 37"])
def test_good_pins_pass_cleanly(pin):
    result = check(pin)
    assert result.ok
    assert result.errors == []
    assert result.warnings == []


def test_digit_pins_shorter_than_8_are_not_weak():
    assert check("730419").warnings == []


def test_initial_pin_is_never_allowed():
    assert INITIAL_PIN == "123456"
    result = check("123456", old="654321")
    assert not result.ok
    assert "pin_initial" in result.error_codes
    issue = next(i for i in result.errors if i.code == "pin_initial")
    assert issue.message == (
        "新密码不能是初始密码 123456 (The new PIN must not be the initial PIN 123456)"
    )


def test_empty():
    result = check("")
    assert result.error_codes == ["pin_empty"]
    assert result.warnings == []


@pytest.mark.parametrize(
    ("pin", "lo", "hi", "codes"),
    [
        ("58293", None, None, ["pin_too_short"]),  # default range 6..16
        ("5829371", None, None, []),
        ("5" + "8293710465829371", None, None, ["pin_too_long"]),  # 17
        ("5829371046582937", None, None, []),  # 16
        ("5829", 4, 8, []),
        ("582", 4, 8, ["pin_too_short"]),
        ("582937104", 4, 8, ["pin_too_long"]),
        ("58293710", 8, 8, []),
        ("5829371", 8, None, ["pin_too_short"]),
        ("58293710465829371", 4, None, ["pin_too_long"]),  # max defaults to 16
        ("582937104658293710465", 4, 255, []),  # SoftHSM's range
        ("58293", 0, 0, ["pin_too_short"]),  # "no range" from the token: defaults
        ("58293", 8, 4, ["pin_too_short"]),  # impossible range: defaults
    ],
)
def test_length_range(pin, lo, hi, codes):
    assert check(pin, lo=lo, hi=hi).error_codes == codes


def test_same_as_old():
    result = check("582937", old="582937")
    assert result.error_codes == ["pin_same_as_old"]


def test_old_pin_not_given():
    assert check("582937", old=None).ok


def test_initial_and_same_as_old_both_reported():
    result = check("123456", old="123456")
    assert set(result.error_codes) == {"pin_initial", "pin_same_as_old"}


@pytest.mark.parametrize(
    "pin",
    [
        "58293\t7",
        "582937\n",
        "5829\x0037",
        "\x1b582937",
        " 582937",
        "582937 ",
        "5829\u200b37",
        "5829\x7f37",
        "582937\u3000",
        "５８２９３７",  # full-width digits from a Chinese input method
        "密码582937",
    ],
)
def test_bad_chars(pin):
    assert "pin_bad_chars" in check(pin).error_codes


@pytest.mark.parametrize(
    "pin",
    [
        "111111",
        "aaaaaaaa",
        "234567",
        "987654",
        "abcdef",
        "FEDCBA",
        "aBcDeFg",
        "0123456789",
        "3456789",
        "zyxwvu",
    ],
)
def test_weak_patterns_warn_but_pass(pin):
    result = check(pin)
    assert result.ok
    assert result.warning_codes == ["pin_weak"]


@pytest.mark.parametrize(
    "pin", ["890123", "789012", "135791", "112233", "abcabc", "abc123", "yzabcd"]
)
def test_only_straight_runs_are_weak(pin):
    assert check(pin).warnings == []


def test_short_pin_warns_when_token_allows_it():
    result = check("5829", lo=4, hi=8)
    assert result.ok
    assert result.warning_codes == ["pin_weak"]
    assert "6" in result.warnings[0].message_zh


def test_short_and_patterned_pin_warns_twice():
    result = check("1111", lo=4, hi=8)
    assert result.ok
    assert result.warning_codes == ["pin_weak", "pin_weak"]


def test_too_short_is_an_error_not_also_a_warning():
    result = check("5829")
    assert result.error_codes == ["pin_too_short"]
    assert result.warnings == []


def test_issues_never_contain_the_pin():
    secret = "Zq7#x9Lm"
    result = check(" " + secret, old=" " + secret)
    text = repr(result) + "".join(i.message for i in result.errors + result.warnings)
    assert secret not in text


def test_messages_are_chinese_then_english():
    for result in (
        check(""),
        check("1"),
        check("x" * 20),
        check("123456"),
        check(" 5829371"),
        check("582937", old="582937"),
        check("111111"),
    ):
        for issue in result.errors + result.warnings:
            assert issue.message_zh and issue.message_en
            assert issue.message == f"{issue.message_zh} ({issue.message_en})"
            assert not issue.message_zh.isascii()
            assert issue.message_en.isascii()


def test_raise_for():
    raise_for(check("582937"))
    raise_for(check("111111"))  # warnings only
    raise_for(PolicyResult())
    with pytest.raises(PinPolicyRejected) as info:
        raise_for(check("123456", old="123456"))
    err = info.value
    assert err.code == "pin_policy"
    assert set(err.data["issues"]) == {"pin_initial", "pin_same_as_old"}
    assert "初始密码" in (err.detail or "")
    assert err.to_dict()["data"]["issues"] == err.data["issues"]


def test_confirmation():
    check_confirmation(Pin("582937"), Pin("582937"))
    with pytest.raises(PinMismatch) as info:
        check_confirmation(Pin("582937"), Pin("582938"))
    assert info.value.code == "pin_mismatch"
    with pytest.raises(PinMismatch):
        check_confirmation(Pin("582937"), Pin("5829370"))
    with pytest.raises(PinMismatch):
        check_confirmation(Pin("582937"), Pin(""))
