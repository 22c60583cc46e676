"""The demo hall: a stand-in for the Cangzhou housing provident fund hall, served at /ish/.

Login flow (the shape a real hall backend follows, docs/bridge-protocol.md):

1. the page gets ``GET /ish/api/challenge``: 32 random bytes, base64url, stored
   server-side for the session cookie (HttpOnly, SameSite=Lax), single use, 5 minutes;
2. it asks the helper: ``CertHelper.authenticate(challenge)``;
3. it posts the login token to ``POST /ish/api/login`` (application/json only); the
   server checks it with :func:`helper.verify.verify_auth_token` against the challenge
   it stored (consumed by this first use) and its own origin, then starts a logged-in
   session under a new cookie and the page opens ``/ish/home``.

Every page is Chinese; the business pages show made-up data marked 演示数据.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from helper.verify import (
    Identity,
    VerifyError,
    new_challenge,
    verify_auth_token,
    verify_legacy_signature,
)

log = logging.getLogger(__name__)

BASE = "/ish"
COOKIE = "ISH_SESSION"
CHALLENGE_TTL = timedelta(minutes=5)
SESSION_IDLE = timedelta(minutes=30)
MAX_BODY = 64 * 1024
DEFAULT_HELPER = "https://127.0.0.1:17213"
DEFAULT_HEBCA_PORT = 17212  # the HEBCA-compatible endpoint, ws://localhost:17212/test
CST = timezone(timedelta(hours=8), "北京时间")
HERE = Path(__file__).resolve().parent
NO_STORE = {"Cache-Control": "no-store"}

Clock = Callable[[], datetime]


# --- state -------------------------------------------------------------------


@dataclass
class Challenge:
    value: str
    issued: datetime
    used: bool = False


@dataclass(frozen=True)
class User:
    company: str
    unique_id: str | None
    serial_hex: str
    not_after: datetime
    issuer: str
    sha256: str
    login_time: datetime


@dataclass
class Session:
    sid: str
    last_seen: datetime
    challenge: Challenge | None = None
    legacy_challenge: Challenge | None = None
    user: User | None = None


class Hall:
    def __init__(
        self,
        trust_anchors: Sequence[bytes],
        intermediates: Sequence[bytes],
        origin: str,
        helper_base: str,
        clock: Clock,
        hebca_port: int = DEFAULT_HEBCA_PORT,
    ) -> None:
        if not trust_anchors:
            raise ValueError("the hall needs at least one trusted CA certificate")
        self.anchors = list(trust_anchors)
        self.intermediates = list(intermediates)
        self.origin = origin
        self.helper_base = helper_base
        self.hebca_port = hebca_port
        self.clock = clock
        self.sessions: dict[str, Session] = {}

    def session(self, request: web.Request) -> Session | None:
        sid = request.cookies.get(COOKIE)
        session = self.sessions.get(sid) if sid else None
        if session is None:
            return None
        now = self.clock()
        if now - session.last_seen > SESSION_IDLE:
            del self.sessions[session.sid]
            return None
        session.last_seen = now
        return session

    def new_session(self) -> Session:
        now = self.clock()
        for sid in [s for s, v in self.sessions.items() if now - v.last_seen > SESSION_IDLE]:
            del self.sessions[sid]
        session = Session(secrets.token_urlsafe(32), now)
        self.sessions[session.sid] = session
        return session

    def set_cookie(self, response: web.StreamResponse, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            session.sid,
            path=f"{BASE}/",
            httponly=True,
            samesite="Lax",
            secure=self.origin.startswith("https://"),
        )


HALL_KEY: web.AppKey[Hall] = web.AppKey("demo_hall", Hall)


# --- helpers -------------------------------------------------------------------


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=NO_STORE
    )


def _template(name: str) -> Template:
    return Template((HERE / "templates" / name).read_text("utf-8"))


def _date(value: datetime) -> str:
    return value.astimezone(CST).strftime("%Y年%m月%d日")


def _time(value: datetime) -> str:
    return value.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _normalize_base(helper_base: str) -> str:
    parts = urlsplit(helper_base)
    if parts.scheme != "https" or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"helper_base must be https://host:port, got {helper_base!r}")
    return f"https://{parts.netloc}"


def _csp(script_src: str, connect_src: str) -> str:
    return (
        f"default-src 'self'; script-src {script_src}; connect-src {connect_src}; "
        "img-src 'self' data:; style-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


def page_headers(response: web.StreamResponse, helper_base: str) -> None:
    """The demo sites' headers: a CSP that lets the page load certhelper.js from the
    helper and open its WSS, and nothing else; no sniffing; no cross-site referrer."""
    helper, ws = helper_base, "wss://" + helper_base.removeprefix("https://")
    response.headers.setdefault(
        "Content-Security-Policy", _csp(f"'self' {helper}", f"'self' {helper} {ws}")
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")


@web.middleware
async def _headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    page_headers(response, request.app[HALL_KEY].helper_base)
    return response


# --- pages ---------------------------------------------------------------------

MENUS = (
    ("gjjcx", "公积金查询", "单位账户余额、汇缴记录"),
    ("ygxx", "员工信息查询", "职工个人账户与缴存基数"),
    ("gjyw", "归集业务", "汇缴、补缴、人员增减"),
    ("wyjc", "我要缴存", "核定本月应缴金额"),
)

# Made-up employees: 姓名, 身份证号 (masked), 个人账号, 缴存基数 (yuan), 状态
EMPLOYEES = (
    ("张伟", "130902********1234", "1309010000000101", 6800, "正常"),
    ("王芳", "130903********2045", "1309010000000102", 5600, "正常"),
    ("李娜", "130921********3306", "1309010000000103", 7200, "正常"),
    ("刘洋", "130922********4517", "1309010000000104", 4800, "正常"),
    ("陈静", "130925********5628", "1309010000000105", 6200, "正常"),
    ("杨磊", "130926********6739", "1309010000000106", 5400, "正常"),
    ("赵敏", "130981********7840", "1309010000000107", 9000, "正常"),
    ("黄强", "130984********8951", "1309010000000108", 4700, "封存"),
)
RATE = 0.12  # unit and employee each


def _monthly(base: int) -> float:
    return round(base * RATE, 2) * 2


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _active() -> list[tuple[str, str, str, int, str]]:
    return [e for e in EMPLOYEES if e[4] == "正常"]


def _page(
    hall: Hall,
    title: str,
    content: str,
    *,
    user: User | None,
    current: str = "",
    body_class: str = "",
    scripts: Sequence[str] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    if user is None:
        header_right = '<span class="hotline">服务热线 <b>12329</b></span>'
        items = ["首页", "办事指南", "政策法规", "下载专区", "联系我们"]
        nav = "".join(
            f'<span class="nav-item{" current" if i == 0 else ""}">{t}</span>'
            for i, t in enumerate(items)
        )
    else:
        header_right = (
            f'<span class="user" id="user-name">{_esc(user.company)}</span>'
            f'<form id="logout-form" method="post" action="{BASE}/logout">'
            '<button type="submit" class="linklike" id="logout">退出</button></form>'
        )
        links = [("home", "首页")] + [(slug, name) for slug, name, _ in MENUS]
        nav = "".join(
            f'<a class="nav-item{" current" if slug == current else ""}" '
            f'href="{BASE}/{slug}">{name}</a>'
            for slug, name in links
        )
    if scripts is None:  # the modern pages: certhelper.js from the helper, then hall.js
        scripts = (hall.helper_base + "/v1/certhelper.js", f"{BASE}/static/hall.js")
    text = _template("layout.html").substitute(
        title=_esc(title),
        scripts="\n".join(f'<script defer src="{_esc(src)}"></script>' for src in scripts),
        body_class=body_class,
        header_right=header_right,
        nav=nav,
        content=content,
    )
    return web.Response(
        text=text,
        content_type="text/html",
        charset="utf-8",
        headers={**NO_STORE, **(headers or {})},
    )


def _require_user(request: web.Request) -> tuple[Hall, User]:
    hall = request.app[HALL_KEY]
    session = hall.session(request)
    if session is None or session.user is None:
        raise web.HTTPFound(f"{BASE}/")
    return hall, session.user


async def login_page(request: web.Request) -> web.StreamResponse:
    hall = request.app[HALL_KEY]
    session = hall.session(request)
    if session is not None and session.user is not None:
        raise web.HTTPFound(f"{BASE}/home")
    content = _template("login.html").substitute()
    return _page(hall, "单位登录", content, user=None, body_class="login")


async def legacy_page(request: web.Request) -> web.StreamResponse:
    """The old-style login through the HEBCA-compatible endpoint (hebca-legacy-client.js).

    Its scripts are the hall's own; it connects to ws://localhost:<hebca_port> only."""
    hall = request.app[HALL_KEY]
    session = hall.session(request)
    if session is not None and session.user is not None:
        raise web.HTTPFound(f"{BASE}/home")
    content = _template("legacy.html").substitute(hebca_port=int(hall.hebca_port))
    csp = _csp("'self'", f"'self' ws://localhost:{int(hall.hebca_port)}")
    return _page(
        hall,
        "旧版助手登录",
        content,
        user=None,
        body_class="login legacy",
        scripts=(f"{BASE}/static/hebca-legacy-client.js", f"{BASE}/static/legacy-login.js"),
        headers={"Content-Security-Policy": csp},
    )


