"""Words and formats every presentation shares (CLI, windows, tray): Chinese first,
English beside. Pure: no I/O, no toolkit."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Sequence

from drivers.types import PinState
from helper.domain.expiry import ExpiryState

PIN_STATE_TEXT = {
    PinState.OK: "密码正常 (PIN ok)",
    PinState.COUNT_LOW: "密码已输错多次，剩余次数不多 (PIN tries low)",
    PinState.FINAL_TRY: "密码仅剩最后一次机会 (final PIN try)",
    PinState.LOCKED: "密码已锁定 (PIN locked)",
    PinState.TO_BE_CHANGED: "请修改初始密码 (PIN must be changed)",
}

EXPIRY_TEXT = {
    ExpiryState.OK: "正常 ok",
    ExpiryState.WARNING: "即将到期 expiring",
    ExpiryState.URGENT: "7天内到期 expires within 7 days",
    ExpiryState.EXPIRED: "已过期 expired",
}


def pin_state_text(state: PinState) -> str:
    return PIN_STATE_TEXT[state]


def pin_tries_text(left: int | None, most: int | None) -> str:
    """The exact tries left, where the key tells them (SKF); "" otherwise."""
    if left is None:
        return ""
    if left == 0:
        return "密码已锁定，剩余 0 次 (PIN locked, no tries left)"
    of = f"/{most}" if most else ""
    return f"密码剩余 {left}{of} 次尝试 ({left}{of} PIN tries left)"


def token_state_text(
    state: PinState, left: int | None, most: int | None, is_default: bool | None
) -> str:
    """One line for a key's PIN: its state, the exact tries when known, and a reminder
    when the PIN is still the issuer's initial one."""
    parts = [pin_state_text(state)]
    tries = pin_tries_text(left, most)
    if tries and state is not PinState.LOCKED:
        parts.append(tries)
    if is_default and state is not PinState.LOCKED:  # changing it waits for the unlock
        parts.append("仍是初始密码，请修改 (still the initial PIN: please change it)")
    return "  ".join(parts)


def contact_line(
    name: str, name_en: str, fields: Sequence[tuple[str, str, str]]
) -> tuple[str, str]:
    """One support contact (技术支持) as a Chinese and an English line."""
    zh = "，".join([name] + [f"{f} {v}" for f, _en, v in fields])
    en = ", ".join([name_en] + [f"{en.lower()} {v}" for _f, en, v in fields])
    return zh, en


def pin_locked_help(contact_zh: str, contact_en: str) -> str:
    """What to do about a locked PIN: nothing on this computer; the CA unlocks it."""
    return (
        "密码已锁定，无法再尝试，也不能在本机解锁。"
        "请联系 CA 解锁（需携带 USB Key 和本人有效证件）：\n"
        f"{contact_zh}\n"
        "(The PIN is locked: no more tries, and it cannot be unlocked on this computer. "
        "Call the CA to unlock it; bring the key and your ID: "
        f"{contact_en})"
    )


#: what a certificate is for, as lists show it (the dual-certificate 双证书 halves)
USAGE_TEXT = {"sign": "签名 (signing)", "enc": "加密 (encryption)", "other": "其他 (other)"}

DRIVER_TEXT = {"pkcs11": "PKCS#11", "skf": "国密 SKF (GM/T 0016)"}


def to_pem(der: bytes) -> str:
    """A certificate as PEM text (64-character lines)."""
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def driver_cannot_sign_note(key_type: str) -> str:
    """A certificate whose key the loaded driver cannot sign with (an SM2 key read
    through a PKCS#11 module without SM2)."""
    return (
        f"该 USB Key 驱动不支持 {key_type} 签名，请使用 CA 提供的国密 SKF 驱动 "
        f"(this key's driver cannot make {key_type} signatures; use the CA's SKF library)"
    )


def wrong_pin_text(retries_left: int | None, pin_state: PinState) -> str:
    """What the PIN dialog says when it asks again after a wrong PIN: the exact tries
    where the key tells them (SKF), else what the PKCS#11 flags say."""
    if retries_left is not None:
        return f"密码错误，还可以尝试 {retries_left} 次 (wrong PIN: {retries_left} tries left)"
    if pin_state is PinState.FINAL_TRY:
        return "密码错误，这是最后一次机会，再错将锁定 USB Key (wrong PIN: one try left)"
    if pin_state is PinState.COUNT_LOW:
        return "密码错误，剩余尝试次数不多 (wrong PIN: few tries left)"
    return "密码错误，请重新输入 (wrong PIN: try again)"
