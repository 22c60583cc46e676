"""Words and formats every presentation shares (CLI, windows, tray): Chinese first,
English beside. Pure: no I/O, no toolkit."""

from __future__ import annotations

import base64
import textwrap

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


def to_pem(der: bytes) -> str:
    """A certificate as PEM text (64-character lines)."""
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