_ICONS = {
    "gjjcx": '<path d="M4 20V10M10 20V4M16 20v-7M22 20H2"/>',
    "ygxx": '<circle cx="9" cy="8" r="3.5"/><path d="M2.5 20c.8-4 3.4-6 6.5-6s5.7 2 6.5 6"/>'
    '<path d="M16 5.5a3 3 0 0 1 0 5.5M18.5 14c1.6.8 2.6 2.8 3 6"/>',
    "gjyw": '<rect x="4" y="3" width="16" height="18" rx="2"/><path d="M8 8h8M8 12h8M8 16h5"/>',
    "wyjc": '<rect x="2.5" y="6" width="19" height="13" rx="2"/><path d="M2.5 10h19M6 15h4"/>',
}


async def home(request: web.Request) -> web.StreamResponse:
    hall, user = _require_user(request)
    tiles = "\n".join(
        f'    <a class="tile" href="{BASE}/{slug}" id="menu-{slug}">'
        f'<svg viewBox="0 0 24 24" aria-hidden="true">{_ICONS[slug]}</svg>'
        f"<b>{name}</b><span>{desc}</span></a>"
        for slug, name, desc in MENUS
    )
    active = _active()
    content = _template("home.html").substitute(
        company=_esc(user.company),
        unique_id=_esc(user.unique_id or "（证书中无唯一标识）"),
        serial=_esc(user.serial_hex),
        not_after=_esc(_date(user.not_after)),
        issuer=_esc(user.issuer),
        login_time=_esc(_time(user.login_time)),
        tiles=tiles,
        headcount=len(active),
        monthly=_money(sum(_monthly(e[3]) for e in active)),
    )
    return _page(hall, "首页", content, user=user, current="home")


