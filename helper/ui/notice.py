"""Notice windows: expiry alerts, the initial-PIN prompt, 技术支持, 关于, 检测修复.

Run as ``python -m helper.ui.notice``; the same pipe protocol as the dialogs
(:mod:`helper.ui.dialogs`), one UTF-8 JSON line each way.

request (stdin)::

    {"kind": "expiry", "alerts": [Alert.to_dict(), ...], "renewal_url": "https://..."}
    {"kind": "initial_pin", "token_label": "...", "token_serial": "..."}
    {"kind": "support"}
    {"kind": "about", "version": "0.1.0"}
    {"kind": "doctor", "findings": [{"level": "ok" | "warning" | "error",
                                     "code": "...", "message": "...", "fix": "..."}, ...]}

    any kind may add "timeout": seconds (none by default: a notice waits)

result (stdout)::

    {"result": "renew"}       expiry: 证书延期
    {"result": "changepin"}   initial_pin: 立即修改
    {"result": "rerun"}       doctor: 重新检测
    {"result": "close"}       知道了 / 稍后 / 关闭, Escape, closing the window; also
                              {"result": "close", "detail": "timeout" | "parent_gone"}
    {"result": "error", "detail": "..."}

The windows are :class:`helper.ui.dialogs.Dialog` underneath: WM class
``certhelper``, a title starting with 证书助手, the 证 header, on top, centred,
the first (default) button focused; Enter presses the focused button, Tab moves
to the next one, Escape closes. The parent keeps stdin open while the window is
up; its end closes the window.

The daemon's side is :func:`show_notice`, which returns the result string and
``"close"`` whenever the child fails.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from helper import __version__
from helper.ui.dialogs import (
    MIN_WIDTH,
    BadRequest,
    Dialog,
    _open,
    parse_timeout,
    serve_one,
)
from helper.ui.style import (
    AMBER,
    BORDER,
    CARD,
    DANGER,
    DANGER_BG,
    MUTED,
    OK,
    ORANGE,
    TEXT,
    WARN_BG,
)

if TYPE_CHECKING:
    from helper.services.alerts import Alert

log = logging.getLogger(__name__)

KINDS = ("expiry", "initial_pin", "support", "about", "doctor")
RESULTS = ("renew", "changepin", "rerun", "close")
#: a notice without a timeout still gets a (never reached) deadline: Tk's timer
#: wants a bounded number, and a day is far beyond any person's answer
_NO_DEADLINE = 24 * 3600.0
#: the most alert cards one expiry notice shows (the rest are counted); with more
#: than one alert the cards are compact (name, days, date, key)
MAX_CARDS = 4

#: the badge behind an orange (≤ 7 days) days-left text
ORANGE_BG = "#fdece3"
#: threshold → (stripe and text colour, badge background) of its card; the colours
#: of 我的证书's rows (amber ≤ 30 days, orange ≤ 7, red expired)
SEVERITY = {
    "30": (AMBER, WARN_BG),
    "7": (ORANGE, ORANGE_BG),
    "1": (DANGER, DANGER_BG),
    "expired": (DANGER, DANGER_BG),
}
#: doctor level → (mark, colour)
MARKS = {"ok": ("✔", OK), "warning": ("⚠", AMBER), "error": ("✘", DANGER)}

INITIAL_PIN_TEXT = "您仍在使用初始密码 123456，为保障安全请立即修改。"
INITIAL_PIN_TEXT_EN = "(This key still has the initial PIN 123456. Change it now to keep it safe.)"

#: 技术支持 (docs/desktop.md): (name, English name, [(field, English field, value)])
CONTACTS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "河北CA沧州办事处",
        "Hebei CA, Cangzhou office",
        (
            ("地址", "Address", "运河区解放西路颐和国际 B 座 602 室"),
            ("电话", "Phone", "13315703324"),
        ),
    ),
    (
        "沧州公积金 QQ 服务群",
        "Housing fund QQ service group",
        (("群号", "Group", "310693415"),),
    ),
    (
        "沧州市住房公积金管理中心",
        "Cangzhou Housing Provident Fund Management Centre",
        (
            ("地址", "Address", "沧州市运河区沧州市政务服务中心 1 层 C 区环岛"),
            ("网厅技术咨询", "Online hall support", "0317-5509911"),
        ),
    ),
)

ABOUT_NAME = "证书助手 certhelper"
ABOUT_LICENCE = "Apache-2.0"
ABOUT_TEXT = "开源、跨平台的数字证书助手：用 USB Key 登录政务网站、签名、改密码、提醒到期。"
ABOUT_TEXT_EN = (
    "Open-source, cross-platform helper for CA-issued USB keys: log in to government "
    "online halls, sign, change the PIN, hear about expiry in time."
)


# --- request parsing ----------------------------------------------------------


def split_bilingual(text: str) -> tuple[str, str]:
    """ "中文 (English)" → ("中文", "English"); text without a trailing
    parenthesis → (text, "")."""
    text = text.strip()
    if text.endswith(")"):
        depth = 0
        for i in range(len(text) - 1, -1, -1):
            if text[i] == ")":
                depth += 1
            elif text[i] == "(":
                depth -= 1
                if depth == 0:
                    if i > 0 and text[i - 1] == " ":
                        return text[: i - 1].rstrip(), text[i + 1 : -1].strip()
                    break
    return text, ""


def _str(data: Mapping[str, Any], key: str, default: str = "") -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise BadRequest(f"invalid field {key!r}")
    return str(value)


def parse_alerts(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request's alerts as display records, one per (key, subject, threshold,
    date), most severe first."""
    alerts = data.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise BadRequest("missing field 'alerts'")
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str, str]] = set()
    for raw in alerts:
        if not isinstance(raw, dict):
            raise BadRequest("invalid field 'alerts'")
        title, message = _str(raw, "title"), _str(raw, "message")
        if not (title or raw.get("title_zh")) or not (message or raw.get("message_zh")):
            raise BadRequest("an alert needs a title and a message")
        t_zh, t_en = split_bilingual(title)
        m_zh, m_en = split_bilingual(message)
        threshold = _str(raw, "threshold", "30")
        days = raw.get("days_left")
        days_left = days if isinstance(days, int) and not isinstance(days, bool) else None
        record = {
            "title_zh": _str(raw, "title_zh", t_zh),
            "title_en": _str(raw, "title_en", t_en),
            "message_zh": _str(raw, "message_zh", m_zh),
            "message_en": _str(raw, "message_en", m_en),
            "subject_cn": _str(raw, "subject_cn"),
            "token_label": _str(raw, "token_label"),
            "date": _str(raw, "date", _str(raw, "not_after")[:10]),
            "threshold": threshold if threshold in SEVERITY else "30",
            "days_left": days_left,
            "days_text": _str(raw, "days_text"),
        }
        # an alert without a subject is told apart by its message
        key = (
            record["token_label"],
            record["subject_cn"] or record["message_zh"],
            record["threshold"],
            record["date"],
        )
        if key in seen:
            continue
        seen.add(key)
        out.append(record)
    rank = {t: i for i, t in enumerate(("expired", "1", "7", "30"))}
    out.sort(
        key=lambda r: (rank[r["threshold"]], r["days_left"] if r["days_left"] is not None else 0)
    )
    return out


