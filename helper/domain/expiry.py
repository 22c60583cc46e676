"""Certificate expiry arithmetic: days left and the warning state shown to the user.

Pure: the current time is always passed in (see :data:`Clock`), never read here,
except by :func:`system_clock`, which callers inject.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum

__all__ = [
    "URGENT_DAYS",
    "WARNING_DAYS",
    "Clock",
    "ExpiryState",
    "days_left",
    "expiry_state",
    "system_clock",
]

#: at or below this many days left the certificate is flagged "warning"
WARNING_DAYS = 30
#: at or below this many days left the certificate is flagged "urgent"
URGENT_DAYS = 7

_ONE_DAY = timedelta(days=1)

Clock = Callable[[], datetime]


class ExpiryState(StrEnum):
    OK = "ok"
    WARNING = "warning"
    URGENT = "urgent"
    EXPIRED = "expired"


def system_clock() -> datetime:
    """The real clock: timezone-aware UTC now."""
    return datetime.now(UTC)


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")


def days_left(not_after: datetime, now: datetime) -> int:
    """Whole days until ``not_after``, rounded down.

    0 during the last 24 hours, -1 during the first 24 hours after expiry.
    """
    _require_aware("not_after", not_after)
    _require_aware("now", now)
    return (not_after - now) // _ONE_DAY


def expiry_state(not_after: datetime, now: datetime) -> ExpiryState:
    left = days_left(not_after, now)
    if now >= not_after:
        return ExpiryState.EXPIRED
    if left <= URGENT_DAYS:
        return ExpiryState.URGENT
    if left <= WARNING_DAYS:
        return ExpiryState.WARNING
    return ExpiryState.OK
