"""The daemon's end of the extension transport.

The native host (``certhelper native-host``, started by the browser) sends the
control command ``{"cmd": "extension", "origin": O, "protocol": P}`` and the
connection becomes a stream of JSON lines: ``{"frame": text}`` both ways, one
per protocol frame. ``O`` is the origin the *browser* reported to the
extension's service worker (``sender.origin``), never the page's own claim.

The origin goes through :func:`helper.bridge.ws.admit_origin` — the same policy
and consent dialog as the WebSocket transports — and the frames go to the same
protocol handler the WebSocket transport of protocol ``P`` uses (the daemon
wires them in: transports do not import each other).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from drivers.errors import CertHelperError
from helper.bridge.security import MAX_BODY
from helper.bridge.ws import (
    IDLE_SECONDS,
    Connection,
    Hub,
    LineConnection,
    admit_origin,
    error_body,
)
from helper.services.consent import ConsentStore
from helper.services.gate import Gate

log = logging.getLogger(__name__)

PROTOCOLS = ("native", "hebca")


class SocketHandler(Protocol):
    async def opened(self, conn: Connection) -> None: ...
    async def on_text(self, conn: Connection, text: str) -> None: ...


@dataclass(frozen=True)
class ExtensionTransport:
    gate: Gate
    policy: Any
    consent: ConsentStore
    #: protocol name → a fresh per-connection handler (the WebSocket transports' own)
    handlers: dict[str, Callable[[], SocketHandler]]
    #: protocol name → that WebSocket transport's hub: its server events
    #: (token.inserted, token.removed, certificate.expiring) reach extension pages too
    hubs: dict[str, Hub] = field(default_factory=dict)

    async def serve(
        self,
        message: dict[str, Any],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        protocol = str(message.get("protocol"))
        origin_raw = message.get("origin")
        make = self.handlers.get(protocol)
        if make is None or not isinstance(origin_raw, str):
            await _send(writer, {"error": {"code": "bad_request"}})
            return
        try:
            origin = await admit_origin(origin_raw, self.policy, self.gate, self.consent)
        except CertHelperError as exc:
            self.gate.audit_event(origin_raw[:200], f"extension:{protocol}", None, exc.code)
            await _send(writer, {"error": error_body(exc)})
            return
        conn = LineConnection(writer, origin)
        hub = self.hubs.get(protocol)
        if hub is not None:
            hub.connections.add(conn)
        handler = make()
        try:
            await handler.opened(conn)
            await _send(writer, {"opened": origin})
            await self._frames(reader, writer, conn, handler)
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            log.debug("extension stream ended abruptly")
        except TimeoutError:
            log.debug("extension stream idle for %.0f s: closed", IDLE_SECONDS)
        finally:
            if hub is not None:
                hub.connections.discard(conn)
            for task in list(conn.tasks):
                task.cancel()

    async def _frames(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: Connection,
        handler: SocketHandler,
    ) -> None:
        """One ``{"frame": text}`` line at a time, the WebSocket transports' limits:
        a frame over MAX_BODY bytes is refused, IDLE_SECONDS without one ends it."""
        async with asyncio.timeout(IDLE_SECONDS) as idle:
            while True:
                line = await reader.readline()
                if not line:
                    return
                idle.reschedule(asyncio.get_running_loop().time() + IDLE_SECONDS)
                try:
                    frame = json.loads(line)["frame"]
                    if not isinstance(frame, str):
                        raise TypeError
                except (ValueError, KeyError, TypeError):
                    await _send(writer, {"error": {"code": "bad_frame"}})
                    continue
                if len(frame.encode("utf-8")) > MAX_BODY:
                    await _send(writer, {"error": {"code": "frame_too_large"}})
                    continue
                await handler.on_text(conn, frame)


async def _send(writer: asyncio.StreamWriter, payload: dict[str, Any]) -> None:
    writer.write(json.dumps(payload, ensure_ascii=False).encode("utf-8") + b"\n")
    await writer.drain()
