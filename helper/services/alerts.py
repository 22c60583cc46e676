"""Expiry alerts: which certificates to warn about now, each threshold once.

The daemon checks at start, when a key is inserted and every
:attr:`AlertScheduler.CHECK_INTERVAL`; it shows what :meth:`AlertScheduler.check`
returns (a tray notification, else a ``helper.ui.notice`` window) and sends the
pages their ``certificate.expiring`` events.

Daemon use::

    scheduler = AlertScheduler(default_state_path())       # clock=... in tests
    alerts = scheduler.check(entries)                      # every CertEntry on every key
    if alerts:
        title, message = notification_text(alerts)         # a tray notification, or
        await show_notice(expiry_request(alerts, renewal_url))   # helper.ui.notice
    scheduler.forget_missing({e.model.sha256 for e in entries if e.model})

(``due`` then ``mark`` instead of ``check`` when an alert should count as
announced only once it was shown.)

Thresholds, least to most severe: ``"30"`` (30 days or fewer left), ``"7"``,
``"1"`` (a day or less, including the last hours) and ``"expired"`` (the clock
is at or past notAfter). Days left come from :func:`helper.domain.expiry.days_left`
with the injected clock.

Each (certificate SHA-256, threshold) is announced once. Only the most severe
threshold a certificate has crossed is announced: a certificate first seen with
5 days left gets ``"7"``, never also ``"30"``; and once a threshold is announced,
nothing less severe is announced again for that certificate (a clock set back
does not repeat ``"30"`` after ``"7"``). A renewed certificate has a new SHA-256
and starts fresh.

Only certificates the person can use are considered: parseable, with a private
key on the key. A certificate is also skipped when the same key holds a newer
certificate (a later notAfter) for the same subject with a private key: the old
one was renewed and left on the key, and "please renew" would be wrong.

The state file (``<data dir>/alerts.json``) is JSON, user-only (0600), written
atomically (temp file in the same folder, then rename)::

    {"version": 1,
     "certificates": {"<sha256>": {"announced": ["30", "7"],
                                   "last_seen": "2026-11-24T08:00:00Z"}}}

A missing, corrupt or unreadable file is an empty state (the next write
replaces it); a file that cannot be written is logged and the announcements
are still remembered for the life of the scheduler. Nothing here raises for
state trouble.

:meth:`AlertScheduler.forget_missing` keeps the file small: a certificate not
seen on any key for :data:`FORGET_AFTER` (400 days: longer than the usual
one-year validity, so a key that comes back after a long absence does not
repeat its alerts) is dropped from it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from helper.config import data_dir
from helper.domain.expiry import days_left, system_clock
from helper.services.tokens import CertEntry

__all__ = [
    "FORGET_AFTER",
    "STATE_FILE",
    "THRESHOLDS",
    "Alert",
    "AlertScheduler",
    "Threshold",
    "default_state_path",
    "notification_text",
    "threshold_for",
    "unique_alerts",
]

log = logging.getLogger(__name__)

Threshold = Literal["30", "7", "1", "expired"]
#: least to most severe
THRESHOLDS: tuple[Threshold, ...] = ("30", "7", "1", "expired")
_RANK = {t: i for i, t in enumerate(THRESHOLDS)}
#: (threshold, the most days left at which it applies), most severe first
_LIMITS: tuple[tuple[Threshold, int], ...] = (("1", 1), ("7", 7), ("30", 30))

STATE_FILE = "alerts.json"
STATE_VERSION = 1
#: a certificate absent this long is forgotten by forget_missing
FORGET_AFTER = timedelta(days=400)
#: a state file larger than this is not read (it is ours, and small)
_MAX_STATE_BYTES = 1 << 20


def default_state_path() -> Path:
    return data_dir() / STATE_FILE


def threshold_for(not_after: datetime, now: datetime) -> Threshold | None:
    """The most severe threshold crossed at ``now``, or None (more than 30 days left)."""
    if now >= not_after:
        return "expired"
    left = days_left(not_after, now)
    for threshold, most in _LIMITS:
        if left <= most:
            return threshold
    return None


def _local_date(value: datetime) -> str:
    """The calendar date as the person's clock shows it."""
    return value.astimezone().strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Alert:
    sha256: str
    subject_cn: str
    token_label: str
    not_after: datetime
    days_left: int
    threshold: Threshold

    # --- text: Chinese first, English beside -----------------------------------

    def title_zh(self) -> str:
        if self.threshold == "expired":
            return "证书已过期"
        return f"证书 {self.threshold} 天内到期"

    def title_en(self) -> str:
        if self.threshold == "expired":
            return "certificate has expired"
        if self.threshold == "1":
            return "certificate expires within 1 day"
        return f"certificate expires within {self.threshold} days"

    def title(self) -> str:
        return f"{self.title_zh()} ({self.title_en()})"

    def _name(self) -> str:
        return self.subject_cn or "未命名证书"

    def message_zh(self) -> str:
        date = _local_date(self.not_after)
        name = self._name()
        if self.threshold == "expired":
            return f"「{name}」的证书已于 {date} 过期，无法再用于登录和签名。请尽快办理证书延期。"
        if self.days_left < 1:
            return f"「{name}」的证书将于 {date} 到期，剩余不足 1 天。请立即办理证书延期。"
        return f"「{name}」的证书将于 {date} 到期，剩余 {self.days_left} 天。请及时办理证书延期。"

    def message_en(self) -> str:
        date = _local_date(self.not_after)
        name = self.subject_cn or "an unnamed certificate"
        if self.threshold == "expired":
            return (
                f"The certificate of {name} expired on {date} and can no longer be used "
                "to log in or sign. Please renew it."
            )
        if self.days_left < 1:
            return (
                f"The certificate of {name} expires on {date}, in less than a day. "
                "Please renew it now."
            )
        days = "1 day" if self.days_left == 1 else f"{self.days_left} days"
        return f"The certificate of {name} expires on {date}, in {days}. Please renew it in time."

    def message(self) -> str:
        return f"{self.message_zh()} ({self.message_en()})"

    def days_text(self) -> str:
        """Short: 剩余 4 天 / 剩余不足 1 天 / 已过期 10 天."""
        if self.threshold == "expired":
            over = -self.days_left
            return f"已过期 {over} 天" if over >= 1 else "已过期"
        if self.days_left < 1:
            return "剩余不足 1 天"
        return f"剩余 {self.days_left} 天"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what a ``helper.ui.notice`` expiry request carries per alert."""
        return {
            "sha256": self.sha256,
            "subject_cn": self.subject_cn,
            "token_label": self.token_label,
            "not_after": self.not_after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "date": _local_date(self.not_after),
            "days_left": self.days_left,
            "threshold": self.threshold,
            "title": self.title(),
            "title_zh": self.title_zh(),
            "title_en": self.title_en(),
            "message": self.message(),
            "message_zh": self.message_zh(),
            "message_en": self.message_en(),
            "days_text": self.days_text(),
        }


def _severity(alert: Alert) -> tuple[int, int]:
    return (-_RANK[alert.threshold], alert.days_left)


def unique_alerts(alerts: Iterable[Alert]) -> list[Alert]:
    """For display: one alert per (key, subject, threshold, expiry date), most severe
    first. A HEBCA key holds a signing and an encryption certificate for the same
    holder that expire together; the person needs to read about them once."""
    seen: set[tuple[str, str, str, str]] = set()
    out = []
    for a in sorted(alerts, key=_severity):
        key = (a.token_label, a.subject_cn, a.threshold, _local_date(a.not_after))
        if key not in seen:
            seen.add(key)
            out.append(a)
    return out


def notification_text(alerts: Iterable[Alert]) -> tuple[str, str]:
    """(title, message) for one tray notification about ``alerts`` (at least one)."""
    shown = unique_alerts(alerts)
    if not shown:
        raise ValueError("no alerts")
    if len(shown) == 1:
        return shown[0].title(), shown[0].message()
    first = shown[0]
    n = len(shown)
    title = f"{n} 张证书需要延期 ({n} certificates need renewal)"
    return title, f"{first.message()} 另有 {n - 1} 张证书即将到期或已过期。"


class AlertScheduler:
    """Decides which expiry alerts are due and remembers which were announced."""

    CHECK_INTERVAL = timedelta(hours=6)

    def __init__(self, state_path: Path, clock: Callable[[], datetime] = system_clock) -> None:
        self.state_path = Path(state_path)
        self.clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, dict[str, Any]] = self._load()

    # --- decisions ---------------------------------------------------------------

    def due(self, entries: Iterable[CertEntry]) -> list[Alert]:
        """The alerts to show now, most severe first; records nothing."""
        now = self.clock()
        usable = [e for e in entries if e.in_use]
        out: list[Alert] = []
        done: set[str] = set()
        for e in usable:
            m = e.model
            assert m is not None
            if m.sha256 in done or _superseded(e, usable):
                continue
            done.add(m.sha256)
            threshold = threshold_for(m.not_after, now)
            if threshold is None:
                continue
            with self._lock:
                announced = self._announced(m.sha256)
            if announced and max(_RANK[t] for t in announced if t in _RANK) >= _RANK[threshold]:
                continue
            out.append(
                Alert(
                    sha256=m.sha256,
                    subject_cn=m.subject_cn,
                    token_label=e.token.label,
                    not_after=m.not_after,
                    days_left=days_left(m.not_after, now),
                    threshold=threshold,
                )
            )
        return sorted(out, key=_severity)

    def mark(self, alerts: Iterable[Alert]) -> None:
        """Remember ``alerts`` as announced (and write the state file)."""
        alerts = list(alerts)
        if not alerts:
            return
        stamp = _iso(self.clock())
        with self._lock:
            for a in alerts:
                entry = self._state.setdefault(a.sha256, {"announced": []})
                announced = self._announced(a.sha256)
                if a.threshold not in announced:
                    announced.append(a.threshold)
                entry["announced"] = sorted(announced, key=_RANK.__getitem__)
                entry["last_seen"] = stamp
            self._save()

    def check(self, entries: Iterable[CertEntry]) -> list[Alert]:
        """The alerts due now, marked as announced: the caller must show them."""
        alerts = self.due(entries)
        self.mark(alerts)
        return alerts

    def forget_missing(self, present_sha256s: set[str]) -> None:
        """Note the certificates seen now; drop those not seen for :data:`FORGET_AFTER`.

        Call it with the SHA-256 of every certificate on every inserted key (the
        daemon does after each check). ``last_seen`` is refreshed at most once a
        day, so this rarely writes.
        """
        now = self.clock()
        changed = False
        with self._lock:
            for sha, entry in list(self._state.items()):
                seen = _parse_time(entry.get("last_seen"))
                if sha in present_sha256s:
                    if seen is None or now - seen >= timedelta(days=1):
                        entry["last_seen"] = _iso(now)
                        changed = True
                elif seen is None or now - seen > FORGET_AFTER:
                    del self._state[sha]
                    changed = True
            if changed:
                self._save()

    def reset(self, *sha256s: str) -> None:
        """Forget what was announced for these certificates (after a renewal)."""
        with self._lock:
            dropped = [self._state.pop(sha, None) for sha in sha256s]
            if any(d is not None for d in dropped):
                self._save()

    def announced(self, sha256: str) -> tuple[str, ...]:
        """The thresholds announced for a certificate, least severe first."""
        with self._lock:
            return tuple(self._announced(sha256))

    # --- state file ----------------------------------------------------------------

    def _announced(self, sha256: str) -> list[str]:
        entry = self._state.get(sha256)
        if not entry:
            return []
        return [t for t in entry.get("announced", []) if t in _RANK]

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            if self.state_path.stat().st_size > _MAX_STATE_BYTES:
                raise ValueError("too large")
            raw = json.loads(self.state_path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
            log.warning("expiry alert state %s unreadable (%s); starting empty",
                        self.state_path, type(exc).__name__)  # fmt: skip
            return {}
        certs = raw.get("certificates") if isinstance(raw, dict) else None
        if not isinstance(certs, dict):
            log.warning("expiry alert state %s is not ours; starting empty", self.state_path)
            return {}
        state: dict[str, dict[str, Any]] = {}
        for sha, entry in certs.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("announced"), list):
                continue
            announced = [t for t in entry["announced"] if isinstance(t, str) and t in _RANK]
            clean: dict[str, Any] = {"announced": announced}
            if isinstance(entry.get("last_seen"), str):
                clean["last_seen"] = entry["last_seen"]
            state[str(sha)] = clean
        return state

    def _save(self) -> None:
        data = {"version": STATE_VERSION, "certificates": self._state}
        folder = self.state_path.parent
        tmp: str | None = None
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=".alerts-", suffix=".tmp", dir=folder)  # 0600
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, ensure_ascii=False, indent=2, sort_keys=True)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)  # mkstemp already does; say it where it matters
            os.replace(tmp, self.state_path)
            tmp = None
        except OSError as exc:
            log.warning("cannot write expiry alert state %s: %s", self.state_path, exc.strerror)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def _superseded(entry: CertEntry, usable: list[CertEntry]) -> bool:
    """Another usable certificate on the same key, same subject, expiring later."""
    m = entry.model
    assert m is not None
    return any(
        o.model is not None
        and o.token.serial == entry.token.serial
        and o.token.module_path == entry.token.module_path
        and o.model.subject_dn == m.subject_dn
        and o.model.not_after > m.not_after
        for o in usable
    )


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