def _table(headers: Iterable[str], rows: Iterable[Iterable[object]], numeric: set[int]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if i in numeric else ''}>{_esc(c)}</td>" for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _section(title: str, inner: str, note: str = "") -> str:
    note_html = f'<p class="muted">{_esc(note)}</p>' if note else ""
    return (
        f'<section class="card"><h2 class="section-title">{_esc(title)} '
        f'<span class="demo-tag">演示数据</span></h2>{inner}{note_html}</section>'
    )


def _months(now: datetime, count: int) -> list[str]:
    y, m = now.astimezone(CST).year, now.astimezone(CST).month
    out = []
    for _ in range(count):
        m -= 1
        if m == 0:
            y, m = y - 1, 12
        out.append(f"{y}-{m:02d}")
    return out


def _breadcrumb(name: str) -> str:
    return f'<p class="crumb"><a href="{BASE}/home">首页</a> &gt; {_esc(name)}</p>'


async def gjjcx(request: web.Request) -> web.StreamResponse:
    hall, user = _require_user(request)
    active = _active()
    monthly = sum(_monthly(e[3]) for e in active)
    months = _months(hall.clock(), 6)
    balance = 386_512.40
    stats = (
        '<div class="stats">'
        f"<div><span>单位名称</span><b>{_esc(user.company)}</b></div>"
        "<div><span>单位公积金账号</span><b>1309 0100 0012 3456</b></div>"
        f"<div><span>单位账户余额</span><b>¥ {_money(balance)}</b></div>"
        f"<div><span>缴存比例</span><b>单位 {RATE:.0%}　个人 {RATE:.0%}</b></div>"
        "</div>"
    )
    rows = [
        (month, f"{month[:4]}{month[5:]}HJ{i + 1:03d}", len(active), _money(monthly), "已到账")
        for i, month in enumerate(months)
    ]
    inner = stats + _table(("缴存年月", "汇缴流水号", "人数", "金额（元）", "状态"), rows, {2, 3})
    content = _breadcrumb("公积金查询") + _section("单位公积金账户", inner)
    return _page(hall, "公积金查询", content, user=user, current="gjjcx")


