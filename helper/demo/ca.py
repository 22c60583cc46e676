"""The demo CA: a stand-in for the Hebei CA's online renewal site (老用户延期), at
``http://127.0.0.1:9020/``.

The flow (the shape a CA's renewal site follows with certhelper):

1. the page lists the inserted certificates (``CertHelper.renewal.status()``) and asks
   ``POST /api/inspect`` which of them this CA issued;
2. ``POST /api/orders {certificate}`` opens an order (100 元) for one of ours;
   ``POST /api/orders/{id}/pay`` is the demo payment (nothing is charged);
3. the page gets a PKCS#10 request from the key (``CertHelper.renewal.request``) and
   posts it: ``POST /api/orders/{id}/csr {csr}``; the CA checks the order is paid, the
   request (helper.demo.ca_issue; SM2 certificates: helper.demo.ca_sm2, by the SM2
   issuing CA) and issues the renewed certificate;
4. the page has the helper write it (``CertHelper.renewal.install``) and reports
   ``POST /api/orders/{id}/installed {installed}``; ``/orders/{id}`` is the receipt.

Orders live in memory and belong to the browser session (an HttpOnly cookie) that
opened them. Every refusal is a 400 (415 for non-JSON, 403 for a foreign Origin)
with ``{"error": {"code", "message"}}``, the message Chinese with English beside.
Everything is marked 演示 / demo: this is not the Hebei CA and no money moves.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding

from helper.demo.ca_issue import (
    IssueError,
    issue_renewal,
    issued_by,
    load_certificate,
    load_request,
)
from helper.demo.ca_sm2 import Sm2Issuer, is_sm2_certificate, issue_sm2_renewal
from helper.demo.web import CST, DEFAULT_HELPER, esc, normalize_base, page_headers
from helper.domain.renewal import renewed_validity

log = logging.getLogger(__name__)

DEFAULT_PORT = 9020
COOKIE = "DEMO_CA_SESSION"
PRICE = "100.00"
MAX_BODY = 256 * 1024
MAX_INSPECT = 64  # certificates per /api/inspect
ORDER_TTL = timedelta(days=1)
HERE = Path(__file__).resolve().parent
NO_STORE = {"Cache-Control": "no-store"}
SITE = "河北CA 数字证书在线服务（演示）"

Clock = Callable[[], datetime]


# --- state -----------------------------------------------------------------------


@dataclass
class Order:
    id: str
    session: str
    created: datetime
    old: x509.Certificate
    paid_at: datetime | None = None
    issued: x509.Certificate | None = None
    same_key: bool | None = None
    installed_at: datetime | None = None
    old_certificate: str | None = None  # what the helper did with it: archived / removed

    @property
    def status(self) -> str:
        if self.installed_at is not None:
            return "installed"
        if self.issued is not None:
            return "issued"
        return "paid" if self.paid_at is not None else "unpaid"

    def to_json(self, now: datetime) -> dict[str, Any]:
        out: dict[str, Any] = {
            "order_id": self.id,
            "status": self.status,
            "amount": PRICE,
            "currency": "CNY",
            "subject_cn": _cn(self.old),
            "old_serial_hex": _serial(self.old),
            "old_sha256": _sha256(self.old),
            "old_not_after": _iso(self.old.not_valid_after_utc),
            "expected_not_after": _iso(renewed_validity(self.old.not_valid_after_utc, now)[1]),
            "receipt": f"/orders/{self.id}",
        }
        if self.issued is not None:
            out.update(
                serial_hex=_serial(self.issued),
                sha256=_sha256(self.issued),
                not_after=_iso(self.issued.not_valid_after_utc),
                key="existing" if self.same_key else "new",
            )
        return out


@dataclass
class DemoCa:
    issuing: x509.Certificate
    issuing_key: CertificateIssuerPrivateKeyTypes
    chain: list[x509.Certificate]
    origin: str
    helper_base: str
    clock: Clock
    orders: dict[str, Order] = field(default_factory=dict)
    #: the SM2 issuing CA, for SM2 certificates (None: this CA renews RSA/EC only)
    sm2: Sm2Issuer | None = None

    def issued(self, cert: x509.Certificate) -> bool:
        """Whether this CA (its RSA/EC or its SM2 issuing CA) issued ``cert``."""
        der = cert.public_bytes(Encoding.DER)
        if is_sm2_certificate(der):
            return self.sm2 is not None and self.sm2.issued(der)
        return issued_by(cert, self.issuing)

    def session_id(self, request: web.Request) -> str | None:
        sid = request.cookies.get(COOKIE)
        return sid if sid and len(sid) <= 64 else None

    def set_cookie(self, response: web.StreamResponse, sid: str) -> None:
        response.set_cookie(
            COOKIE,
            sid,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=self.origin.startswith("https://"),
        )

    def add_order(self, order: Order) -> None:
        """Keep ``order``; orders older than ORDER_TTL are dropped (memory only)."""
        for oid in [k for k, o in self.orders.items() if order.created - o.created > ORDER_TTL]:
            del self.orders[oid]
        self.orders[order.id] = order

    def new_order_id(self) -> str:
        while True:
            oid = f"YQ{self.clock().astimezone(CST):%Y%m%d}{secrets.randbelow(10**10):010d}"
            if oid not in self.orders:
                return oid


CA_KEY: web.AppKey[DemoCa] = web.AppKey("demo_ca", DemoCa)


# --- helpers -----------------------------------------------------------------------


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=NO_STORE
    )


def _cn(cert: x509.Certificate | x509.Name) -> str:
    name = cert.subject if isinstance(cert, x509.Certificate) else cert
    values = name.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def _serial(cert: x509.Certificate) -> str:
    """Upper-case hex in whole bytes, as the helper shows serials."""
    text = f"{cert.serial_number:X}"
    return text if len(text) % 2 == 0 else "0" + text


def _sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def _b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shown(value: datetime) -> str:
    return value.astimezone(CST).strftime("%Y年%m月%d日 %H:%M")


def _decode(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value.strip():
        raise Refused(400, "bad_request", f"请求中缺少{what} (missing {what})")
    try:
        raw = base64.b64decode("".join(value.split()), validate=True)
    except (ValueError, binascii.Error):
        raise Refused(400, "bad_base64", f"{what}不是有效的 Base64 编码 (bad base64)") from None
    if not raw:
        raise Refused(400, "bad_base64", f"{what}为空 (empty)")
    return raw


async def _json_body(request: web.Request, ca: DemoCa) -> dict[str, Any]:
    """A POST from our own pages: JSON, our Origin (when sent), a session cookie."""
    sent_origin = request.headers.get("Origin")
    if sent_origin is not None and sent_origin != ca.origin:
        raise Refused(403, "bad_origin", "请求来源不正确，已拒绝 (foreign origin)")
    if request.content_type != "application/json":
        raise Refused(415, "unsupported_media_type", "只接受 JSON 格式的数据 (JSON only)")
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "bad_request", "请求格式错误 (malformed JSON)") from None
    if not isinstance(body, dict):
        raise Refused(400, "bad_request", "请求格式错误 (a JSON object expected)")
    return body


def _order(request: web.Request, ca: DemoCa) -> Order:
    oid = request.match_info["order_id"]
    order = ca.orders.get(oid)
    if order is None or order.session != ca.session_id(request):
        raise Refused(400, "unknown_order", "订单不存在，请重新办理 (unknown order)")
    return order


def _handle(
    handler: Callable[[web.Request, DemoCa], Any],
) -> Callable[[web.Request], Any]:
    """Run an API handler; a refusal becomes its JSON error."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        ca = request.app[CA_KEY]
        try:
            return await handler(request, ca)
        except Refused as exc:
            log.info("refused %s %s: %s", request.method, request.path, exc.code)
            return _error(exc.status, exc.code, exc.message)
        except IssueError as exc:
            log.info("refused %s %s: %s", request.method, request.path, exc.code)
            return _error(400, exc.code, exc.message)

    return wrapped


