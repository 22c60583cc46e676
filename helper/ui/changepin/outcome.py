"""The change itself (C_SetPIN once, never retried) and what each outcome tells the person."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from drivers.errors import (
    CertHelperError,
    PinIncorrect,
    PinInvalid,
    PinLenRange,
    PinLocked,
    TokenAbsent,
)
from drivers.protocol import TokenDriver
from drivers.types import Pin, PinState, TokenInfo
from helper.domain.presentation import contact_line, pin_locked_help, pin_tries_text
from helper.services import operations
from helper.ui.changepin.policy import with_test_state
from helper.ui.notice.content import CONTACTS

log = logging.getLogger(__name__)

#: whom to call about a locked PIN: the first 技术支持 contact (the CA office)
CA_CONTACT = contact_line(*CONTACTS[0])
LOCKED_TEXT = "该 USB Key 的密码已锁定，无法修改。\n(The PIN is locked and cannot be changed here.)"
#: what to do about it (call the CA), Chinese first, English beside
LOCKED_HELP = pin_locked_help(*CA_CONTACT)


@dataclass
class Outcome:
    kind: str  # ok | pin_incorrect | pin_locked | error
    pin_state: PinState | None = None
    error: CertHelperError | None = None
    detail: str = ""
    #: the key as re-read after the attempt (its exact tries, its default-PIN flag)
    info: TokenInfo | None = None

    @property
    def retries_left(self) -> int | None:
        return self.info.pin_retries_left if self.info is not None else None


def outcome_message(outcome: Outcome) -> tuple[str, str]:
    """(text, style) for an outcome."""
    if outcome.kind == "ok":
        return "✔ 密码修改成功 (PIN changed)。请牢记新密码 (remember the new PIN).", "Ok.TLabel"
    if outcome.kind == "pin_incorrect":
        text = "当前密码错误，请重新输入。(The current PIN is incorrect.)"
        info = outcome.info
        tries = pin_tries_text(info.pin_retries_left, info.pin_max_retries) if info else ""
        if tries:
            text += "\n" + tries
        if outcome.pin_state is PinState.FINAL_TRY:
            return (
                text + "\n仅剩最后一次机会，再输错将锁定 USB Key！"
                "\n(Last try: another wrong PIN locks the key.)",
                "FinalTry.TLabel",
            )
        if outcome.pin_state is PinState.COUNT_LOW:
            return (
                text + "\n密码已输错多次，剩余次数不多，请仔细核对。"
                "\n(Several wrong PINs: a few more will lock the key.)",
                "Danger.TLabel",
            )
        return text, "Danger.TLabel"
    if outcome.kind == "pin_locked":
        return LOCKED_HELP, "Danger.TLabel"
    err = outcome.error
    if isinstance(err, PinLenRange):
        text = "新密码长度不符合该 USB Key 的要求 (the key refused the new PIN's length)。"
    elif isinstance(err, PinInvalid):
        text = "该 USB Key 不接受新密码中的字符 (the key refused the new PIN's characters)。"
    elif isinstance(err, TokenAbsent):
        text = "未检测到 USB Key，可能已被拔出 (the USB key was removed)。"
    elif err is not None:
        text = f"修改失败 (failed): {err.message()}"
    else:
        text = f"修改失败 (failed): 内部错误 (internal error) {outcome.detail}"
    return text + "\n密码未修改 (the PIN was not changed).", "Danger.TLabel"


def change_pin(driver: TokenDriver, info: TokenInfo, old: Pin, new: Pin) -> Outcome:
    """C_SetPIN, once (after re-reading the flags: a locked key is never tried)."""
    try:
        operations.apply_change(driver, info, old, new)
        return Outcome("ok", info=info_now(driver, info))
    except PinIncorrect:
        now = info_now(driver, info)
        return Outcome("pin_incorrect", pin_state=now.pin_state if now else None, info=now)
    except PinLocked:
        return Outcome("pin_locked", pin_state=PinState.LOCKED, info=info_now(driver, info))
    except CertHelperError as exc:
        now = info_now(driver, info)
        return Outcome("error", error=exc, pin_state=now.pin_state if now else None, info=now)
    except Exception as exc:  # a driver bug must not leave the window hanging
        log.error("PIN change failed: %s", type(exc).__name__)
        return Outcome("error", detail=type(exc).__name__)


def info_now(driver: TokenDriver, info: TokenInfo) -> TokenInfo | None:
    """The key re-read after an attempt: its PIN state and, where the family tells
    them, the exact tries left (SKF). None when it cannot be read."""
    try:
        return with_test_state(driver.token_info(info.serial))
    except CertHelperError:
        return None
