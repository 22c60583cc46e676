"""What the demo sites (hall and CA) share: the China time zone, escaping, the
helper's base URL, templates, error replies and the security headers."""

from __future__ import annotations

import html
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

from aiohttp import web

DEFAULT_HELPER = "https://127.0.0.1:17213"
DEFAULT_LEGACY_PORT = 17212  # the helper's plain-http port (HEBCA endpoint, /v1/alive)
CST = timezone(timedelta(hours=8), "北京时间")
#: helper/demo: templates/ and static/
HERE = Path(__file__).resolve().parent
NO_STORE = {"Cache-Control": "no-store"}


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=NO_STORE
    )


def template(name: str) -> Template:
    return Template((HERE / "templates" / name).read_text("utf-8"))


def cn_date(value: datetime) -> str:
    return value.astimezone(CST).strftime("%Y年%m月%d日")


def cn_time(value: datetime) -> str:
    return value.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


async def client_js(request: web.Request) -> web.Response:
    """certhelper.js served by the site itself, so that it loads (and can say why the
    helper is out of reach) when the helper is down or its certificate is not trusted."""
    text = resources.files("helper.bridge").joinpath("static/certhelper.js").read_text("utf-8")
    return web.Response(
        text=text,
        content_type="application/javascript",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


def helper_meta(helper_base: str, legacy_port: int = DEFAULT_LEGACY_PORT) -> str:
    """The ``<meta name="certhelper">`` the site's scripts configure certhelper.js from."""
    port = urlsplit(normalize_base(helper_base)).port or 17213
    return f'<meta name="certhelper" data-port="{int(port)}" data-legacy-port="{int(legacy_port)}">'


def normalize_base(helper_base: str) -> str:
    parts = urlsplit(helper_base)
    if parts.scheme != "https" or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"helper_base must be https://host:port, got {helper_base!r}")
    return f"https://{parts.netloc}"


def csp(script_src: str, connect_src: str) -> str:
    return (
        f"default-src 'self'; script-src {script_src}; connect-src {connect_src}; "
        "img-src 'self' data:; style-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


def page_headers(
    response: web.StreamResponse, helper_base: str, legacy_port: int = DEFAULT_LEGACY_PORT
) -> None:
    """The demo sites' headers: a CSP that lets the page load certhelper.js, open the
    helper's WSS and probe its plain-http ``/v1/alive`` (docs/reachability.md), and
    nothing else; no sniffing; no cross-site referrer."""
    helper, ws = helper_base, "wss://" + helper_base.removeprefix("https://")
    probe = f"http://127.0.0.1:{int(legacy_port)}"
    response.headers.setdefault(
        "Content-Security-Policy", csp(f"'self' {helper}", f"'self' {helper} {ws} {probe}")
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