@web.middleware
async def _headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    page_headers(response, request.app[CA_KEY].helper_base)
    return response


# --- pages -------------------------------------------------------------------------


def _template(name: str) -> Template:
    return Template((HERE / "templates" / name).read_text("utf-8"))


def _page(
    ca: DemoCa, title: str, content: str, *, scripts: Sequence[str] = (), status: int = 200
) -> web.Response:
    text = _template("ca_layout.html").substitute(
        title=esc(title),
        site=SITE,
        scripts="\n".join(f'<script defer src="{esc(src)}"></script>' for src in scripts),
        content=content,
    )
    return web.Response(
        text=text, status=status, content_type="text/html", charset="utf-8", headers=NO_STORE
    )


async def index(request: web.Request) -> web.StreamResponse:
    ca = request.app[CA_KEY]
    content = _template("ca_index.html").substitute(
        price=PRICE, issuer=esc(_cn(ca.issuing)), helper=esc(ca.helper_base)
    )
    response = _page(
        ca,
        "老用户延期",
        content,
        scripts=(ca.helper_base + "/v1/certhelper.js", "/static/ca.js"),
    )
    ca.set_cookie(response, ca.session_id(request) or secrets.token_urlsafe(32))
    return response


_STATUS_TEXT = {
    "unpaid": "待支付",
    "paid": "已支付，待延期",
    "issued": "新证书已签发，待写入 USB Key",
    "installed": "办理完成",
}


