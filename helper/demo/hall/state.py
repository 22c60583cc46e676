"""The demo hall's server-side state: sessions, challenges, the logged-in company."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

BASE = "/ish"
COOKIE = "ISH_SESSION"
CHALLENGE_TTL = timedelta(minutes=5)
SESSION_IDLE = timedelta(minutes=30)
MAX_BODY = 64 * 1024
DEFAULT_HEBCA_PORT = 17212  # the HEBCA-compatible endpoint, ws://localhost:17212/test

Clock = Callable[[], datetime]


@dataclass
class Challenge:
    value: str
    issued: datetime
    used: bool = False


@dataclass(frozen=True)
class User:
    company: str
    unique_id: str | None
    serial_hex: str
    not_after: datetime
    issuer: str
    sha256: str
    login_time: datetime


@dataclass
class Session:
    sid: str
    last_seen: datetime
    challenge: Challenge | None = None
    legacy_challenge: Challenge | None = None
    user: User | None = None


class Hall:
    def __init__(
        self,
        trust_anchors: Sequence[bytes],
        intermediates: Sequence[bytes],
        origin: str,
        helper_base: str,
        clock: Clock,
        hebca_port: int = DEFAULT_HEBCA_PORT,
    ) -> None:
        if not trust_anchors:
            raise ValueError("the hall needs at least one trusted CA certificate")
        self.anchors = list(trust_anchors)
        self.intermediates = list(intermediates)
        self.origin = origin
        self.helper_base = helper_base
        self.hebca_port = hebca_port
        self.clock = clock
        self.sessions: dict[str, Session] = {}

    def session(self, request: web.Request) -> Session | None:
        sid = request.cookies.get(COOKIE)
        session = self.sessions.get(sid) if sid else None
        if session is None:
            return None
        now = self.clock()
        if now - session.last_seen > SESSION_IDLE:
            del self.sessions[session.sid]
            return None
        session.last_seen = now
        return session

    def new_session(self) -> Session:
        now = self.clock()
        for sid in [s for s, v in self.sessions.items() if now - v.last_seen > SESSION_IDLE]:
            del self.sessions[sid]
        session = Session(secrets.token_urlsafe(32), now)
        self.sessions[session.sid] = session
        return session

    def set_cookie(self, response: web.StreamResponse, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            session.sid,
            path=f"{BASE}/",
            httponly=True,
            samesite="Lax",
            secure=self.origin.startswith("https://"),
        )


HALL_KEY: web.AppKey[Hall] = web.AppKey("demo_hall", Hall)


def require_user(request: web.Request) -> tuple[Hall, User]:
    hall = request.app[HALL_KEY]
    session = hall.session(request)
    if session is None or session.user is None:
        raise web.HTTPFound(f"{BASE}/")
    return hall, session.user