def parse_findings(data: Mapping[str, Any]) -> list[dict[str, str]]:
    findings = data.get("findings")
    if not isinstance(findings, list):
        raise BadRequest("missing field 'findings'")
    out = []
    for raw in findings:
        if not isinstance(raw, dict):
            raise BadRequest("invalid field 'findings'")
        level = _str(raw, "level", "warning")
        out.append(
            {
                "level": level if level in MARKS else "warning",
                "code": _str(raw, "code"),
                "message": _str(raw, "message") or _str(raw, "code") or "—",
                "fix": _str(raw, "fix"),
            }
        )
    return out


def doctor_summary(findings: list[dict[str, str]]) -> tuple[str, str]:
    """(text, level) of the summary line."""
    problems = sum(1 for f in findings if f["level"] != "ok")
    if not problems:
        return "一切正常 (everything is fine)", "ok"
    level = "error" if any(f["level"] == "error" for f in findings) else "warning"
    noun = "problem" if problems == 1 else "problems"
    return f"发现 {problems} 个问题 ({problems} {noun} found)", level


# --- text layout --------------------------------------------------------------

#: may not begin a line (closing punctuation)
NO_START = frozenset("，。、；：？！）」』》】〉”’…％,.;:?!)]}%")
#: may not end a line (opening punctuation)
NO_END = frozenset("（「『《【〈“‘([{")


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _segments(paragraph: str) -> list[tuple[str, str]]:
    """Unbreakable pieces of a paragraph, each with the spaces before it (dropped
    where the line breaks). A line may break between two Chinese characters (not
    before closing or after opening punctuation) and at spaces between two Latin
    words; spaces next to Chinese text glue, so 剩余 4 天 and 于 2026-11-30 到 stay
    whole."""
    units: list[tuple[str, str]] = []  # (kind, text): "cjk" | "word" | "space"
    for ch in paragraph:
        kind = "space" if ch == " " else "cjk" if _is_wide(ch) else "word"
        if kind != "cjk" and units and units[-1][0] == kind:
            units[-1] = (kind, units[-1][1] + ch)
        else:
            units.append((kind, ch))
    out: list[tuple[str, str]] = []
    cur, gap = "", ""
    for i, (kind, text) in enumerate(units):
        prev = units[i - 1] if i else None
        if kind == "space":
            after = units[i + 1] if i + 1 < len(units) else None
            if prev and after and prev[0] == after[0] == "word":
                out.append((cur, gap))
                cur, gap = "", text
            elif cur:
                cur += text  # glued to the Chinese beside it
            continue
        if (
            cur
            and prev is not None
            and prev[0] != "space"
            and "cjk" in (prev[0], kind)
            and text[0] not in NO_START
            and prev[1][-1] not in NO_END
        ):
            out.append((cur, gap))
            cur, gap = "", ""
        cur += text
    if cur:
        out.append((cur, gap))
    return out