async def receipt(request: web.Request) -> web.StreamResponse:
    ca = request.app[CA_KEY]
    try:
        order = _order(request, ca)
    except Refused:
        content = (
            '<section class="card"><h2 class="section-title">订单不存在</h2>'
            '<p id="receipt-missing">没有找到该订单 (unknown order)。'
            '<a href="/">返回老用户延期</a></p></section>'
        )
        return _page(ca, "订单不存在", content, status=404)
    done = order.issued is not None and order.installed_at is not None
    issued = order.issued
    content = _template("ca_receipt.html").substitute(
        status_class="ok" if done else "pending",
        status=esc(_STATUS_TEXT[order.status]),
        order_id=esc(order.id),
        amount=f"{PRICE} 元（演示，未实际扣款）",
        subject=esc(_cn(order.old)),
        old_serial=esc(_serial(order.old)),
        old_not_after=esc(_shown(order.old.not_valid_after_utc)),
        serial=esc(_serial(issued)) if done and issued else "—",
        not_after=esc(_shown(issued.not_valid_after_utc)) if done and issued else "—",
        not_after_iso=esc(_iso(issued.not_valid_after_utc)) if done and issued else "",
        key=("沿用原密钥" if order.same_key else "新密钥对") if done else "—",
        paid_at=esc(_shown(order.paid_at)) if order.paid_at else "—",
        installed_at=esc(_shown(order.installed_at)) if order.installed_at else "—",
    )
    return _page(ca, "办理结果", content)


# --- API ---------------------------------------------------------------------------


async def api_inspect(request: web.Request, ca: DemoCa) -> web.StreamResponse:
    """``{certificates: [base64 DER]}`` -> which were issued by this CA."""
    body = await _json_body(request, ca)
    items = body.get("certificates")
    if not isinstance(items, list) or len(items) > MAX_INSPECT:
        raise Refused(400, "bad_request", "请求中缺少证书列表 (certificates: a list expected)")
    out = []
    for item in items:
        cert = load_certificate(_decode(item, "证书"))
        out.append({"sha256": _sha256(cert), "ours": ca.issued(cert)})
    return web.json_response({"certificates": out}, headers=NO_STORE)


async def api_new_order(request: web.Request, ca: DemoCa) -> web.StreamResponse:
    body = await _json_body(request, ca)
    old = load_certificate(_decode(body.get("certificate"), "证书"))
    if not ca.issued(old):
        raise IssueError(
            "not_our_certificate", "该证书非本CA签发，不能在此延期 (not issued by this CA)"
        )
    sid = ca.session_id(request) or secrets.token_urlsafe(32)
    now = ca.clock()
    order = Order(ca.new_order_id(), sid, now, old)
    ca.add_order(order)
    log.info("order %s opened for %s", order.id, _sha256(old)[:16])
    response = web.json_response(order.to_json(now), status=201, headers=NO_STORE)
    ca.set_cookie(response, sid)
    return response


async def api_order(request: web.Request, ca: DemoCa) -> web.StreamResponse:
    order = _order(request, ca)
    return web.json_response(order.to_json(ca.clock()), headers=NO_STORE)


