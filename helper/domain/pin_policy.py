"""Rules a NEW PIN must meet before it is sent to the key (C_SetPIN).

Errors block the change; warnings are shown but the user may go on. The PIN's
characters are looked at only inside :func:`check_new_pin` and never stored:
issues carry codes and fixed messages, not the PIN.

When the token reports no PIN length range (or an impossible one), 6..16 is
assumed: HEBCA keys issue 6-digit PINs and accept up to 16 characters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from drivers.types import Pin
from helper.errors import PinMismatch, PinPolicyRejected

__all__ = [
    "DEFAULT_MAX_LEN",
    "DEFAULT_MIN_LEN",
    "INITIAL_PIN",
    "WEAK_LEN",
    "PolicyIssue",
    "PolicyResult",
    "check_confirmation",
    "check_new_pin",
    "raise_for",
]

INITIAL_PIN = "123456"
DEFAULT_MIN_LEN = 6
DEFAULT_MAX_LEN = 16
#: shorter PINs get a ``pin_weak`` warning when the token allows them at all
WEAK_LEN = 6
#: runs and repeats are only judged from this length on (shorter PINs are "short")
_PATTERN_MIN_LEN = 3


@dataclass(frozen=True)
class PolicyIssue:
    code: str
    message_zh: str
    message_en: str

    @property
    def message(self) -> str:
        return f"{self.message_zh} ({self.message_en})"


@dataclass
class PolicyResult:
    errors: list[PolicyIssue] = field(default_factory=list)
    warnings: list[PolicyIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def error_codes(self) -> list[str]:
        return [i.code for i in self.errors]

    @property
    def warning_codes(self) -> list[str]:
        return [i.code for i in self.warnings]


def _length_range(min_len: int | None, max_len: int | None) -> tuple[int, int]:
    lo = DEFAULT_MIN_LEN if min_len is None or min_len < 1 else min_len
    hi = DEFAULT_MAX_LEN if max_len is None or max_len < 1 else max_len
    if hi < lo:  # a token reporting nonsense: fall back to the defaults
        return DEFAULT_MIN_LEN, DEFAULT_MAX_LEN
    return lo, hi


def _has_bad_chars(value: str) -> bool:
    """Control, non-printable or non-ASCII characters (full-width digits typed
    with a Chinese input method look right but can never be typed on a PIN pad
    or in another helper), or whitespace at either end."""
    return not value.isprintable() or not value.isascii() or value != value.strip()


def _is_repeated(value: str) -> bool:
    return len(value) >= 2 and len(set(value)) == 1


def _is_straight_run(value: str) -> bool:
    """234567, 987654, abcdef, FEDCBA: each character one step from the last.

    Only straight runs count; wrapping ones such as 890123 are not detected.
    """
    if len(value) < _PATTERN_MIN_LEN:
        return False
    text = value.lower()
    if not (text.isascii() and (text.isdigit() or text.isalpha())):
        return False
    steps = {ord(b) - ord(a) for a, b in pairwise(text)}
    return steps in ({1}, {-1})


def check_new_pin(
    new: Pin, *, old: Pin | None, min_len: int | None, max_len: int | None
) -> PolicyResult:
    """Check a new PIN against the policy; ``min_len``/``max_len`` come from the token."""
    result = PolicyResult()
    err, warn = result.errors.append, result.warnings.append
    length = len(new)
    if length == 0:
        err(PolicyIssue("pin_empty", "新密码不能为空", "The new PIN must not be empty"))
        return result

    lo, hi = _length_range(min_len, max_len)
    if length < lo:
        err(
            PolicyIssue(
                "pin_too_short",
                f"新密码至少需要 {lo} 位",
                f"The new PIN must have at least {lo} characters",
            )
        )
    if length > hi:
        err(
            PolicyIssue(
                "pin_too_long",
                f"新密码最多 {hi} 位",
                f"The new PIN must have at most {hi} characters",
            )
        )
    if new.equals(INITIAL_PIN):
        err(
            PolicyIssue(
                "pin_initial",
                f"新密码不能是初始密码 {INITIAL_PIN}",
                f"The new PIN must not be the initial PIN {INITIAL_PIN}",
            )
        )
    if old is not None and new.equals(old):
        err(
            PolicyIssue(
                "pin_same_as_old",
                "新密码不能与原密码相同",
                "The new PIN must differ from the current PIN",
            )
        )

    value = new.reveal()  # local only: the checks below need the characters
    if _has_bad_chars(value):
        err(
            PolicyIssue(
                "pin_bad_chars",
                "新密码只能使用英文字母、数字和符号（请关闭中文输入法），且不能以空格开头/结尾",
                "The new PIN may only use ASCII letters, digits and symbols "
                "(switch off the Chinese input method), and must not start or end with a space",
            )
        )
    if _is_repeated(value):
        warn(
            PolicyIssue(
                "pin_weak",
                "新密码由同一个字符重复组成，容易被猜到",
                "The new PIN repeats a single character and is easy to guess",
            )
        )
    elif _is_straight_run(value):
        warn(
            PolicyIssue(
                "pin_weak",
                "新密码是连续的数字或字母，容易被猜到",
                "The new PIN is a straight run of digits or letters and is easy to guess",
            )
        )
    del value
    if length < WEAK_LEN and length >= lo:
        warn(
            PolicyIssue(
                "pin_weak",
                f"新密码少于 {WEAK_LEN} 位，容易被猜到",
                f"The new PIN is shorter than {WEAK_LEN} characters and is easy to guess",
            )
        )
    return result


def check_confirmation(new: Pin, confirm: Pin) -> None:
    """Raise :class:`PinMismatch` unless the two entries of the new PIN are the same."""
    if not new.equals(confirm):
        raise PinMismatch()


def raise_for(result: PolicyResult) -> None:
    """Raise :class:`PinPolicyRejected` listing the error codes, if there are errors."""
    if result.ok:
        return
    raise PinPolicyRejected(
        detail="; ".join(i.message for i in result.errors),
        issues=result.error_codes,
    )