def wrap_text(text: str, measure: Callable[[str], int], width: int) -> str:
    """``text`` with line breaks so no line is wider than ``width`` (as ``measure``
    says), breaking the way Chinese text breaks (see :func:`_segments`). Tk's own
    wrapping breaks only at spaces, which splits 剩余 4 天 and leaves half-empty
    lines in Chinese."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for seg, gap in _segments(paragraph):
            candidate = line + gap + seg if line else seg
            if not line or measure(candidate) <= width:
                line = candidate
            else:
                lines.append(line)
                line = seg
            while measure(line) > width and len(line) > 1:  # one piece wider than a line
                cut = max((n for n in range(1, len(line)) if measure(line[:n]) <= width), default=1)
                lines.append(line[:cut])
                line = line[cut:].lstrip(" ")
        lines.append(line)
    return "\n".join(lines)


# --- windows ------------------------------------------------------------------


class Notice(Dialog):
    """A Dialog whose answers are notice results and that waits unless told otherwise."""

    #: the body's width inside its padding (the dialog's minimum width)
    ROOM = MIN_WIDTH - 48

    def __init__(self, timeout: float | None) -> None:
        from tkinter import font as tkfont

        self.timeout = timeout
        super().__init__(timeout if timeout is not None else _NO_DEADLINE)
        self.font_normal = tkfont.nametofont("TkDefaultFont", self.root)

    def _tick(self) -> None:
        if self.timeout is not None:
            super()._tick()

    def cancel(self) -> None:
        self.finish({"result": "close"})

    def answer(self, result: str) -> None:
        self.finish({"result": result})

    def finish(self, result: dict[str, Any]) -> None:
        outcome = result.get("result")
        if outcome == "timeout":
            if self.timeout is None:
                return  # the stand-in deadline: a notice without a timeout waits
            result = {"result": "close", "detail": "timeout"}
        elif outcome == "cancel":  # Escape, the window closed, or the parent went away
            detail = result.get("detail")
            result = {"result": "close", **({"detail": detail} if detail else {})}
        super().finish(result)

    # --- building blocks ---------------------------------------------------------

    def wrap(self, text: str, font: Any, width: int) -> str:
        return wrap_text(text, font.measure, width)

    def add_para(self, text: str, *, style: str = "TLabel", font: Any = None,
                 pady: tuple[int, int] = (8, 0), room: int | None = None) -> Any:  # fmt: skip
        """A paragraph across the body, wrapped the Chinese way."""
        used = font or (self.font_small if style == "Muted.TLabel" else self.font_normal)
        pad = 20 if style in ("Warn.TLabel", "Danger.TLabel", "Info.TLabel", "Ok.TLabel") else 0
        label = self.ttk.Label(
            self.body,
            text=self.wrap(text, used, (room or self.ROOM) - pad),
            style=style,
            font=font,
            justify="left",
        )
        return self.add_wide(label, pady=pady)

    def add_text(self, width_px: int) -> tuple[Any, Any]:
        """A read-only, selectable text box ``width_px`` wide inside; Ctrl+C copies
        the selection, the right-click menu offers 复制 and 全部复制. Callers insert
        pre-wrapped lines, then call :meth:`fit_text`."""
        tk, ttk = self.tk, self.ttk
        frame = ttk.Frame(self.body, style="Card.TFrame")
        zero = self.font_normal.measure("0")
        text = tk.Text(
            frame, height=1, width=max(width_px // zero, 1), wrap="word", relief="flat",
            background=CARD, foreground=TEXT, font=self.font_normal, padx=12, pady=8,
            takefocus=0, cursor="xterm", highlightthickness=1, highlightbackground=BORDER,
            highlightcolor=BORDER, selectbackground="#cfe0fa", selectforeground=TEXT,
            inactiveselectbackground="#cfe0fa",
        )  # fmt: skip
        text.pack(side="left", fill="both", expand=True)
        self.text = text
        self._text_px = 0
        #: the width lines may take inside the box (a whole number of "0"s)
        self.text_room = max(width_px // zero, 1) * zero

        def copy(everything: bool = False) -> str:
            ranges = text.tag_ranges("sel")
            if everything or ranges:
                first, last = ("1.0", "end-1c") if everything else (ranges[0], ranges[1])
                self.root.clipboard_clear()
                self.root.clipboard_append(text.get(first, last))
            return "break"

        menu = tk.Menu(self.root, tearoff=0)
        menu.add_command(label="复制 (Copy)", command=copy)
        menu.add_command(label="全部复制 (Copy all)", command=lambda: copy(True))
        self.root.bind("<<Copy>>", lambda _e: copy())
        text.bind("<Button-3>", lambda e: menu.tk_popup(e.x_root, e.y_root))
        return frame, text

    def put_lines(self, text: Any, lines: str, tags: tuple[str, ...], font: Any,
                  *, first: str = "", first_tags: tuple[str, ...] = (),
                  spacing: int = 0) -> None:  # fmt: skip
        """Insert pre-wrapped ``lines`` (``first`` before the first one, in its own
        tags) and count their height."""
        for i, line in enumerate(lines.split("\n")):
            if i == 0 and first:
                text.insert("end", first, first_tags)
            text.insert("end", line + "\n", tags)
            self._text_px += font.metrics("linespace") + (spacing if i == 0 else 0)

    def fit_text(self, frame: Any, text: Any, max_lines: int | None = None) -> None:
        """Size the box to its lines (up to ``max_lines``, then it scrolls) and freeze it."""
        text.delete("end-2c", "end-1c")  # the last line's newline
        text.configure(state="disabled")
        lines = max(math.ceil(self._text_px / self.font_normal.metrics("linespace")), 1)
        if max_lines is not None and lines > max_lines:
            scroll = self.ttk.Scrollbar(frame, orient="vertical", command=text.yview, takefocus=0)
            text.configure(yscrollcommand=scroll.set)
            scroll.pack(side="right", fill="y", before=text)  # kept when the window shrinks
            lines = max_lines
        text.configure(height=lines)


class ExpiryNotice(Notice):
    title_zh = "证书到期提醒"
    title_en = "Certificate expiry"

    def __init__(self, alerts: list[dict[str, Any]], renewal_url: str, timeout: float | None):
        super().__init__(timeout)
        first = alerts[0]
        if len(alerts) == 1:
            self.set_heading(first["title_zh"], first["title_en"])
        else:
            n = len(alerts)
            self.set_heading(f"{n} 张证书需要延期", f"{n} certificates need renewal")
        if len(alerts) == 1:
            self._card(first, full=True)
        else:
            self.add_para(
                "以下证书即将到期或已过期，请及时办理证书延期。\n"
                "(These certificates expire soon or have expired. Please renew them in time.)",
                pady=(0, 10),
            )
            for record in alerts[:MAX_CARDS]:
                self._card(record, full=False)
        if len(alerts) > MAX_CARDS:
            more = len(alerts) - MAX_CARDS
            self.add_para(
                f"另有 {more} 张证书，请在「我的证书」中查看 ({more} more: see 我的证书)",
                style="Muted.TLabel",
            )
        if renewal_url:
            self.add_para(
                f"点击「证书延期」打开延期网站 (Renew opens) {renewal_url}",
                style="Muted.TLabel",
                pady=(12, 0),
            )
        renew = self.add_button("证书延期 (Renew)", lambda: self.answer("renew"), primary=True)
        self.add_button("知道了 (OK)", lambda: self.answer("close"))
        self.focus_first(renew)

    def _card(self, r: dict[str, Any], *, full: bool) -> None:
        """A certificate's card: a stripe in its severity's colour, its name and days
        left; in full, the alert's message in both languages; then the key and date."""
        tk = self.tk
        fg, bg = SEVERITY[r["threshold"]]
        card = tk.Frame(self.body, background=CARD, highlightthickness=1,
                        highlightbackground=BORDER)  # fmt: skip
        tk.Frame(card, background=fg, width=5).pack(side="left", fill="y")
        inner = tk.Frame(card, background=CARD, padx=16, pady=12 if full else 8)
        inner.pack(side="left", fill="both", expand=True)
        inner.columnconfigure(0, weight=1)
        room = self.ROOM - 2 - 5 - 32

        def label(text: str, font: Any, colour: str, row: int, pady: tuple[int, int]) -> None:
            tk.Label(inner, text=self.wrap(text, font, room), background=CARD, foreground=colour,
                     font=font, anchor="w", justify="left").grid(
                row=row, column=0, columnspan=2, sticky="w", pady=pady)  # fmt: skip

        badge = r["days_text"] or ("已过期" if r["threshold"] == "expired" else "")
        badge_px = self.font_bold.measure(badge) + 20 + 12 if badge else 0
        name = r["subject_cn"] or r["title_zh"]
        tk.Label(inner, text=self.wrap(name, self.font_origin, room - badge_px), background=CARD,
                 foreground=TEXT, font=self.font_origin, anchor="w", justify="left").grid(
            row=0, column=0, sticky="w")  # fmt: skip
        if badge:
            tk.Label(inner, text=badge, background=bg, foreground=fg, font=self.font_bold,
                     padx=10, pady=2).grid(row=0, column=1, sticky="ne", padx=(12, 0))  # fmt: skip
        if full:
            label(r["message_zh"], self.font_normal, TEXT, 1, (8, 0))
            if r["message_en"]:
                label(r["message_en"], self.font_small, MUTED, 2, (3, 0))
        facts = []
        if r["date"]:
            facts.append(f"有效期至 (Valid to)：{r['date']}")
        if r["token_label"]:
            facts.append(f"USB Key：{r['token_label']}")
        if facts:
            if full:
                tk.Frame(inner, background=BORDER, height=1).grid(
                    row=3, column=0, columnspan=2, sticky="we", pady=(10, 6)
                )
            label("      ".join(facts), self.font_small, MUTED, 4, (0, 0) if full else (2, 0))
        self.add_wide(card, pady=(0 if self._row == 0 else 10 if full else 8, 0))


