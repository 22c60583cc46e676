"""The native API v1: /v1/ping, /v1/certhelper.js and the /v1/ws WebSocket.

Origin is checked before the WebSocket upgrade (never 101 for a refused
origin). Each message is handled in its own task so a dialog waiting for a
person does not block the connection; replies carry the request's ``id``.
Bad input of any kind gets an error reply and the connection stays up.
"""

from __future__ import annotations

import asyncio
import json
import logging
from importlib import resources
from typing import Any

from aiohttp import WSMsgType, web

from drivers.errors import CertHelperError, register
from helper import __version__
from helper.bridge.origins import Decision, normalize_origin
from helper.bridge.security import MAX_BODY, POLICY_KEY, cors_headers
from helper.errors import ConsentDenied
from helper.services.bridge_service import BadParams, BridgeService, RateLimited
from helper.services.consent import ConsentStore
from helper.services.prompts import ConsentChoice
from helper.services.renewal import RenewalOriginRefused

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAX_IN_FLIGHT = 8
HEARTBEAT = 20.0
IDLE_SECONDS = 600.0
PIN_KEYS = frozenset({"pin", "password", "userpin", "passwd", "pincode", "user_pin"})

SERVICE_KEY: web.AppKey[BridgeService] = web.AppKey("bridge_service", BridgeService)
CONSENT_KEY: web.AppKey[ConsentStore] = web.AppKey("consent_store", ConsentStore)
HUB_KEY: web.AppKey[Hub] = web.AppKey("hub")


@register
class BadRequest(CertHelperError):
    code = "bad_request"
    message_zh = "请求格式错误"
    message_en = "Malformed request"
    exit_code = 2


@register
class UnknownMethod(CertHelperError):
    code = "unknown_method"
    message_zh = "不支持的请求方法"
    message_en = "Unknown method"
    exit_code = 2


@register
class PinNotAccepted(CertHelperError):
    code = "pin_not_accepted"
    message_zh = "网页不能传递密码，请在证书助手的窗口中输入密码"
    message_en = "Pages may not send a PIN; type it into the helper's own dialog"
    exit_code = 2


@register
class OriginDenied(CertHelperError):
    code = "origin_denied"
    message_zh = "该网站无权使用证书助手"
    message_en = "This site may not use the certificate helper"
    exit_code = 3


def error_body(exc: CertHelperError) -> dict[str, str]:
    return {
        "code": exc.code,
        "message": f"{exc.message_zh} ({exc.message_en})",
        "message_zh": exc.message_zh,
        "message_en": exc.message_en,
    }


