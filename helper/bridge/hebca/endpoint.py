"""The aiohttp app behind ws://localhost:17212/test.

Host and Origin are checked before the upgrade exactly as for the native API
(the shared plumbing in :mod:`helper.bridge.ws`). Frames are handled one at a
time, in order, one reply each; nothing is ever pushed unasked.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from drivers.errors import CertHelperError
from helper.bridge.alive import add_alive_route
from helper.bridge.hebca.connection import HebcaConnection, HebcaRefused, error_payload
from helper.bridge.hebca.framing import (
    HANDSHAKE_REPLY,
    UnreadableParams,
    encode_reply,
    is_handshake,
    parse_params,
    split_frame,
)
from helper.bridge.hebca.refused import dispatch
from helper.bridge.hebca.settings import HebcaSettings
from helper.bridge.origins import OriginPolicy
from helper.bridge.security import MAX_BODY, host_guard
from helper.bridge.ws import GATE_KEY, Connection, add_socket_app_keys, serve_socket
from helper.errors import BadParams
from helper.services.consent import ConsentStore
from helper.services.gate import Gate
from helper.services.renewal import RenewalService

log = logging.getLogger(__name__)

HEBCA_KEY: web.AppKey[HebcaSettings] = web.AppKey("hebca_settings", HebcaSettings)
RENEWAL_KEY: web.AppKey[RenewalService | None] = web.AppKey("hebca_renewal")
MAX_FUNCTION_NAME = 64


def create_hebca_app(
    gate: Gate,
    policy: OriginPolicy,
    consent: ConsentStore,
    settings: HebcaSettings,
    *,
    renewal: RenewalService | None = None,
) -> web.Application:
    app = web.Application(middlewares=[host_guard], client_max_size=MAX_BODY)
    add_socket_app_keys(app, gate, consent, policy)
    app[HEBCA_KEY] = settings
    app[RENEWAL_KEY] = renewal
    app.router.add_get("/test", websocket)
    add_alive_route(app)
    return app


class HebcaSocket:
    """One /test connection: its protocol state, created when it opens."""

    def __init__(self, settings: HebcaSettings, gate: Gate, renewal: RenewalService | None):
        self.settings, self.gate, self.renewal = settings, gate, renewal
        self.state: HebcaConnection | None = None

    async def opened(self, conn: Connection) -> None:
        options = self.settings.options(conn.origin)
        self.state = HebcaConnection(conn.origin, options, self.settings, self.gate, self.renewal)

    async def on_text(self, conn: Connection, text: str) -> None:
        assert self.state is not None
        reply = await handle_frame(self.state, text)
        if reply is not None:
            await conn.send_text(reply)


async def websocket(request: web.Request) -> web.StreamResponse:
    app = request.app
    handler = HebcaSocket(app[HEBCA_KEY], app[GATE_KEY], app[RENEWAL_KEY])
    # binary frames: the client never sends them; ignored, no reply
    return await serve_socket(request, handler.on_text, on_open=handler.opened)


async def handle_frame(conn: HebcaConnection, text: str) -> str | None:
    """The reply to one frame (None for a frame that is not a request)."""
    frame = split_frame(text)
    if is_handshake(frame):
        return HANDSHAKE_REPLY
    function = frame.function
    if not function or len(function) > MAX_FUNCTION_NAME or not function.isascii():
        conn.gate.audit_event(conn.origin, "hebca:invalid", None, "hebca_refused")
        return encode_reply(function[:MAX_FUNCTION_NAME], error_payload(HebcaRefused()))
    function_label = function if function.isidentifier() else "invalid"
    conn.used = None
    outcome = "ok"
    payload: dict[str, Any]
    try:
        try:
            params = parse_params(function, frame.raw_param)
        except UnreadableParams:
            raise BadParams(detail="unreadable parameter") from None
        payload = await dispatch(conn, function, params)
    except CertHelperError as exc:
        outcome = exc.code
        payload = error_payload(exc)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("HEBCA %s failed", function_label)
        outcome = "internal_error"
        payload = error_payload(CertHelperError())
    conn.gate.audit_event(conn.origin, f"hebca:{function_label}", conn.used, outcome)
    return encode_reply(function, payload)