class InitialPinNotice(Notice):
    title_zh = "修改初始密码"
    title_en = "Change the initial PIN"

    def __init__(self, token_label: str, token_serial: str, timeout: float | None) -> None:
        super().__init__(timeout)
        self.set_heading("请修改 USB Key 初始密码", "Change the initial PIN of your USB key")
        self.add_row("USB Key", token_label or "—", style="Strong.TLabel")
        if token_serial:
            self.add_row("序列号 (Serial)", token_serial)
        self.add_para(
            f"{INITIAL_PIN_TEXT}\n{INITIAL_PIN_TEXT_EN}",
            style="Warn.TLabel",
            font=self.font_bold,
            pady=(10, 0),
        )
        self.add_para(
            "初始密码人人皆知，他人拿到 USB Key 即可冒用您的证书。\n"
            "(Everyone knows the initial PIN: whoever holds the key could use your certificate.)",
            style="Muted.TLabel",
            pady=(10, 0),
        )
        change = self.add_button(
            "立即修改 (Change now)", lambda: self.answer("changepin"), primary=True
        )
        self.add_button("稍后 (Later)", lambda: self.answer("close"))
        self.focus_first(change)


class SupportNotice(Notice):
    title_zh = "技术支持"
    title_en = "Support"

    INDENT = 18

    def __init__(self, timeout: float | None) -> None:
        super().__init__(timeout)
        self.set_heading("技术支持", "Support: whom to call")
        room = self.ROOM - 2 - 24  # the box's border and padding
        frame, text = self.add_text(room)
        room = self.text_room
        text.tag_configure("name", font=self.font_bold, spacing1=10)
        text.tag_configure("first", spacing1=0)
        text.tag_configure("en", foreground=MUTED, font=self.font_small)
        text.tag_configure("field", foreground=MUTED)
        text.tag_configure("indent", lmargin1=self.INDENT, lmargin2=self.INDENT)
        for i, (name, english, fields) in enumerate(CONTACTS):
            name_tags = ("name",) if i else ("name", "first")
            self.put_lines(text, self.wrap(name, self.font_bold, room), name_tags, self.font_bold,
                           spacing=10 if i else 0)  # fmt: skip
            self.put_lines(text, self.wrap(english, self.font_small, room), ("en",),
                           self.font_small)  # fmt: skip
            for field, field_en, value in fields:
                key = f"{field} ({field_en})："
                lines = self.wrap(key + value, self.font_normal, room - self.INDENT)
                lines = lines[len(key) :] if lines.startswith(key) else lines
                self.put_lines(text, lines, ("indent",), self.font_normal, first=key,
                               first_tags=("indent", "field"))  # fmt: skip
        self.fit_text(frame, text)
        self.add_wide(frame, pady=(0, 0))
        self.add_para(
            "选中文字后按 Ctrl+C 或右键复制 (select text, then Ctrl+C or right-click to copy)",
            style="Muted.TLabel",
            pady=(6, 0),
        )
        self.focus_first(self.add_button("关闭 (Close)", self.cancel, primary=True))


