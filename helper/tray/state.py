"""What the tray icon shows: normal, attention or no key, and why (pure).

``attention`` when a certificate that has its private key on an inserted key
is expired or expires within 30 days, or when a key still has its initial PIN
(:func:`needs_pin_change`); ``no_key`` when no key is inserted;
else ``normal``. The tooltip names the most pressing reason in Chinese.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from drivers.types import PinState, TokenInfo
from helper.domain.expiry import ExpiryState
from helper.services.tokens import TokenView

APP_NAME = "证书助手"
#: Windows keeps at most 127 characters of a tray tooltip
TOOLTIP_MAX = 127
_NAME_MAX = 24


class Status(StrEnum):
    NORMAL = "normal"
    ATTENTION = "attention"
    NO_KEY = "no_key"


@dataclass(frozen=True)
class TrayState:
    status: Status
    #: why the state is ``attention``, most pressing first (Chinese, one line each)
    reasons: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """One line for a menu's status entry: the first reason, or the state."""
        if self.status is Status.NO_KEY:
            return "未检测到 USB Key"
        if not self.reasons:
            return "一切正常"
        more = len(self.reasons) - 1
        return self.reasons[0] + (f"（另有 {more} 项需要注意）" if more else "")

    @property
    def tooltip(self) -> str:
        text = f"{APP_NAME} — {self.summary}"
        return text if len(text) <= TOOLTIP_MAX else text[: TOOLTIP_MAX - 1] + "…"


NO_KEY = TrayState(Status.NO_KEY)


def _short(name: str) -> str:
    name = " ".join(name.split())
    return name if len(name) <= _NAME_MAX else name[: _NAME_MAX - 1] + "…"


def needs_pin_change(token: TokenInfo, initial_pin: Collection[str] = ()) -> bool:
    """Whether a key still has its initial PIN. A key that says so itself (SKF's
    default-PIN flag, ``pin_is_default`` not None) is taken at its word: nothing is
    guessed and 123456 is never tried. Others (PKCS#11) are judged as before: the
    token reports ``to_be_changed``, or the person's last login through our dialog
    used 123456 (``initial_pin``: those keys' serials)."""
    if token.pin_is_default is not None:
        return token.pin_is_default
    return token.pin_state is PinState.TO_BE_CHANGED or token.serial in initial_pin


def compute_state(
    views: Sequence[TokenView], now: datetime, *, initial_pin: Collection[str] = ()
) -> TrayState:
    """The tray state for the keys in ``views`` at ``now``; ``initial_pin``: the
    serials of keys whose last login through our dialog used the initial PIN."""
    if not views:
        return NO_KEY
    expired: list[str] = []
    pins: list[str] = []
    soon: list[tuple[int, str]] = []
    seen: set[tuple[str, str]] = set()
    for view in views:
        token = view.token
        if needs_pin_change(token, initial_pin):
            pins.append(f"USB Key「{_short(token.label)}」仍在使用初始密码，请修改")
        for entry in view.certificates:
            model = entry.model
            if model is None or not entry.in_use:
                continue  # CA certificates, leftovers and archived ones are not the person's
            if (token.serial, model.sha256) in seen:
                continue
            seen.add((token.serial, model.sha256))
            name = _short(model.subject_cn or entry.obj.label or entry.id)
            state = model.expiry_state(now)
            if state is ExpiryState.EXPIRED:
                expired.append(f"证书「{name}」已过期")
            elif state is not ExpiryState.OK:  # warning (≤ 30 days) or urgent (≤ 7)
                days = model.days_left(now)
                when = "今天到期" if days <= 0 else f"{days} 天后到期"
                soon.append((days, f"证书「{name}」{when}"))
    reasons = tuple(expired + pins + [text for _, text in sorted(soon)])
    return TrayState(Status.ATTENTION if reasons else Status.NORMAL, reasons)
