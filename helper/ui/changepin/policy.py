"""The live checks 修改密码 runs as you type: the key's length range, the
foundation's PIN policy, the confirmation (pure: no Tk, no key)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from drivers.types import Pin, PinState, TokenInfo
from helper.domain.pin_policy import (
    DEFAULT_MAX_LEN,
    DEFAULT_MIN_LEN,
    INITIAL_PIN,
    PolicyIssue,
    check_new_pin,
)

ENV_TEST_HOOKS = "CERTHELPER_TEST_HOOKS"
ENV_TEST_PIN_STATE = "CERTHELPER_TEST_PIN_STATE"
MISMATCH = "两次输入的新密码不一致 (The two new PINs differ)"


def forced_pin_state() -> PinState | None:
    """The PIN state the test double imposes, if the hooks are on."""
    if os.environ.get(ENV_TEST_HOOKS) != "1":
        return None
    value = os.environ.get(ENV_TEST_PIN_STATE, "").strip().lower()
    try:
        return PinState(value) if value else None
    except ValueError:
        return None


def with_test_state(info: TokenInfo) -> TokenInfo:
    forced = forced_pin_state()
    return dataclasses.replace(info, pin_state=forced) if forced else info


def new_pin_range(token: TokenInfo) -> tuple[int, int]:
    """The new PIN's length range as the policy applies it (6..16 without a range)."""
    lo = token.pin_min_len if token.pin_min_len and token.pin_min_len >= 1 else DEFAULT_MIN_LEN
    hi = token.pin_max_len if token.pin_max_len and token.pin_max_len >= 1 else DEFAULT_MAX_LEN
    if hi < lo:
        return DEFAULT_MIN_LEN, DEFAULT_MAX_LEN
    return lo, hi


def old_pin_ok(length: int, token: TokenInfo) -> bool:
    """A current PIN the key could accept at all (no try is spent on one it cannot)."""
    lo = token.pin_min_len if token.pin_min_len and token.pin_min_len >= 1 else 1
    hi = token.pin_max_len if token.pin_max_len and token.pin_max_len >= lo else None
    return length >= lo and (hi is None or length <= hi)


def new_pin_hint(token: TokenInfo) -> str:
    lo, hi = new_pin_range(token)
    size = f"{lo}–{hi} 位" if hi <= 32 else f"至少 {lo} 位"
    size_en = f"{lo}–{hi} characters" if hi <= 32 else f"at least {lo} characters"
    return (
        f"{size}，不能是 {INITIAL_PIN}，不能与当前密码相同\n"
        f"({size_en}; not {INITIAL_PIN}; not the current PIN)"
    )


@dataclass
class Check:
    """The policy's verdict on what is typed now (codes and messages, never the PINs)."""

    ok: bool
    errors: list[PolicyIssue] = field(default_factory=list)
    warnings: list[PolicyIssue] = field(default_factory=list)
    mismatch: bool = False

    def codes(self) -> tuple[bool, tuple[str, ...], tuple[str, ...], bool]:
        return (
            self.ok,
            tuple(i.code for i in self.errors),
            tuple(i.code for i in self.warnings),
            self.mismatch,
        )


def evaluate(old: Pin, new: Pin, confirm: Pin, token: TokenInfo) -> Check:
    check = Check(ok=False)
    if len(new):
        lo, hi = new_pin_range(token)
        result = check_new_pin(new, old=old if len(old) else None, min_len=lo, max_len=hi)
        check.errors, check.warnings = result.errors, result.warnings
    if len(confirm) and not new.equals(confirm):
        # still typing the confirmation: only a wrong start or a longer one is a mismatch
        typing = len(confirm) < len(new) and Pin(new.reveal()[: len(confirm)]).equals(confirm)
        check.mismatch = not typing
    check.ok = (
        old_pin_ok(len(old), token)
        and len(new) > 0
        and not check.errors
        and len(confirm) > 0
        and new.equals(confirm)
    )
    return check