class AboutNotice(Notice):
    title_zh = "关于"
    title_en = "About"

    def __init__(self, version: str, timeout: float | None) -> None:
        super().__init__(timeout)
        self.set_heading(ABOUT_NAME, f"版本 (version) {version}")
        self.add_para(ABOUT_TEXT, pady=(0, 0))
        self.add_para(ABOUT_TEXT_EN, style="Muted.TLabel", pady=(3, 10))
        self.add_row("版本 (Version)", version, style="Strong.TLabel")
        self.add_row("许可证 (Licence)", ABOUT_LICENCE)
        self.add_row("Python", sys.version.split()[0])
        self.focus_first(self.add_button("关闭 (Close)", self.cancel, primary=True))


class DoctorNotice(Notice):
    title_zh = "检测修复"
    title_en = "Check and repair"
    resizable = True

    #: the most text lines the list shows before it scrolls
    MAX_LINES = 16
    #: the list's width inside (pixels): wider than the other notices
    WIDTH = 600

    def __init__(self, findings: list[dict[str, str]], timeout: float | None) -> None:
        super().__init__(timeout)
        self.set_heading("检测修复", "Check and repair: what is wrong and how to fix it")
        summary, level = doctor_summary(findings)
        style = {"ok": "Ok.TLabel", "warning": "Warn.TLabel", "error": "Danger.TLabel"}[level]
        self.add_para(summary, style=style, font=self.font_bold, pady=(0, 10), room=self.WIDTH)
        frame, text = self.add_text(self.WIDTH)
        indent = self.font_bold.measure("✘") + 12
        room = self.text_room - indent
        for lvl, (_mark, colour) in MARKS.items():
            text.tag_configure(f"mark-{lvl}", foreground=colour, font=self.font_bold)
        text.tag_configure("message", lmargin1=indent, lmargin2=indent)
        text.tag_configure("head", lmargin1=0, spacing1=6)
        text.configure(tabs=(indent,))
        text.tag_configure("problem", font=self.font_bold)
        text.tag_configure("fix", foreground=MUTED, font=self.font_small)
        for f in findings:
            mark, _colour = MARKS[f["level"]]
            error = f["level"] == "error"
            font = self.font_bold if error else self.font_normal
            tags = ("message", "problem") if error else ("message",)
            lines = self.wrap(f["message"], font, room)
            # the mark hangs in the margin (its line starts at 0), a tab stop at the indent
            self.put_lines(text, lines, tags, font, first=f"{mark}\t", first_tags=(
                "message", "head", f"mark-{f['level']}"), spacing=6)  # fmt: skip
            if f["fix"]:
                fix = self.wrap(f"→ {f['fix']}", self.font_small, room)
                self.put_lines(text, fix, ("message", "fix"), self.font_small)
        if not findings:
            self.put_lines(text, "（没有检测项目 nothing was checked）", ("fix",), self.font_small)
        self.fit_text(frame, text, self.MAX_LINES)
        self.body.rowconfigure(self._row, weight=1)
        self.add_wide(frame, pady=(0, 0))
        rerun = self.add_button(
            "重新检测 (Check again)", lambda: self.answer("rerun"), primary=True
        )
        self.add_button("关闭 (Close)", self.cancel)
        self.focus_first(rerun)