async def ygxx(request: web.Request) -> web.StreamResponse:
    hall, user = _require_user(request)
    rows = [
        (name, idno, acct, _money(base), _money(_monthly(base) if st == "正常" else 0), st)
        for name, idno, acct, base, st in EMPLOYEES
    ]
    inner = _table(
        ("姓名", "身份证号", "个人公积金账号", "缴存基数（元）", "月缴存额（元）", "状态"),
        rows,
        {3, 4},
    )
    content = _breadcrumb("员工信息查询") + _section(
        "职工信息", inner, "身份证号已做脱敏处理；人员均为虚构。"
    )
    return _page(hall, "员工信息查询", content, user=user, current="ygxx")


async def gjyw(request: web.Request) -> web.StreamResponse:
    hall, user = _require_user(request)
    services = ("单位汇缴", "单位补缴", "人员增加", "人员减少", "个人账户封存", "个人账户启封")
    buttons = "".join(
        f'<button type="button" class="service" disabled>{s}<small>演示大厅未开通</small></button>'
        for s in services
    )
    months = _months(hall.clock(), 3)
    rows = [
        (f"{months[0]}-18", "人员增加", "刘洋", "已办结"),
        (f"{months[1]}-09", "单位汇缴", f"{len(_active())} 人", "已办结"),
        (f"{months[2]}-21", "个人账户封存", "黄强", "已办结"),
    ]
    inner = f'<div class="services">{buttons}</div>' + _table(
        ("办理日期", "业务类型", "涉及人员", "状态"), rows, set()
    )
    content = _breadcrumb("归集业务") + _section("归集业务办理", inner)
    return _page(hall, "归集业务", content, user=user, current="gjyw")


async def wyjc(request: web.Request) -> web.StreamResponse:
    hall, user = _require_user(request)
    active = _active()
    unit = sum(round(e[3] * RATE, 2) for e in active)
    month = hall.clock().astimezone(CST).strftime("%Y-%m")
    rows = [
        ("缴存年月", month),
        ("缴存人数", f"{len(active)} 人"),
        ("单位部分（元）", _money(unit)),
        ("个人部分（元）", _money(unit)),
        ("应缴合计（元）", _money(unit * 2)),
        ("缴款方式", "委托收款（演示）"),
    ]
    inner = (
        _table(("项目", "内容"), rows, set())
        + '<p class="actions"><button type="button" class="btn primary" disabled>'
        "生成缴存核定单（演示大厅未开通）</button></p>"
    )
    content = _breadcrumb("我要缴存") + _section("本月缴存核定", inner)
    return _page(hall, "我要缴存", content, user=user, current="wyjc")


# --- API -----------------------------------------------------------------------


async def api_challenge(request: web.Request) -> web.StreamResponse:
    hall = request.app[HALL_KEY]
    session = hall.session(request) or hall.new_session()
    session.challenge = Challenge(new_challenge(), hall.clock())
    response = web.json_response(
        {"challenge": session.challenge.value, "expires_in": int(CHALLENGE_TTL.total_seconds())},
        headers=NO_STORE,
    )
    hall.set_cookie(response, session)
    return response


