"""Login sessions: which origin holds the login of which token, until when.

A token is logged in for one origin at a time. The session ends on
``auth.logout``, after ``idle_timeout`` seconds without use, when the token is
removed, or when another origin logs in to the same token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoginSession:
    origin: str
    token_serial: str
    module_path: str
    cert_sha256: str
    last_used: float = field(default_factory=time.monotonic)
    #: set by a fresh login, cleared when an existing session is reused
    just_logged_in: bool = False


class SessionTable:
    def __init__(self, idle_timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_timeout = idle_timeout
        self.clock = clock
        self._by_token: dict[str, LoginSession] = {}

    def get(self, token_serial: str, origin: str) -> LoginSession | None:
        s = self._by_token.get(token_serial)
        if s is None or s.origin != origin or self._idle(s):
            return None
        return s

    def for_origin(self, origin: str) -> list[LoginSession]:
        return [s for s in self._by_token.values() if s.origin == origin and not self._idle(s)]

    def start(self, session: LoginSession) -> LoginSession | None:
        """Record a login; returns the session it displaced (another origin's)."""
        old = self._by_token.get(session.token_serial)
        session.last_used = self.clock()
        self._by_token[session.token_serial] = session
        return old if old is not None and old.origin != session.origin else None

    def touch(self, session: LoginSession) -> None:
        session.last_used = self.clock()

    def end(self, token_serial: str) -> LoginSession | None:
        return self._by_token.pop(token_serial, None)

    def expired(self) -> list[LoginSession]:
        return [s for s in self._by_token.values() if self._idle(s)]

    def _idle(self, s: LoginSession) -> bool:
        return self.clock() - s.last_used > self.idle_timeout
