"""Renewal rules that need no token: the renewal window, the label an archived
certificate is kept under, and the validity a renewed certificate gets.

Pure: the current time is always passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

#: the default window: from 90 days before expiry to 365 days after it
WINDOW_BEFORE_DAYS = 90
WINDOW_AFTER_DAYS = 365
#: a renewed certificate runs one year from the old expiry (or from now, once expired)
RENEWAL_DAYS = 365

_ARCHIVED = re.compile(r"^archived-\d{8}:")


@dataclass(frozen=True)
class RenewalWindow:
    before_days: int = WINDOW_BEFORE_DAYS
    after_days: int = WINDOW_AFTER_DAYS

    def start(self, not_after: datetime) -> datetime:
        return not_after - timedelta(days=self.before_days)

    def end(self, not_after: datetime) -> datetime:
        return not_after + timedelta(days=self.after_days)

    def contains(self, not_after: datetime, now: datetime) -> bool:
        return self.start(not_after) <= now <= self.end(not_after)


def archive_label(label: str, now: datetime) -> str:
    """The label an old certificate keeps after its renewal (``archived-YYYYMMDD:<label>``)."""
    return f"archived-{now:%Y%m%d}:{strip_archive(label)}"


def is_archived(label: str) -> bool:
    return bool(_ARCHIVED.match(label))


def strip_archive(label: str) -> str:
    return _ARCHIVED.sub("", label, count=1)


def renewed_validity(old_not_after: datetime, now: datetime) -> tuple[datetime, datetime]:
    """(not_before, not_after) of a renewal issued ``now``: usable at once, and one
    year counted from the old expiry, so days already paid for are not lost."""
    return now - timedelta(minutes=5), max(old_not_after, now) + timedelta(days=RENEWAL_DAYS)