async def _login_request(request: web.Request, challenge_attr: str) -> Any:
    """The checks both logins share: JSON only, our own Origin, a session with an
    outstanding challenge. Returns (hall, session, body) or the error response."""
    hall = request.app[HALL_KEY]
    if request.content_type != "application/json":
        return _error(415, "unsupported_media_type", "请求格式错误：只接受 JSON 格式的数据")
    sent_origin = request.headers.get("Origin")
    if sent_origin is not None and sent_origin != hall.origin:
        return _error(403, "bad_origin", "请求来源不正确，已拒绝")
    session = hall.session(request)
    if session is None or getattr(session, challenge_attr) is None:
        return _error(400, "no_challenge", "登录已失效，请刷新页面后重新登录")
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return _error(400, "bad_request", "请求格式错误")
    return hall, session, body


async def api_login(request: web.Request) -> web.StreamResponse:
    checked = await _login_request(request, "challenge")
    if isinstance(checked, web.Response):
        return checked
    hall, session, body = checked
    token = body.get("token") if isinstance(body, dict) else None
    if isinstance(token, str):
        try:
            token = json.loads(token)
        except ValueError:
            token = None
    if not isinstance(token, dict):
        return _error(400, "bad_request", "请求中缺少登录凭证")

    challenge = session.challenge
    if challenge.used:
        return _error(400, "challenge_used", "该登录请求已使用过，不能重复提交，请重新登录")
    challenge.used = True  # consumed by this attempt, whatever its outcome
    now = hall.clock()
    if now - challenge.issued > CHALLENGE_TTL:
        return _error(400, "challenge_expired", "登录请求已过期（超过 5 分钟），请重新登录")
    if token.get("origin") != hall.origin:
        return _error(403, "wrong_origin", "登录凭证不是为本网站生成的，已拒绝")
    try:
        identity = verify_auth_token(
            token,
            challenge.value,
            hall.origin,
            hall.anchors,
            now=now,
            intermediates=hall.intermediates,
        )
    except VerifyError as exc:
        log.info("login refused: %s %s", exc.code, exc.detail or "")
        return _error(401, exc.code, f"证书登录失败：{exc.message_zh}")
    except (ValueError, TypeError) as exc:
        log.info("login refused: %s", exc)
        return _error(400, "bad_request", "登录凭证格式错误")

    return _log_in(hall, session, identity, now, "login")


def _log_in(
    hall: Hall, session: Session, identity: Identity, now: datetime, how: str
) -> web.Response:
    """Start the logged-in session (both logins end here, so both open the same home)."""
    # a fresh session id on login (no session fixation); the old one is gone
    hall.sessions.pop(session.sid, None)
    logged_in = hall.new_session()
    issuer = next((v for k, v in reversed(_rdns(identity.issuer_dn)) if k == "CN"), "")
    logged_in.user = User(
        company=identity.subject_cn,
        unique_id=identity.hebca_unique_id,
        serial_hex=identity.serial_hex,
        not_after=identity.not_after,
        issuer=issuer or identity.issuer_dn,
        sha256=identity.sha256,
        login_time=now,
    )
    log.info("%s: %s (%s)", how, identity.subject_cn, identity.sha256[:16])
    response = web.json_response(
        {"ok": True, "company": identity.subject_cn, "redirect": f"{BASE}/home"},
        headers=NO_STORE,
    )
    hall.set_cookie(response, logged_in)
    return response


# --- the legacy login (HEBCA-compatible endpoint) ------------------------------
#
# SECURITY NOTE: the legacy protocol signs the bare challenge text (SignText). Unlike
# the modern token (SHA-256(origin) || SHA-256(challenge), helper.verify.signed_bytes),
# nothing in this signature names the site it was made for: a page that got the user
# to sign our challenge elsewhere could log in here with it. What limits that is the
# helper (the endpoint answers configured hall origins only, and signs with the
# login's PIN or a consent dialog) and our single-use, 5-minute, per-session
# challenge. The page says so: 旧版接口不绑定网站地址，建议使用新版登录.


def _b64_field(value: str) -> bytes:
    raw = base64.b64decode("".join(value.split()), validate=True)
    if not raw:
        raise ValueError("empty")
    return raw


