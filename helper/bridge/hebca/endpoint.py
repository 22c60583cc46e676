"""The aiohttp app behind ws://localhost:17212/test.

Host and Origin are checked before the upgrade exactly as for the native API
(same middleware, same policy and consent). Frames are handled one at a time,
in order, one reply each; nothing is ever pushed unasked.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import WSMsgType, web

from drivers.errors import CertHelperError
from helper.bridge import api
from helper.bridge.hebca import functions as F
from helper.bridge.hebca.framing import (
    HANDSHAKE_REPLY,
    UnreadableParams,
    encode_reply,
    is_handshake,
    parse_params,
    split_frame,
)
from helper.bridge.hebca.settings import HebcaSettings
from helper.bridge.origins import OriginPolicy
from helper.bridge.security import MAX_BODY, POLICY_KEY, host_guard
from helper.services.bridge_service import BadParams, BridgeService
from helper.services.consent import ConsentStore

log = logging.getLogger(__name__)

HEBCA_KEY: web.AppKey[HebcaSettings] = web.AppKey("hebca_settings", HebcaSettings)
MAX_FUNCTION_NAME = 64


def create_hebca_app(
    service: BridgeService,
    policy: OriginPolicy,
    consent: ConsentStore,
    settings: HebcaSettings,
) -> web.Application:
    app = web.Application(middlewares=[host_guard], client_max_size=MAX_BODY)
    app[api.SERVICE_KEY] = service
    app[POLICY_KEY] = policy
    app[api.CONSENT_KEY] = consent
    app[HEBCA_KEY] = settings
    app[api.HUB_KEY] = api.Hub()
    app.router.add_get("/test", websocket)
    app.on_shutdown.append(_close_all)
    return app


async def websocket(request: web.Request) -> web.StreamResponse:
    try:
        origin = await api.admit(request)
    except CertHelperError as exc:
        return web.json_response({"error": api.error_body(exc)}, status=403)
    settings = request.app[HEBCA_KEY]
    service = request.app[api.SERVICE_KEY]
    ws = web.WebSocketResponse(max_msg_size=MAX_BODY, heartbeat=api.HEARTBEAT)
    await ws.prepare(request)
    conn = F.HebcaConnection(origin, settings.options(origin), settings, service)
    hub = request.app[api.HUB_KEY]
    handle = api.Connection(ws, origin)
    hub.connections.add(handle)
    try:
        async with asyncio.timeout(api.IDLE_SECONDS) as idle:
            async for msg in ws:
                idle.reschedule(asyncio.get_running_loop().time() + api.IDLE_SECONDS)
                if msg.type == WSMsgType.TEXT:
                    reply = await handle_frame(conn, msg.data)
                    if reply is not None:
                        await ws.send_str(reply)
                elif msg.type == WSMsgType.ERROR:
                    break
                # binary frames: the client never sends them; ignored, no reply
    except TimeoutError:
        await ws.close(code=1000, message=b"idle")
    finally:
        hub.connections.discard(handle)
    return ws


async def handle_frame(conn: F.HebcaConnection, text: str) -> str | None:
    """The reply to one frame (None for a frame that is not a request)."""
    frame = split_frame(text)
    if is_handshake(frame):
        return HANDSHAKE_REPLY
    function = frame.function
    if not function or len(function) > MAX_FUNCTION_NAME or not function.isascii():
        function_label = "invalid"
        payload = F.error_payload(F.HebcaRefused())
        conn.service.audit_event(conn.origin, "hebca:invalid", None, "hebca_refused")
        return encode_reply(function[:MAX_FUNCTION_NAME], payload)
    function_label = function if function.isidentifier() else "invalid"
    conn.used = None
    outcome = "ok"
    try:
        try:
            params = parse_params(function, frame.raw_param)
        except UnreadableParams:
            raise BadParams(detail="unreadable parameter") from None
        payload: dict[str, Any] = await F.dispatch(conn, function, params)
    except CertHelperError as exc:
        outcome = exc.code
        payload = F.error_payload(exc)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("HEBCA %s failed", function_label)
        outcome = "internal_error"
        payload = F.error_payload(CertHelperError())
    conn.service.audit_event(conn.origin, f"hebca:{function_label}", conn.used, outcome)
    return encode_reply(function, payload)


async def _close_all(app: web.Application) -> None:
    for conn in list(app[api.HUB_KEY].connections):
        await conn.ws.close(code=1001, message=b"server shutdown")
