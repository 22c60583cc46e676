"""HTTP-level guards that run before any handler (security.md, req. 2, 5, 6, 14).

* Host allowlist against DNS rebinding: only the loopback names with the port
  the connection actually arrived on; ``X-Forwarded-*`` is never consulted.
* Bodies: only ``application/json`` for methods that carry one (a form or
  text/plain POST from a page cannot reach anything), size capped by the app.
* CORS: echo only allowed origins, ``Vary: Origin``, never ``*`` or credentials;
  answer Private/Local Network Access preflights for allowed origins only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from helper.bridge.origins import Decision, OriginPolicy, normalize_origin

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_BODY = 64 * 1024
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
POLICY_KEY: web.AppKey[OriginPolicy] = web.AppKey("origin_policy", OriginPolicy)


def local_port(request: web.Request) -> int | None:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return sockname[1] if sockname else None


def allowed_hosts(port: int) -> set[str]:
    return {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}


@web.middleware
async def host_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    port = local_port(request)
    host = request.headers.get("Host", "")
    if port is None or host.lower() not in allowed_hosts(port):
        refused = web.json_response(
            {"error": {"code": "host_denied", "message": "Misdirected request"}}, status=421
        )
        refused.force_close()  # a refused client does not keep a connection slot
        return refused
    return await handler(request)


@web.middleware
async def body_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in _BODY_METHODS and request.content_type != "application/json":
        return web.json_response(
            {"error": {"code": "unsupported_media_type", "message": "application/json only"}},
            status=415,
        )
    return await handler(request)


def cors_headers(request: web.Request) -> dict[str, str]:
    """CORS headers for an allowed origin, else only ``Vary``."""
    headers = {"Vary": "Origin"}
    origin = normalize_origin(request.headers.get("Origin"))
    if origin is None or request.app[POLICY_KEY].decide(origin) is not Decision.ALLOWED:
        return headers
    headers["Access-Control-Allow-Origin"] = origin
    if request.method == "OPTIONS":
        headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
        headers["Access-Control-Max-Age"] = "600"
        asked = request.headers.get("Access-Control-Request-Headers")
        if asked:
            headers["Access-Control-Allow-Headers"] = "Content-Type"
        if request.headers.get("Access-Control-Request-Private-Network") == "true":
            headers["Access-Control-Allow-Private-Network"] = "true"
        if request.headers.get("Access-Control-Request-Local-Network") == "true":
            headers["Access-Control-Allow-Local-Network"] = "true"
    return headers
