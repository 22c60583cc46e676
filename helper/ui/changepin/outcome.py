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
from helper.services import operations
from helper.ui.changepin.policy import with_test_state

log = logging.getLogger(__name__)

CA_OFFICE = "河北CA沧州办事处：运河区解放西路颐和国际 B 座 602 室，电话 13315703324"
LOCKED_TEXT = (
    "该 USB Key 的密码已锁定，无法修改。\n"
    "请携带 USB Key 和本人有效证件到 CA 办事处解锁。\n"
    "(The PIN is locked and cannot be changed here. "
    "Take the key and your ID to the CA office to unlock it.)"
)


@dataclass
class Outcome:
    kind: str  # ok | pin_incorrect | pin_locked | error
    pin_state: PinState | None = None
    error: CertHelperError | None = None
    detail: str = ""


def outcome_message(outcome: Outcome) -> tuple[str, str]:
    """(text, style) for an outcome."""
    if outcome.kind == "ok":
        return "✔ 密码修改成功 (PIN changed)。请牢记新密码 (remember the new PIN).", "Ok.TLabel"
    if outcome.kind == "pin_incorrect":
        text = "当前密码错误，请重新输入。(The current PIN is incorrect.)"
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
        return "密码已锁定 (The PIN is locked)。" + CA_OFFICE, "Danger.TLabel"
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
        return Outcome("ok")
    except PinIncorrect:
        return Outcome("pin_incorrect", pin_state=state_now(driver, info))
    except PinLocked:
        return Outcome("pin_locked", pin_state=PinState.LOCKED)
    except CertHelperError as exc:
        return Outcome("error", error=exc, pin_state=state_now(driver, info))
    except Exception as exc:  # a driver bug must not leave the window hanging
        log.error("PIN change failed: %s", type(exc).__name__)
        return Outcome("error", detail=type(exc).__name__)


def state_now(driver: TokenDriver, info: TokenInfo) -> PinState | None:
    try:
        return with_test_state(driver.token_info(info.serial)).pin_state
    except CertHelperError:
        return None