def carries_pin(value: Any, depth: int = 0) -> bool:
    if depth > 20:
        return True  # absurdly deep: refuse rather than recurse
    if isinstance(value, dict):
        return any(
            (isinstance(k, str) and k.lower() in PIN_KEYS) or carries_pin(v, depth + 1)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return any(carries_pin(v, depth + 1) for v in value)
    return False


class Connection:
    def __init__(self, ws: web.WebSocketResponse, origin: str) -> None:
        self.ws = ws
        self.origin = origin
        self.tasks: set[asyncio.Task[None]] = set()
        self.requests: set[asyncio.Task[None]] = set()  # the in-flight requests, capped
        self._send_lock = asyncio.Lock()

    async def send(self, payload: dict[str, Any]) -> None:
        if self.ws.closed:
            return
        text = json.dumps(payload, ensure_ascii=False)
        async with self._send_lock:
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                log.debug("send to closed socket dropped")


class Hub:
    """The open connections, for server events."""

    def __init__(self) -> None:
        self.connections: set[Connection] = set()

    async def broadcast(self, event: str, data: dict[str, Any]) -> None:
        for conn in list(self.connections):
            await conn.send({"event": event, "data": data})


async def ping(request: web.Request) -> web.Response:
    body = {"app": "certhelper", "version": __version__, "protocol": PROTOCOL_VERSION}
    return web.json_response(body, headers=cors_headers(request))


async def preflight(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=cors_headers(request))


async def client_js(request: web.Request) -> web.Response:
    text = resources.files("helper.bridge").joinpath("static/certhelper.js").read_text("utf-8")
    return web.Response(
        text=text,
        content_type="application/javascript",
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


async def admit(request: web.Request) -> str:
    """The connection's origin, after the policy (and maybe a consent dialog)."""
    origin = normalize_origin(request.headers.get("Origin"))
    decision = request.app[POLICY_KEY].decide(origin)
    if decision is Decision.DENIED or origin is None:
        raise OriginDenied()
    if decision is Decision.ASK:
        choice = await request.app[SERVICE_KEY].ask_connect(origin)
        if choice is ConsentChoice.ALWAYS:
            request.app[CONSENT_KEY].record(origin, "always")
        elif choice is ConsentChoice.DENY:
            request.app[CONSENT_KEY].record(origin, "deny")
            raise ConsentDenied()
    return origin


async def websocket(request: web.Request) -> web.StreamResponse:
    try:
        origin = await admit(request)
    except CertHelperError as exc:
        return web.json_response({"error": error_body(exc)}, status=403)
    ws = web.WebSocketResponse(max_msg_size=MAX_BODY, heartbeat=HEARTBEAT)
    await ws.prepare(request)
    conn = Connection(ws, origin)
    hub = request.app[HUB_KEY]
    hub.connections.add(conn)
    service = request.app[SERVICE_KEY]
    _spawn(conn, _announce_expiring(conn, service))
    try:
        # idle: no message from the page for IDLE_SECONDS (heartbeat pongs don't count)
        async with asyncio.timeout(IDLE_SECONDS) as idle:
            async for msg in ws:
                idle.reschedule(asyncio.get_running_loop().time() + IDLE_SECONDS)
                if not await _on_message(conn, service, msg):
                    break
    except TimeoutError:
        await ws.close(code=1000, message=b"idle")
    finally:
        hub.connections.discard(conn)
        for task in list(conn.tasks):
            task.cancel()
    return ws


async def _on_message(conn: Connection, service: BridgeService, msg: Any) -> bool:
    """Handle one frame; False ends the connection."""
    if msg.type == WSMsgType.TEXT:
        if len(conn.requests) >= MAX_IN_FLIGHT:
            await conn.send({"id": None, "error": error_body(RateLimited())})
            return True
        task = _spawn(conn, _handle(conn, service, msg.data))
        conn.requests.add(task)
        task.add_done_callback(conn.requests.discard)
    elif msg.type == WSMsgType.BINARY:
        await conn.send({"id": None, "error": error_body(BadRequest("binary frame"))})
    elif msg.type == WSMsgType.ERROR:
        return False
    return True


def _spawn(conn: Connection, coro) -> asyncio.Task[None]:  # type: ignore[no-untyped-def]
    task = asyncio.get_running_loop().create_task(coro)
    conn.tasks.add(task)
    task.add_done_callback(conn.tasks.discard)
    return task


async def _announce_expiring(conn: Connection, service: BridgeService) -> None:
    try:
        for data in await service.expiring():
            await conn.send({"event": "certificate.expiring", "data": data})
    except CertHelperError as exc:
        log.debug("expiry announcement skipped: %s", exc.code)


def _parse(text: str) -> tuple[Any, str, dict[str, Any]]:
    try:
        msg = json.loads(text)
    except ValueError:
        raise BadRequest(detail="not JSON") from None
    if not isinstance(msg, dict):
        raise BadRequest(detail="not an object")
    req_id = msg.get("id")
    if (
        isinstance(req_id, bool)
        or not isinstance(req_id, int | str)
        or (isinstance(req_id, str) and len(req_id) > 100)
        or (isinstance(req_id, int) and abs(req_id) > 2**53)
    ):
        raise BadRequest(detail="'id' must be a string or an integer")
    method = msg.get("method")
    if not isinstance(method, str):
        raise BadRequest(detail="'method' must be a string")
    params = msg.get("params", {})
    if not isinstance(params, dict):
        raise BadParams(detail="'params' must be an object")
    return req_id, method, params


async def _handle(conn: Connection, service: BridgeService, text: str) -> None:
    req_id: Any = None
    try:
        try:
            msg = json.loads(text)
            req_id = msg.get("id") if isinstance(msg, dict) else None
        except ValueError:
            pass
        req_id, method, params = _parse(text)
        if carries_pin(params):
            raise PinNotAccepted()
        result = await _dispatch(conn, service, method, params)
        await conn.send({"id": req_id, "result": result})
    except CertHelperError as exc:
        await conn.send({"id": _safe_id(req_id), "error": error_body(exc)})
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unexpected error in %s", conn.origin)
        await conn.send({"id": _safe_id(req_id), "error": error_body(CertHelperError())})


def _safe_id(req_id: Any) -> Any:
    """Echo only ids the protocol allows (so a reply never carries page junk)."""
    if isinstance(req_id, bool) or not isinstance(req_id, int | str):
        return None
    if isinstance(req_id, str) and len(req_id) > 100:
        return None
    if isinstance(req_id, int) and abs(req_id) > 2**53:
        return None
    return req_id


def _opt_str(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is not None and not isinstance(value, str):
        raise BadParams(detail=f"'{name}' must be a string")
    return value


async def _dispatch(
    conn: Connection, service: BridgeService, method: str, params: dict[str, Any]
) -> Any:
    origin = conn.origin
    if method == "certificates.list":
        return {"certificates": await service.list_certificates(origin)}
    if method == "auth.authenticate":
        return await service.authenticate(
            origin, params.get("challenge"), _opt_str(params, "certificate")
        )
    if method == "sign.data":
        fmt = params.get("format", "cms")
        if fmt not in ("raw", "cms"):
            raise BadParams(detail="'format' must be raw or cms")
        return await service.sign_data(
            origin, params.get("data"), fmt, params.get("text"), _opt_str(params, "certificate")
        )
    if method == "auth.logout":
        await service.logout(origin)
        return {"logged_out": True}
    if method.startswith("renewal."):
        return await _renewal(service, origin, method, params)
    raise UnknownMethod(detail=method[:64])


async def _renewal(service: BridgeService, origin: str, method: str, params: dict[str, Any]) -> Any:
    renewal = service.renewal
    if renewal is None:  # no renewal configured: nobody may
        service.audit_event(origin, method[:64], None, RenewalOriginRefused.code)
        raise RenewalOriginRefused()
    if method == "renewal.status":
        return await renewal.status(origin)
    if method == "renewal.request":
        return await renewal.request(
            origin, params.get("certificate"), params.get("new_key", False)
        )
    if method == "renewal.install":
        return await renewal.install(origin, params.get("certificate"), params.get("chain"))
    raise UnknownMethod(detail=method[:64])
