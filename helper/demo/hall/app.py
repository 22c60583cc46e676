"""The demo hall app: routes, headers, and ``certhelper demo-hall``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from helper.demo.hall.login import (
    api_challenge,
    api_legacy_challenge,
    api_legacy_login,
    api_login,
    logout,
    to_hall,
)
from helper.demo.hall.pages import gjjcx, gjyw, home, legacy_page, login_page, wyjc, ygxx
from helper.demo.hall.state import (
    BASE,
    DEFAULT_HEBCA_PORT,
    HALL_KEY,
    MAX_BODY,
    Clock,
    Hall,
)
from helper.demo.web import DEFAULT_HELPER, HERE, client_js, normalize_base, page_headers


@web.middleware
async def _headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    hall = request.app[HALL_KEY]
    page_headers(response, hall.helper_base, hall.hebca_port)
    return response


def create_hall_app(
    trust_anchors: list[bytes],
    *,
    origin: str,
    helper_base: str = DEFAULT_HELPER,
    now: Clock | None = None,
    intermediates: Sequence[bytes] = (),
    hebca_port: int = DEFAULT_HEBCA_PORT,
) -> web.Application:
    """The demo hall app for ``origin`` (its public ``scheme://host:port``).

    ``trust_anchors``: CA certificates (PEM or DER) a login certificate must chain to;
    ``intermediates``: extra CA certificates for building the chain. ``helper_base``:
    where pages load certhelper.js from. ``now``: a clock (tests), default UTC now.
    ``hebca_port``: the port of the HEBCA-compatible endpoint the legacy login page
    (``/ish/legacy``) connects to, ``ws://localhost:<port>/test``.
    """
    if not isinstance(hebca_port, int) or not 0 < hebca_port < 65536:
        raise ValueError(f"hebca_port must be a TCP port, got {hebca_port!r}")
    hall = Hall(
        trust_anchors,
        intermediates,
        origin.rstrip("/"),
        normalize_base(helper_base),
        now or (lambda: datetime.now(UTC)),
        hebca_port,
    )
    app = web.Application(middlewares=[_headers], client_max_size=MAX_BODY)
    app[HALL_KEY] = hall
    r = app.router
    r.add_get("/", to_hall)
    r.add_get(BASE, to_hall)
    r.add_get(f"{BASE}/", login_page)
    r.add_get(f"{BASE}/login", login_page)
    r.add_get(f"{BASE}/legacy", legacy_page)
    r.add_get(f"{BASE}/home", home)
    r.add_get(f"{BASE}/gjjcx", gjjcx)
    r.add_get(f"{BASE}/ygxx", ygxx)
    r.add_get(f"{BASE}/gjyw", gjyw)
    r.add_get(f"{BASE}/wyjc", wyjc)
    r.add_get(f"{BASE}/api/challenge", api_challenge)
    r.add_post(f"{BASE}/api/login", api_login)
    r.add_get(f"{BASE}/api/legacy/challenge", api_legacy_challenge)
    r.add_post(f"{BASE}/api/legacy/login", api_legacy_login)
    r.add_post(f"{BASE}/logout", logout)
    r.add_get(f"{BASE}/certhelper.js", client_js)
    r.add_static(f"{BASE}/static/", HERE / "static")
    return app


def split_ca_certificates(pems: Iterable[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Self-issued certificates become trust anchors, the others intermediates; with no
    self-issued one, every certificate is an anchor (a hall may trust an issuing CA)."""
    anchors: list[bytes] = []
    others: list[bytes] = []
    for data in pems:
        certs = (
            x509.load_pem_x509_certificates(data)
            if b"-----BEGIN" in data
            else [x509.load_der_x509_certificate(data)]
        )
        for cert in certs:
            der = cert.public_bytes(Encoding.DER)
            (anchors if cert.subject == cert.issuer else others).append(der)
    return (anchors, others) if anchors else (others, [])


def demo_token_ca_files() -> list[Path]:
    """The CA certificates of the demo build: the RSA/EC PKI's and the SM2 PKI's."""
    from helper.config import demo_dir

    manifest = demo_dir() / "manifest.json"
    if not manifest.exists():
        return []
    data = json.loads(manifest.read_text("utf-8"))
    ca = data.get("ca") or {}
    sm2 = (data.get("skf") or {}).get("ca") or {}  # the SM2 key's CAs (国密)
    return [Path(c[k]) for c in (ca, sm2) for k in ("root", "issuing") if k in c]


def run_demo_hall(
    host: str = "127.0.0.1",
    port: int = 9010,
    ca_pems: Sequence[str | Path | bytes] = (),
    helper_base: str = DEFAULT_HELPER,
    origin: str | None = None,
    hebca_port: int = DEFAULT_HEBCA_PORT,
) -> None:
    """Serve the demo hall until interrupted. ``ca_pems``: CA certificate files (or PEM
    bytes); by default the demo token's CAs (``make demo``)."""
    sources = list(ca_pems) or list(demo_token_ca_files())
    if not sources:
        raise ValueError(
            "没有可信任的 CA 证书：请先运行 make demo，或指定 CA 证书文件 "
            "(no trusted CA certificate: run `make demo` or give CA files)"
        )
    data = [s if isinstance(s, bytes) else Path(s).read_bytes() for s in sources]
    anchors, intermediates = split_ca_certificates(data)
    shown_host = f"[{host}]" if ":" in host else host
    origin = origin or f"http://{shown_host}:{port}"
    app = create_hall_app(
        anchors,
        origin=origin,
        helper_base=helper_base,
        intermediates=intermediates,
        hebca_port=hebca_port,
    )
    print(f"演示大厅已启动 (demo hall): {origin}{BASE}/", flush=True)
    print(f"证书助手地址 (helper): {normalize_base(helper_base)}", flush=True)
    web.run_app(app, host=host, port=port, print=None, access_log=None)