async def api_pay(request: web.Request, ca: DemoCa) -> web.StreamResponse:
    """The demo payment: marks the order paid; nothing is charged."""
    await _json_body(request, ca)
    order = _order(request, ca)
    if order.paid_at is None:
        order.paid_at = ca.clock()
        log.info("order %s paid (demo)", order.id)
    return web.json_response(order.to_json(ca.clock()), headers=NO_STORE)


async def api_csr(request: web.Request, ca: DemoCa) -> web.StreamResponse:
    """``{csr: base64 DER PKCS#10}`` -> the renewed certificate and its CA chain."""
    body = await _json_body(request, ca)
    order = _order(request, ca)
    if order.installed_at is not None:
        raise Refused(400, "order_done", "该订单已办理完成 (order already completed)")
    if order.paid_at is None:
        raise Refused(400, "order_unpaid", "订单尚未支付，请先支付 (order not paid)")
    csr = _decode(body.get("csr"), "证书请求")
    now = ca.clock()
    old_der = order.old.public_bytes(Encoding.DER)
    if is_sm2_certificate(old_der):
        if ca.sm2 is None:
            raise IssueError("not_our_certificate", "本CA不签发国密证书 (no SM2 issuing CA)")
        sm2_renewal = issue_sm2_renewal(old_der, csr, ca.sm2, now)
        issued = x509.load_der_x509_certificate(sm2_renewal.der)
        same_key, chain = sm2_renewal.same_key, [ca.sm2.der]
    else:
        renewal = issue_renewal(order.old, load_request(csr), ca.issuing, ca.issuing_key, now)
        issued, same_key = renewal.certificate, renewal.same_key
        chain = [c.public_bytes(Encoding.DER) for c in ca.chain]
    order.issued, order.same_key = issued, same_key
    log.info(
        "order %s: issued %s (%s key)", order.id, _serial(issued), "same" if same_key else "new"
    )
    return web.json_response(
        {
            "certificate": _b64(issued),
            "chain": [base64.b64encode(c).decode("ascii") for c in chain],
            "order": order.to_json(now),
        },
        headers=NO_STORE,
    )


async def api_installed(request: web.Request, ca: DemoCa) -> web.StreamResponse:
    """``{installed: sha256[, old_certificate]}``: the helper wrote the certificate."""
    body = await _json_body(request, ca)
    order = _order(request, ca)
    if order.issued is None:
        raise Refused(400, "not_issued", "该订单尚未签发新证书 (no certificate issued yet)")
    installed = body.get("installed")
    if not isinstance(installed, str) or not secrets.compare_digest(
        installed.lower(), _sha256(order.issued)
    ):
        raise Refused(
            400, "certificate_mismatch", "写入的证书与本订单签发的不一致 (not this order's)"
        )
    old_certificate = body.get("old_certificate")
    if order.installed_at is None:
        order.installed_at = ca.clock()
        order.old_certificate = old_certificate if isinstance(old_certificate, str) else None
        log.info("order %s: installed on the key", order.id)
    return web.json_response(
        {"receipt": f"/orders/{order.id}", "order": order.to_json(ca.clock())}, headers=NO_STORE
    )


# --- factory and CLI -----------------------------------------------------------------


def create_ca_app(
    issuing_cert: x509.Certificate,
    issuing_key: CertificateIssuerPrivateKeyTypes,
    *,
    chain: list[x509.Certificate],
    origin: str,
    helper_base: str = DEFAULT_HELPER,
    now: Clock | None = None,
    sm2: Sm2Issuer | None = None,
) -> web.Application:
    """The demo CA for ``origin`` (its public ``scheme://host:port``), signing with
    ``issuing_key``. ``chain``: the CA certificates handed to the helper with a renewed
    certificate (the issuing CA; the helper trusts its own configured roots).
    ``helper_base``: where pages load certhelper.js from. ``now``: a clock (tests).
    ``sm2``: the SM2 issuing CA that renews SM2 certificates (SM2-with-SM3); the chain
    handed out with them is that CA's certificate."""
    ca = DemoCa(
        issuing_cert,
        issuing_key,
        list(chain),
        origin.rstrip("/"),
        normalize_base(helper_base),
        now or (lambda: datetime.now(UTC)),
        sm2=sm2,
    )
    app = web.Application(middlewares=[_headers], client_max_size=MAX_BODY)
    app[CA_KEY] = ca
    r = app.router
    r.add_get("/", index)
    r.add_get("/orders/{order_id}", receipt)
    r.add_post("/api/inspect", _handle(api_inspect))
    r.add_post("/api/orders", _handle(api_new_order))
    r.add_get("/api/orders/{order_id}", _handle(api_order))
    r.add_post("/api/orders/{order_id}/pay", _handle(api_pay))
    r.add_post("/api/orders/{order_id}/csr", _handle(api_csr))
    r.add_post("/api/orders/{order_id}/installed", _handle(api_installed))
    r.add_static("/static/", HERE / "static")
    return app