# --- entry point --------------------------------------------------------------


def _timeout(data: Mapping[str, Any]) -> float | None:
    if data.get("timeout") is None:
        return None
    return parse_timeout(dict(data))


def run_request(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadRequest("the request is not a JSON object")
    kind = data.get("kind")
    timeout = _timeout(data)
    if kind == "expiry":
        alerts = parse_alerts(data)
        url = _str(data, "renewal_url")
        return _open(lambda: ExpiryNotice(alerts, url, timeout))
    if kind == "initial_pin":
        label, serial = _str(data, "token_label"), _str(data, "token_serial")
        return _open(lambda: InitialPinNotice(label, serial, timeout))
    if kind == "support":
        return _open(lambda: SupportNotice(timeout))
    if kind == "about":
        version = _str(data, "version") or __version__
        return _open(lambda: AboutNotice(version, timeout))
    if kind == "doctor":
        findings = parse_findings(data)
        return _open(lambda: DoctorNotice(findings, timeout))
    raise BadRequest("unknown kind")


def main(stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Read one request line, show the notice, write one result line."""
    return serve_one(run_request, stdin, stdout)


# --- the daemon's side ----------------------------------------------------------


def expiry_request(alerts: Iterable[Alert], renewal_url: str) -> dict[str, Any]:
    """The notice request for expiry ``alerts`` (as AlertScheduler.check returns them)."""
    return {
        "kind": "expiry",
        "alerts": [a.to_dict() for a in alerts],
        "renewal_url": renewal_url,
    }


async def show_notice(
    request: dict[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
    grace: float = 5.0,
) -> str:
    """Show a notice in a child process; return its result ("renew", "changepin",
    "rerun" or "close"). Any failure of the child (no display, a crash, garbage on
    its stdout, no answer ``grace`` seconds after the request's own timeout) is
    logged and answers "close". Cancelling the call closes the window."""
    reply = await run_notice(request, env=env, python=python, grace=grace)
    result = reply.get("result")
    if result == "error":
        log.warning("%s notice failed: %s", request.get("kind"), str(reply.get("detail"))[:200])
        return "close"
    if result not in RESULTS:
        log.warning("%s notice answered something unexpected", request.get("kind"))
        return "close"
    log.info("%s notice: %s", request.get("kind"), result)
    return str(result)


async def run_notice(
    request: dict[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
    grace: float = 5.0,
) -> dict[str, Any]:
    """The child's whole reply; ``{"result": "error", ...}`` when it gave none."""
    from helper.errors import DialogFailed, UserTimeout
    from helper.ui.prompter import exchange

    timeout = request.get("timeout")
    limit = float(timeout) + grace if isinstance(timeout, int | float) and timeout > 0 else None
    try:
        return await exchange("helper.ui.notice", request, python=python, env=env, limit=limit)
    except UserTimeout:
        return {"result": "error", "detail": "timeout"}
    except DialogFailed as exc:
        return {"result": "error", "detail": exc.detail or "the notice failed"}


if __name__ == "__main__":  # python -m helper.ui.notice
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # nothing left to do; do not wait for the stdin watcher
