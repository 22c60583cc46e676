"""Connections before they become requests: caps, deadlines, and eviction
(security.md, requirement 14; the hardening issue's finding 4).

Every accepted socket is counted from the moment it is accepted, TLS or not
(TLS is started here, with its own handshake deadline, so a silent TLS client is
counted too). A connection is *pending* until it has sent one complete request
head within ``header_timeout``; only then is it handed over for good. When the
pending connections reach ``max_pending``, the oldest pending one is dropped to
make room: a flood of slow clients keeps evicting itself while a real page, which
sends its request at once, gets through. ``max_connections`` bounds everything on
one port; at that bound a new connection is refused unless a pending one can be
dropped. Later requests on a kept-alive connection get the same header deadline;
after a WebSocket upgrade the socket's own heartbeat and idle timeout apply.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

_HEAD_END = b"\r\n\r\n"
_MAX_HEAD = 16 * 1024  # aiohttp refuses longer heads itself; we only look for the end


@dataclass(frozen=True)
class ConnectionLimits:
    #: connections one listening port holds at once (all loopback addresses together)
    max_connections: int = 1024
    #: connections that have not sent a complete request head yet
    max_pending: int = 256
    #: seconds a request head may take to arrive
    header_timeout: float = 10.0
    #: seconds a TLS handshake may take
    tls_handshake_timeout: float = 10.0


@dataclass
class GuardStats:
    accepted: int = 0
    refused: int = 0  # at max_connections with nothing to evict
    evicted: int = 0  # pending ones dropped to make room
    too_slow: int = 0  # head or TLS handshake not in time
    open: int = 0
    pending: int = 0
    peak_open: int = 0
    peak_pending: int = 0


class Guard:
    """The connections of one listening port."""

    def __init__(
        self,
        factory: Callable[[], asyncio.Protocol],
        limits: ConnectionLimits,
        ssl_ctx: ssl.SSLContext | None,
    ) -> None:
        self.factory = factory
        self.limits = limits
        self.ssl_ctx = ssl_ctx
        self.stats = GuardStats()
        self._open: dict[GuardedConnection, None] = {}  # insertion order: oldest first
        self._pending: dict[GuardedConnection, None] = {}

    def protocol(self) -> GuardedConnection:
        return GuardedConnection(self)

    # --- bookkeeping (on the loop) ----------------------------------------------------

    def admit(self, conn: GuardedConnection) -> bool:
        self.stats.accepted += 1
        if len(self._pending) >= self.limits.max_pending:
            self._evict_oldest_pending()
        if len(self._open) >= self.limits.max_connections and not self._evict_oldest_pending():
            self.stats.refused += 1
            return False
        self._open[conn] = None
        self._pending[conn] = None
        self._count()
        return True

    def verified(self, conn: GuardedConnection) -> None:
        self._pending.pop(conn, None)
        self._count()

    def pending_again(self, conn: GuardedConnection) -> None:
        """A kept-alive connection starts its next request: a head is awaited again."""
        if conn in self._open:
            self._pending[conn] = None
            self._count()

    def gone(self, conn: GuardedConnection) -> None:
        self._open.pop(conn, None)
        self._pending.pop(conn, None)
        self._count()

    def _evict_oldest_pending(self) -> bool:
        for conn in self._pending:
            self.stats.evicted += 1
            conn.drop()
            return True
        return False

    def _count(self) -> None:
        s = self.stats
        s.open, s.pending = len(self._open), len(self._pending)
        s.peak_open, s.peak_pending = max(s.peak_open, s.open), max(s.peak_pending, s.pending)


class GuardedConnection(asyncio.Protocol):
    """One socket: counted from accept, TLS started here, the request head watched,
    then everything passed to aiohttp's protocol."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.inner: Any = None  # aiohttp's RequestHandler, once the transport is ready
        self.raw: asyncio.Transport | None = None
        self._state = "head"  # head | body | idle | upgraded | closed
        self._head = bytearray()
        self._body_left = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._tls_task: asyncio.Task[None] | None = None
        #: decrypted bytes that arrive before start_tls() has returned to us
        self._early: list[bytes] = []

    # --- the raw socket ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.raw is not None:  # start_tls hands us the TLS transport: ignore
            return
        assert isinstance(transport, asyncio.Transport)
        self.raw = transport
        if not self.guard.admit(self):
            transport.abort()
            self._state = "closed"
            return
        loop = asyncio.get_running_loop()
        self._arm(loop)
        if self.guard.ssl_ctx is None:
            self._attach(transport)
        else:
            self._tls_task = loop.create_task(self._start_tls(transport))

    async def _start_tls(self, raw: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        assert self.guard.ssl_ctx is not None
        try:
            tls = await loop.start_tls(
                raw,
                self,
                self.guard.ssl_ctx,
                server_side=True,
                ssl_handshake_timeout=self.guard.limits.tls_handshake_timeout,
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError, RuntimeError) as exc:
            if isinstance(exc, TimeoutError):
                self.guard.stats.too_slow += 1
            log.debug("TLS handshake failed: %s", type(exc).__name__)
            raw.abort()
            self._closed()
            return
        except asyncio.CancelledError:
            raw.abort()
            self._closed()
            raise
        if tls is None or self._state == "closed":
            raw.abort()
            self._closed()
            return
        self._attach(tls)

    def _attach(self, transport: asyncio.Transport) -> None:
        self.inner = self.guard.factory()
        self.inner.connection_made(transport)
        early, self._early = self._early, []
        for data in early:
            self.data_received(data)

    # --- data -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._state == "closed":
            return
        if self.inner is None:  # the TLS handshake finished, start_tls() not returned yet
            self._early.append(data)
            if sum(map(len, self._early)) > _MAX_HEAD * 4:
                self.drop()
            return
        if self._state != "upgraded":
            self._watch(data)
        self.inner.data_received(data)

    def _watch(self, data: bytes) -> None:
        """Follow request heads and bodies just enough to time the heads."""
        view = memoryview(data)
        while view and self._state not in ("upgraded", "closed"):
            if self._state == "idle":
                self._state = "head"
                self.guard.pending_again(self)
                self._arm(asyncio.get_running_loop())
            if self._state == "body":
                step = min(self._body_left, len(view))
                self._body_left -= step
                view = view[step:]
                if self._body_left == 0:
                    self._state = "idle"
                continue
            # head: look for its end (it may straddle packets)
            keep = len(self._head)
            self._head += view[: _MAX_HEAD - keep] if keep < _MAX_HEAD else b""
            end = bytes(self._head).find(_HEAD_END)
            if end < 0:
                return  # aiohttp answers an over-long head itself
            used = end + len(_HEAD_END) - keep
            head = bytes(self._head[: end + len(_HEAD_END)]).lower()
            self._head.clear()
            view = view[used:]
            self._disarm()
            self.guard.verified(self)
            if b"\nupgrade:" in head and b"websocket" in head:
                self._state = "upgraded"
                return
            self._body_left = _content_length(head)
            self._state = "body" if self._body_left else "idle"

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed()
        if self.inner is not None:
            inner, self.inner = self.inner, None
            inner.connection_lost(exc)

    # --- deadlines and dropping -------------------------------------------------------

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        self._disarm()
        self._deadline = loop.call_later(self.guard.limits.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self.guard.stats.too_slow += 1
        self.drop()

    def drop(self) -> None:
        """Close at once (a slow or surplus client gets no goodbye)."""
        raw = self.raw
        self._closed()
        if self._tls_task is not None and not self._tls_task.done():
            self._tls_task.cancel()
        if raw is not None:
            raw.abort()

    def _closed(self) -> None:
        if self._state != "closed":
            self._state = "closed"
            self._disarm()
        self.guard.gone(self)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip() == b"content-length":
            try:
                return max(int(value.strip()), 0)
            except ValueError:
                return 0
    return 0


@dataclass
class GuardedSites:
    """The listening servers of one port and their guard."""

    guard: Guard
    servers: list[asyncio.Server] = field(default_factory=list)

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()
