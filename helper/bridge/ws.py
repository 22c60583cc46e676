"""What every WebSocket transport does, whatever it speaks on the wire.

- **Admission before the upgrade** (security.md, req. 3, 4, 7): the Origin is
  normalised and decided by the policy; an origin nobody decided on gets the
  consent dialog; a refused origin gets 403 and never 101.
- **The connection**: a send lock, the tasks it started (cancelled when it
  closes), the hub of open connections for server events.
- **Limits**: message size (``MAX_BODY``, close 1009 beyond), heartbeats, and
  an idle timeout that only the page's own messages reset.

A transport (``helper.bridge.native``, ``helper.bridge.hebca``) supplies what
to do with each text frame; this module does the rest.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import WSMsgType, web

from drivers.errors import CertHelperError, register
from helper.bridge.origins import Decision, normalize_origin
from helper.bridge.security import MAX_BODY, POLICY_KEY
from helper.errors import ConsentDenied
from helper.services.consent import ConsentStore
from helper.services.gate import Gate
from helper.services.prompts import ConsentChoice

log = logging.getLogger(__name__)

HEARTBEAT = 20.0
IDLE_SECONDS = 600.0

GATE_KEY: web.AppKey[Gate] = web.AppKey("gate", Gate)
CONSENT_KEY: web.AppKey[ConsentStore] = web.AppKey("consent_store", ConsentStore)


@register
class OriginDenied(CertHelperError):
    code = "origin_denied"
    message_zh = "该网站无权使用证书助手"
    message_en = "This site may not use the certificate helper"
    exit_code = 3


@register
class NotAnUpgrade(CertHelperError):
    code = "upgrade_required"
    message_zh = "请使用 WebSocket 连接"
    message_en = "A WebSocket upgrade is required"
    exit_code = 2


def error_body(exc: CertHelperError) -> dict[str, str]:
    """An error as both transports' JSON shows it (our fixed texts only)."""
    return {
        "code": exc.code,
        "message": f"{exc.message_zh} ({exc.message_en})",
        "message_zh": exc.message_zh,
        "message_en": exc.message_en,
    }


class Connection:
    """One open WebSocket of one origin."""

    def __init__(self, ws: web.WebSocketResponse, origin: str) -> None:
        self.ws = ws
        self.origin = origin
        self.tasks: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()

    async def send_text(self, text: str) -> None:
        if self.ws.closed:
            return
        async with self._send_lock:
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                log.debug("send to closed socket dropped")

    async def send(self, payload: dict[str, Any]) -> None:
        await self.send_text(json.dumps(payload, ensure_ascii=False))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code=code, message=reason.encode("utf-8"))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task that ends with the connection."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


class LineConnection(Connection):
    """A connection carried as JSON lines on a stream (the extension transport:
    ``{"frame": text}`` per protocol frame), not as a WebSocket."""

    def __init__(self, writer: asyncio.StreamWriter, origin: str) -> None:
        self.writer = writer
        self.origin = origin
        self.tasks = set()
        self._send_lock = asyncio.Lock()

    async def send_text(self, text: str) -> None:
        if self.writer.is_closing():
            return
        line = json.dumps({"frame": text}, ensure_ascii=False).encode("utf-8") + b"\n"
        async with self._send_lock:
            try:
                self.writer.write(line)
                await self.writer.drain()
            except (ConnectionError, RuntimeError):
                log.debug("send to closed stream dropped")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Ends the stream: the native host then closes the page's socket."""
        self.writer.close()


class Hub:
    """The open connections of one transport, for server events."""

    def __init__(self) -> None:
        self.connections: set[Connection] = set()

    async def broadcast(self, event: str, data: dict[str, Any]) -> None:
        for conn in list(self.connections):
            await conn.send({"event": event, "data": data})

    async def close_all(self) -> None:
        for conn in list(self.connections):
            await conn.close(1001, "server shutdown")


HUB_KEY: web.AppKey[Hub] = web.AppKey("hub", Hub)


async def admit(request: web.Request) -> str:
    """The connection's origin, after the policy (and maybe a consent dialog)."""
    app = request.app
    return await admit_origin(
        request.headers.get("Origin"), app[POLICY_KEY], app[GATE_KEY], app[CONSENT_KEY]
    )


async def admit_origin(raw: str | None, policy: Any, gate: Gate, consent: ConsentStore) -> str:
    """The same origin policy for every transport: configured halls pass, unknown
    https origins get the consent dialog, everything else is refused."""
    origin = normalize_origin(raw)
    decision = policy.decide(origin)
    if decision is Decision.DENIED or origin is None:
        raise OriginDenied()
    if decision is Decision.ASK:
        choice = await gate.ask_connect(origin)
        if choice is ConsentChoice.ALWAYS:
            consent.record(origin, "always")
        elif choice is ConsentChoice.DENY:
            consent.record(origin, "deny")
            raise ConsentDenied()
    return origin


def _refused(exc: CertHelperError, status: int) -> web.Response:
    response = web.json_response({"error": error_body(exc)}, status=status)
    response.force_close()  # a refused client does not keep a connection slot
    return response


TextHandler = Callable[[Connection, str], Awaitable[None]]
BinaryHandler = Callable[[Connection, bytes], Awaitable[None]]
OpenHandler = Callable[[Connection], Awaitable[None]]


async def serve_socket(
    request: web.Request,
    on_text: TextHandler,
    *,
    on_binary: BinaryHandler | None = None,
    on_open: OpenHandler | None = None,
) -> web.StreamResponse:
    """Admit, upgrade, and run one connection until it closes or idles out."""
    # aiohttp closes a message of max_msg_size bytes or more: +1 lets exactly 64 KiB in
    ws = web.WebSocketResponse(max_msg_size=MAX_BODY + 1, heartbeat=HEARTBEAT)
    if not ws.can_prepare(request).ok:
        # not a WebSocket upgrade: no admission, no consent dialog (GET has no side effects)
        return _refused(NotAnUpgrade(), 426)
    try:
        origin = await admit(request)
    except CertHelperError as exc:
        return _refused(exc, 403)
    await ws.prepare(request)
    conn = Connection(ws, origin)
    hub = request.app[HUB_KEY]
    hub.connections.add(conn)
    try:
        if on_open is not None:
            await on_open(conn)
        # idle: no message from the page for IDLE_SECONDS (heartbeat pongs don't count)
        async with asyncio.timeout(IDLE_SECONDS) as idle:
            async for msg in ws:
                idle.reschedule(asyncio.get_running_loop().time() + IDLE_SECONDS)
                if msg.type == WSMsgType.TEXT:
                    await on_text(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    if on_binary is not None:
                        await on_binary(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
    except TimeoutError:
        await ws.close(code=1000, message=b"idle")
    finally:
        hub.connections.discard(conn)
        for task in list(conn.tasks):
            task.cancel()
    return ws


def add_socket_app_keys(
    app: web.Application, gate: Gate, consent: ConsentStore, policy: Any
) -> None:
    """What :func:`serve_socket` needs on an app: gate, consent store, policy, hub."""
    app[GATE_KEY] = gate
    app[CONSENT_KEY] = consent
    app[POLICY_KEY] = policy
    app[HUB_KEY] = Hub()

    async def close_sockets(app: web.Application) -> None:
        await app[HUB_KEY].close_all()

    app.on_shutdown.append(close_sockets)
