"""The native API's routes: /v1/ping, /v1/certhelper.js and the /v1/ws WebSocket.

Each message is handled in its own task so a dialog waiting for a person does
not block the connection; replies carry the request's ``id``. Bad input of any
kind gets an error reply and the connection stays up.
"""

from __future__ import annotations

import asyncio
import json
import logging
from importlib import resources
from typing import Any

from aiohttp import web

from drivers.errors import CertHelperError, register
from helper import __version__
from helper.bridge.security import cors_headers
from helper.bridge.ws import GATE_KEY, Connection, error_body, serve_socket
from helper.errors import BadParams
from helper.services.limits import RateLimited
from helper.services.renewal import RenewalOriginRefused, RenewalService

from .usecases import NativeApi

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAX_IN_FLIGHT = 8
PIN_KEYS = frozenset({"pin", "password", "userpin", "passwd", "pincode", "user_pin"})

RENEWAL_KEY: web.AppKey[RenewalService | None] = web.AppKey("renewal")


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


class NativeSocket:
    """One /v1/ws connection's message handling."""

    def __init__(self, api: NativeApi, renewal: RenewalService | None) -> None:
        self.api = api
        self.renewal = renewal
        self.requests: set[asyncio.Task[None]] = set()  # in flight, capped

    async def opened(self, conn: Connection) -> None:
        conn.spawn(self._announce_expiring(conn))

    async def on_text(self, conn: Connection, text: str) -> None:
        if len(self.requests) >= MAX_IN_FLIGHT:
            # refused, but answered: with its own id, so the page's call ends now
            await conn.send({"id": _safe_id(_peek_id(text)), "error": error_body(RateLimited())})
            return
        task = conn.spawn(self._handle(conn, text))
        self.requests.add(task)
        task.add_done_callback(self.requests.discard)

    async def on_binary(self, conn: Connection, data: bytes) -> None:
        await conn.send({"id": None, "error": error_body(BadRequest("binary frame"))})

    async def _announce_expiring(self, conn: Connection) -> None:
        try:
            for data in await self.api.gate.certificates.expiring():
                await conn.send({"event": "certificate.expiring", "data": data})
        except CertHelperError as exc:
            log.debug("expiry announcement skipped: %s", exc.code)

    async def _handle(self, conn: Connection, text: str) -> None:
        req_id: Any = None
        try:
            req_id = _peek_id(text)
            req_id, method, params = _parse(text)
            if carries_pin(params):
                raise PinNotAccepted()
            result = await self._dispatch(conn.origin, method, params)
            await conn.send({"id": req_id, "result": result})
        except CertHelperError as exc:
            await conn.send({"id": _safe_id(req_id), "error": error_body(exc)})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unexpected error in %s", conn.origin)
            await conn.send({"id": _safe_id(req_id), "error": error_body(CertHelperError())})

    async def _dispatch(self, origin: str, method: str, params: dict[str, Any]) -> Any:
        api = self.api
        if method == "certificates.list":
            return {"certificates": await api.list_certificates(origin)}
        if method == "auth.authenticate":
            return await api.authenticate(
                origin, params.get("challenge"), _opt_str(params, "certificate")
            )
        if method == "sign.data":
            fmt = params.get("format", "cms")
            if fmt not in ("raw", "cms"):
                raise BadParams(detail="'format' must be raw or cms")
            return await api.sign_data(
                origin, params.get("data"), fmt, params.get("text"), _opt_str(params, "certificate")
            )
        if method == "auth.logout":
            await api.logout(origin)
            return {"logged_out": True}
        if method.startswith("renewal."):
            return await self._renewal(origin, method, params)
        raise UnknownMethod(detail=method[:64])

    async def _renewal(self, origin: str, method: str, params: dict[str, Any]) -> Any:
        renewal = self.renewal
        if renewal is None:  # no renewal configured: nobody may
            self.api.gate.audit_event(origin, method[:64], None, RenewalOriginRefused.code)
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


async def websocket(request: web.Request) -> web.StreamResponse:
    handler = NativeSocket(NativeApi(request.app[GATE_KEY]), request.app[RENEWAL_KEY])
    return await serve_socket(
        request, handler.on_text, on_binary=handler.on_binary, on_open=handler.opened
    )


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested absurdly deep
        raise BadRequest(detail="not JSON") from None


def _peek_id(text: str) -> Any:
    """The request's id when the text is a JSON object, else None (never raises)."""
    try:
        msg = _loads(text)
    except BadRequest:
        return None
    return msg.get("id") if isinstance(msg, dict) else None


def _parse(text: str) -> tuple[Any, str, dict[str, Any]]:
    msg = _loads(text)
    if not isinstance(msg, dict):
        raise BadRequest(detail="not an object")
    req_id = msg.get("id")
    if _safe_id(req_id) is None:
        raise BadRequest(detail="'id' must be a string or an integer")
    method = msg.get("method")
    if not isinstance(method, str):
        raise BadRequest(detail="'method' must be a string")
    params = msg.get("params", {})
    if not isinstance(params, dict):
        raise BadParams(detail="'params' must be an object")
    return req_id, method, params


def _safe_id(req_id: Any) -> Any:
    """Echo only ids the protocol allows (so a reply never carries page junk, and
    never a string that cannot be sent, such as a lone surrogate)."""
    if isinstance(req_id, bool) or not isinstance(req_id, int | str):
        return None
    if isinstance(req_id, str):
        if len(req_id) > 100:
            return None
        try:
            req_id.encode("utf-8")
        except UnicodeEncodeError:
            return None
    if isinstance(req_id, int) and abs(req_id) > 2**53:
        return None
    return req_id


def _opt_str(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is not None and not isinstance(value, str):
        raise BadParams(detail=f"'{name}' must be a string")
    return value