async def api_legacy_challenge(request: web.Request) -> web.StreamResponse:
    hall = request.app[HALL_KEY]
    session = hall.session(request) or hall.new_session()
    session.legacy_challenge = Challenge(new_challenge(), hall.clock())
    response = web.json_response(
        {
            "challenge": session.legacy_challenge.value,
            "expires_in": int(CHALLENGE_TTL.total_seconds()),
        },
        headers=NO_STORE,
    )
    hall.set_cookie(response, session)
    return response


async def api_legacy_login(request: web.Request) -> web.StreamResponse:
    """``{cert, signature[, challenge]}``: cert and signature base64 (GetCertB64, SignText).

    The challenge checked is the one stored for this session; a ``challenge`` sent along
    must be that one. It is consumed by the first attempt, whatever its outcome."""
    checked = await _login_request(request, "legacy_challenge")
    if isinstance(checked, web.Response):
        return checked
    hall, session, body = checked
    if not isinstance(body, dict):
        return _error(400, "bad_request", "请求格式错误")
    cert_b64, sig_b64, sent = body.get("cert"), body.get("signature"), body.get("challenge")
    if not isinstance(cert_b64, str) or not isinstance(sig_b64, str):
        return _error(400, "bad_request", "请求中缺少证书或签名")
    if sent is not None and not isinstance(sent, str):
        return _error(400, "bad_request", "请求格式错误")

    challenge = session.legacy_challenge
    if challenge.used:
        return _error(400, "challenge_used", "该登录请求已使用过，不能重复提交，请重新登录")
    challenge.used = True  # consumed by this attempt, whatever its outcome
    now = hall.clock()
    if now - challenge.issued > CHALLENGE_TTL:
        return _error(400, "challenge_expired", "登录请求已过期（超过 5 分钟），请重新登录")
    if sent is not None and not secrets.compare_digest(sent, challenge.value):
        return _error(400, "challenge_mismatch", "签名内容与本次登录请求不一致，请重新登录")
    try:
        cert_der, signature = _b64_field(cert_b64), _b64_field(sig_b64)
    except (ValueError, binascii.Error):
        return _error(400, "bad_request", "证书或签名的格式错误")
    try:
        identity = verify_legacy_signature(
            cert_der,
            signature,
            challenge.value,
            hall.anchors,
            now,
            intermediates=hall.intermediates,
        )
    except VerifyError as exc:
        log.info("legacy login refused: %s %s", exc.code, exc.detail or "")
        return _error(401, exc.code, f"证书登录失败：{exc.message_zh}")
    except (ValueError, TypeError) as exc:
        log.info("legacy login refused: %s", exc)
        return _error(400, "bad_request", "证书或签名的格式错误")
    return _log_in(hall, session, identity, now, "legacy login")


def _rdns(dn: str) -> list[tuple[str, str]]:
    """``CN=a,O=b`` -> [("CN", "a"), ("O", "b")] (display only; escaped commas kept)."""
    parts, out, current = [], [], ""
    escaped = False
    for ch in dn:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    for p in parts:
        key, _, value = p.partition("=")
        out.append((key.strip(), value.strip()))
    return out


async def logout(request: web.Request) -> web.StreamResponse:
    hall = request.app[HALL_KEY]
    sent_origin = request.headers.get("Origin")
    if sent_origin is not None and sent_origin != hall.origin:
        return _error(403, "bad_origin", "请求来源不正确，已拒绝")
    session = hall.session(request)
    if session is not None:
        hall.sessions.pop(session.sid, None)
    response = web.HTTPSeeOther(f"{BASE}/")
    response.del_cookie(COOKIE, path=f"{BASE}/")
    raise response


async def to_hall(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"{BASE}/")


# --- factory and CLI -------------------------------------------------------------


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
        _normalize_base(helper_base),
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


def _demo_ca_files() -> list[Path]:
    from helper.config import demo_dir

    manifest = demo_dir() / "manifest.json"
    if not manifest.exists():
        return []
    ca = json.loads(manifest.read_text("utf-8")).get("ca", {})
    return [Path(ca[k]) for k in ("root", "issuing") if k in ca]


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
    sources = list(ca_pems) or list(_demo_ca_files())
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
    print(f"证书助手地址 (helper): {_normalize_base(helper_base)}", flush=True)
    web.run_app(app, host=host, port=port, print=None, access_log=None)
