"""Expiry arithmetic: the day boundaries exactly, and naive datetimes refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from helper.domain.expiry import (
    URGENT_DAYS,
    WARNING_DAYS,
    ExpiryState,
    days_left,
    expiry_state,
    system_clock,
)

NOT_AFTER = datetime(2026, 6, 30, 15, 59, 59, tzinfo=UTC)
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)


def before(delta: timedelta) -> datetime:
    """The moment ``delta`` before expiry."""
    return NOT_AFTER - delta


def test_thresholds():
    assert (WARNING_DAYS, URGENT_DAYS) == (30, 7)
    assert [s.value for s in ExpiryState] == ["ok", "warning", "urgent", "expired"]


@pytest.mark.parametrize(
    ("delta", "days"),
    [
        (365 * DAY, 365),
        (31 * DAY, 31),
        (31 * DAY - SECOND, 30),
        (30 * DAY, 30),
        (DAY, 1),
        (DAY - SECOND, 0),
        (SECOND, 0),
        (timedelta(0), 0),
        (-SECOND, -1),
        (-DAY + SECOND, -1),
        (-DAY, -1),
        (-DAY - SECOND, -2),
        (-10 * DAY, -10),
    ],
)
def test_days_left_floors(delta, days):
    assert days_left(NOT_AFTER, before(delta)) == days


@pytest.mark.parametrize(
    ("delta", "state"),
    [
        (365 * DAY, ExpiryState.OK),
        (31 * DAY, ExpiryState.OK),
        (31 * DAY - SECOND, ExpiryState.WARNING),  # 30 days left
        (30 * DAY, ExpiryState.WARNING),
        (8 * DAY, ExpiryState.WARNING),
        (8 * DAY - SECOND, ExpiryState.URGENT),  # 7 days left
        (7 * DAY, ExpiryState.URGENT),
        (DAY, ExpiryState.URGENT),
        (SECOND, ExpiryState.URGENT),  # the last second
        (timedelta(0), ExpiryState.EXPIRED),  # expired at not_after itself
        (-SECOND, ExpiryState.EXPIRED),
        (-400 * DAY, ExpiryState.EXPIRED),
    ],
)
def test_expiry_state_boundaries(delta, state):
    assert expiry_state(NOT_AFTER, before(delta)) is state


def test_other_time_zones_are_the_same_instant():
    beijing = timezone(timedelta(hours=8))
    now = before(7 * DAY).astimezone(beijing)
    assert days_left(NOT_AFTER, now) == 7
    assert days_left(NOT_AFTER.astimezone(beijing), before(7 * DAY)) == 7
    assert expiry_state(NOT_AFTER, now) is ExpiryState.URGENT


@pytest.mark.parametrize(
    ("not_after", "now"),
    [
        (NOT_AFTER.replace(tzinfo=None), before(DAY)),
        (NOT_AFTER, before(DAY).replace(tzinfo=None)),
        (NOT_AFTER.replace(tzinfo=None), before(DAY).replace(tzinfo=None)),
    ],
)
def test_naive_datetimes_rejected(not_after, now):
    with pytest.raises(ValueError, match="timezone-aware"):
        days_left(not_after, now)
    with pytest.raises(ValueError, match="timezone-aware"):
        expiry_state(not_after, now)


def test_system_clock_is_aware_utc():
    now = system_clock()
    assert now.utcoffset() == timedelta(0)
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)