@dataclass(frozen=True)
class DemoCaFiles:
    root: Path
    issuing: Path
    key: Path
    #: the SM2 CA of the demo's soft SKF key (manifest "skf"."ca"), when it was built
    sm2_root: Path | None = None
    sm2_issuing: Path | None = None
    sm2_key: Path | None = None

    @property
    def roots(self) -> list[Path]:
        """Every root a renewed certificate of this CA chains to (RSA, then SM2)."""
        return [self.root] + ([self.sm2_root] if self.sm2_root else [])

    def load(self) -> tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes]:
        cert = x509.load_pem_x509_certificate(self.issuing.read_bytes())
        key = serialization.load_pem_private_key(self.key.read_bytes(), None)
        return cert, key  # type: ignore[return-value]

    def load_sm2(self) -> Sm2Issuer | None:
        if self.sm2_issuing is None or self.sm2_key is None:
            return None
        return Sm2Issuer.load(self.sm2_issuing, self.sm2_key)


NOT_BUILT = (
    "演示 Key 尚未生成，请先运行 make demo "
    "(the demo token has not been built: run `make demo`; missing {missing})"
)


def demo_ca_files(directory: Path | None = None) -> DemoCaFiles:
    """The demo token's CA (softhsm-fixtures manifest "ca"; the issuing key beside the
    issuing certificate). ValueError with a Chinese/English message when not built."""
    from helper.config import demo_dir

    manifest = (directory or demo_dir()) / "manifest.json"
    if not manifest.exists():
        raise ValueError(NOT_BUILT.format(missing=manifest))
    data = json.loads(manifest.read_text("utf-8"))
    ca = data.get("ca", {})
    if "root" not in ca or "issuing" not in ca:
        raise ValueError(NOT_BUILT.format(missing=f"{manifest}: ca.root / ca.issuing"))
    issuing = Path(ca["issuing"])
    sm2_ca = (data.get("skf") or {}).get("ca") or {}
    sm2_issuing = Path(sm2_ca["issuing"]) if "issuing" in sm2_ca and "root" in sm2_ca else None
    files = DemoCaFiles(
        Path(ca["root"]),
        issuing,
        issuing.with_suffix(".key"),
        sm2_root=Path(sm2_ca["root"]) if sm2_issuing else None,
        sm2_issuing=sm2_issuing,
        sm2_key=sm2_issuing.with_suffix(".key") if sm2_issuing else None,
    )
    for path in (files.root, files.issuing, files.key, files.sm2_root, files.sm2_key):
        if path is not None and not path.exists():
            raise ValueError(NOT_BUILT.format(missing=path))
    return files


def demo_ca_app(files: DemoCaFiles, *, origin: str, helper_base: str) -> web.Application:
    issuing, key = files.load()
    return create_ca_app(
        issuing,
        key,
        chain=[issuing],
        origin=origin,
        helper_base=helper_base,
        sm2=files.load_sm2(),
    )


def run_demo_ca(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, helper_base: str = DEFAULT_HELPER
) -> None:
    """Serve the demo CA with the demo token's issuing CA until interrupted."""
    files = demo_ca_files()
    shown_host = f"[{host}]" if ":" in host else host
    origin = f"http://{shown_host}:{port}"
    app = demo_ca_app(files, origin=origin, helper_base=helper_base)
    print(f"演示CA已启动 (demo CA): {origin}/", flush=True)
    print(f"证书助手地址 (helper): {normalize_base(helper_base)}", flush=True)
    roots = " ".join(str(p) for p in files.roots)
    print(
        f"证书助手需允许本站并信任 (the helper must allow this origin and trust) {roots}",
        flush=True,
    )
    web.run_app(app, host=host, port=port, print=None, access_log=None)
