"""The demo hall's pages: the login pages and the business pages (made-up data, 演示数据)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from aiohttp import web

from helper.demo.hall.state import BASE, HALL_KEY, Hall, User, require_user
from helper.demo.web import CST, NO_STORE, cn_date, cn_time, csp, esc, helper_meta, template

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
            f'<span class="user" id="user-name">{esc(user.company)}</span>'
            f'<form id="logout-form" method="post" action="{BASE}/logout">'
            '<button type="submit" class="linklike" id="logout">退出</button></form>'
        )
        links = [("home", "首页")] + [(slug, name) for slug, name, _ in MENUS]
        nav = "".join(
            f'<a class="nav-item{" current" if slug == current else ""}" '
            f'href="{BASE}/{slug}">{name}</a>'
            for slug, name in links
        )
    if scripts is None:  # the modern pages: the hall's own copy of certhelper.js, hall.js
        scripts = (f"{BASE}/certhelper.js", f"{BASE}/static/hall.js")
    tags = [helper_meta(hall.helper_base, hall.hebca_port)]
    tags += [f'<script defer src="{esc(src)}"></script>' for src in scripts]
    text = template("layout.html").substitute(
        title=esc(title),
        scripts="\n".join(tags),
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


async def login_page(request: web.Request) -> web.StreamResponse:
    hall = request.app[HALL_KEY]
    session = hall.session(request)
    if session is not None and session.user is not None:
        raise web.HTTPFound(f"{BASE}/home")
    content = template("login.html").substitute()
    return _page(hall, "单位登录", content, user=None, body_class="login")


async def legacy_page(request: web.Request) -> web.StreamResponse:
    """The old-style login through the HEBCA-compatible endpoint (hebca-legacy-client.js).

    Its scripts are the hall's own; it connects to ws://localhost:<hebca_port> only."""
    hall = request.app[HALL_KEY]
    session = hall.session(request)
    if session is not None and session.user is not None:
        raise web.HTTPFound(f"{BASE}/home")
    content = template("legacy.html").substitute(hebca_port=int(hall.hebca_port))
    port = int(hall.hebca_port)
    policy = csp("'self'", f"'self' ws://localhost:{port} http://127.0.0.1:{port}")
    return _page(
        hall,
        "旧版助手登录",
        content,
        user=None,
        body_class="login legacy",
        scripts=(
            f"{BASE}/certhelper.js",  # its diagnose() says why the endpoint is out of reach
            f"{BASE}/static/hebca-legacy-client.js",
            f"{BASE}/static/legacy-login.js",
        ),
        headers={"Content-Security-Policy": policy},
    )


_ICONS = {
    "gjjcx": '<path d="M4 20V10M10 20V4M16 20v-7M22 20H2"/>',
    "ygxx": '<circle cx="9" cy="8" r="3.5"/><path d="M2.5 20c.8-4 3.4-6 6.5-6s5.7 2 6.5 6"/>'
    '<path d="M16 5.5a3 3 0 0 1 0 5.5M18.5 14c1.6.8 2.6 2.8 3 6"/>',
    "gjyw": '<rect x="4" y="3" width="16" height="18" rx="2"/><path d="M8 8h8M8 12h8M8 16h5"/>',
    "wyjc": '<rect x="2.5" y="6" width="19" height="13" rx="2"/><path d="M2.5 10h19M6 15h4"/>',
}


async def home(request: web.Request) -> web.StreamResponse:
    hall, user = require_user(request)
    tiles = "\n".join(
        f'    <a class="tile" href="{BASE}/{slug}" id="menu-{slug}">'
        f'<svg viewBox="0 0 24 24" aria-hidden="true">{_ICONS[slug]}</svg>'
        f"<b>{name}</b><span>{desc}</span></a>"
        for slug, name, desc in MENUS
    )
    active = _active()
    content = template("home.html").substitute(
        company=esc(user.company),
        unique_id=esc(user.unique_id or "（证书中无唯一标识）"),
        serial=esc(user.serial_hex),
        not_after=esc(cn_date(user.not_after)),
        issuer=esc(user.issuer),
        login_time=esc(cn_time(user.login_time)),
        tiles=tiles,
        paid_until=esc(_paid_until(hall.clock())),
        headcount=len(active),
        monthly=_money(sum(_monthly(e[3]) for e in active)),
    )
    return _page(hall, "首页", content, user=user, current="home")


def _table(headers: Iterable[str], rows: Iterable[Iterable[object]], numeric: set[int]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if i in numeric else ''}>{esc(c)}</td>" for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _section(title: str, inner: str, note: str = "") -> str:
    note_html = f'<p class="muted">{esc(note)}</p>' if note else ""
    return (
        f'<section class="card"><h2 class="section-title">{esc(title)} '
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


def _paid_until(now: datetime) -> str:
    """缴至年月: the last month 公积金查询 lists as 已到账 (the month before this one)."""
    year, month = _months(now, 1)[0].split("-")
    return f"{year} 年 {int(month)} 月"


def _breadcrumb(name: str) -> str:
    return f'<p class="crumb"><a href="{BASE}/home">首页</a> &gt; {esc(name)}</p>'


async def gjjcx(request: web.Request) -> web.StreamResponse:
    hall, user = require_user(request)
    active = _active()
    monthly = sum(_monthly(e[3]) for e in active)
    months = _months(hall.clock(), 6)
    balance = 386_512.40
    stats = (
        '<div class="stats">'
        f"<div><span>单位名称</span><b>{esc(user.company)}</b></div>"
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
    hall, user = require_user(request)
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
    hall, user = require_user(request)
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
    hall, user = require_user(request)
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
