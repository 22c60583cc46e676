"""Limits a page cannot talk its way past: how many dialogs an origin may open,
how many it may have refused, how many wrong PINs it may send, and one dialog
at a time for the whole daemon (security.md, requirements 10 and 14)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from drivers.errors import CertHelperError, register
from helper.errors import ConsentDenied
from helper.services.prompts import ConsentChoice

T = TypeVar("T")


@register
class RateLimited(CertHelperError):
    code = "rate_limited"
    message_zh = "请求过于频繁，请稍后再试"
    message_en = "Too many requests; try again later"
    exit_code = 3


@register
class PinAttemptsExceeded(CertHelperError):
    code = "pin_attempts_exceeded"
    message_zh = "密码错误次数过多，请稍后再试，以免锁定 USB Key"
    message_en = "Too many wrong PINs from this site; wait before trying again"
    exit_code = 4


@dataclass(frozen=True)
class GateSettings:
    dialog_timeout: float = 120.0
    #: dialogs one origin may open per minute, whatever the answers
    dialogs_per_minute: int = 30
    #: dialogs one origin may have refused (deny, cancel, timeout) per minute
    refusals_per_minute: int = 3
    pin_failures: int = 3
    pin_failure_window: float = 15 * 60


class SlidingLimit:
    """At most ``count`` events per ``window`` seconds per key."""

    def __init__(self, count: int, window: float) -> None:
        self.count, self.window = count, window
        self._events: dict[str, deque[float]] = defaultdict(deque)

    def _trim(self, key: str, now: float) -> deque[float]:
        q = self._events[key]
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def exceeded(self, key: str) -> bool:
        return len(self._trim(key, time.monotonic())) >= self.count

    def hit(self, key: str) -> None:
        now = time.monotonic()
        self._trim(key, now).append(now)


class DialogGuard:
    """One dialog at a time, daemon-wide; a page whose prompts keep being refused,
    or that opens too many, is told to wait (``rate_limited``) instead of asking.

    A refusal (Deny, a dismissed window, a timeout) also cancels every dialog of the
    same origin still waiting for its turn: the person said no once, the page does
    not get to ask again and again from parallel requests. The limits are checked
    again when a waiting dialog's turn comes, so they hold under parallel requests."""

    def __init__(self, settings: GateSettings) -> None:
        self._lock = asyncio.Lock()
        self._opened = SlidingLimit(settings.dialogs_per_minute, 60.0)
        self._refused = SlidingLimit(settings.refusals_per_minute, 60.0)
        self._refusals: dict[str, int] = {}  # origin -> refusals so far (a generation)

    def _refuse(self, origin: str) -> None:
        self._refused.hit(origin)
        self._refusals[origin] = self._refusals.get(origin, 0) + 1

    async def run(self, origin: str, ask: Callable[[], Awaitable[T]]) -> T:
        if self._opened.exceeded(origin) or self._refused.exceeded(origin):
            raise RateLimited(detail="dialogs")
        self._opened.hit(origin)
        generation = self._refusals.get(origin, 0)
        async with self._lock:
            if self._refusals.get(origin, 0) != generation:
                raise ConsentDenied(detail="refused while waiting")  # never shown
            if self._refused.exceeded(origin):
                raise RateLimited(detail="dialogs")
            try:
                answer = await ask()
            except CertHelperError:  # cancelled, timed out, failed
                self._refuse(origin)
                raise
        if answer is ConsentChoice.DENY:
            self._refuse(origin)
        return answer
