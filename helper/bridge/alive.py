"""``GET /v1/alive``: a page's "is the helper there at all?" probe.

Served on both ports and to every origin (``Access-Control-Allow-Origin: *``), so a
page that cannot reach the HTTPS API can still tell *why*: served over plain http
on the HEBCA port, it answers when the browser does not trust the helper's TLS
certificate; an answer that is not this one means another program holds the port
(docs/reachability.md). It reveals only that certhelper runs, which any page can
already learn from a no-cors ping.
"""

from __future__ import annotations

from aiohttp import web

ALIVE_BODY = {"app": "certhelper", "alive": True}
_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


async def alive(request: web.Request) -> web.Response:
    headers = dict(_HEADERS)
    if request.method == "OPTIONS":  # Private/Local Network Access preflights
        headers["Access-Control-Allow-Methods"] = "GET"
        if request.headers.get("Access-Control-Request-Private-Network") == "true":
            headers["Access-Control-Allow-Private-Network"] = "true"
        if request.headers.get("Access-Control-Request-Local-Network") == "true":
            headers["Access-Control-Allow-Local-Network"] = "true"
        return web.Response(status=204, headers=headers)
    return web.json_response(ALIVE_BODY, headers=headers)


def add_alive_route(app: web.Application) -> None:
    app.router.add_get("/v1/alive", alive)
    app.router.add_route("OPTIONS", "/v1/alive", alive)
