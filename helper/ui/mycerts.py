"""我的证书 — every certificate on every inserted USB key, in a window of its own.

Run as ``python -m helper.ui.mycerts [--token SERIAL]`` (the tray spawns it; it
also works alone, without the daemon). The process loads the configuration
(``$CERTHELPER_CONFIG`` is honoured), builds its own read-only
:class:`~helper.services.tokens.TokenService` and closes it on exit.

- A table of the certificates (使用者, 颁发者, 序列号, 有效期至, 剩余天数, USB Key),
  coloured by expiry: red expired, orange ≤ 7 days, amber ≤ 30 days. Unreadable
  certificate objects, keys without any certificate and keys that could not be
  read are rows that say so.
- A details pane for the selected row: every subject field, issuer, serial,
  validity, key type and size, key usage, EKU, SHA-256, HEBCA unique ID, the
  SM2 signing note, the key's PIN state.
- 导出证书 (PEM or DER, by the extension chosen in the save dialog), 修改密码
  (spawns ``python -m helper.ui.changepin --token <serial>``), 证书延期 (opens the
  configured renewal URL), 刷新.
- Every second a background thread (never the Tk thread) re-scans the modules
  (SoftHSM shows new token directories only after re-initialisation) and takes
  a snapshot; the window redraws only when the keys, their certificates or
  their PIN states changed, keeping the selection when it can. Insertion and
  removal therefore show within 2 s.

``--token SERIAL`` (or label) selects that key's first row when it first appears.

Test hooks (environment; they only ever write what the window shows, never a PIN):

``CERTHELPER_UI_PROBE=<path>``
    After every redraw, selection change and export the window rewrites
    ``<path>`` (atomically) with one JSON line per table row (``"type": "row"``:
    kind, token serial/label, PIN state, subject, issuer, serial, not_after,
    days_left, expiry_state, sha256, has_private_key, selected, the shown
    values) and a last line ``"type": "status"`` (keys, certificates, empty,
    refreshed, status text, last export). A change-PIN window opened from here
    writes its own probe lines to ``<path>.changepin``.
``CERTHELPER_EXPORT_DIR=<dir>``
    导出证书 skips the save dialog and writes ``<dir>/<sha256[:16]>.pem``
    (``.der`` when ``CERTHELPER_EXPORT_FORMAT=der``).

Exit codes: 0 closed normally; 2 configuration error; 3 no display / no Tk.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import webbrowser
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drivers.errors import CertHelperError
from drivers.types import TokenInfo
from helper.config import Config, load_config, log_dir
from helper.domain.expiry import ExpiryState
from helper.domain.presentation import PIN_STATE_TEXT, to_pem
from helper.logs import setup_logging
from helper.services.tokens import CertEntry, ModuleStatus, TokenService, TokenView
from helper.ui import style as S

log = logging.getLogger(__name__)

ENV_PROBE = "CERTHELPER_UI_PROBE"
ENV_EXPORT_DIR = "CERTHELPER_EXPORT_DIR"
ENV_EXPORT_FORMAT = "CERTHELPER_EXPORT_FORMAT"
DEFAULT_RENEWAL_URL = "https://www.hebca.com"
POLL_SECONDS = 1.0
#: how often the Tk thread looks for snapshots from the poller (ms)
DRAIN_MS = 100

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_NO_DISPLAY = 3

#: (key, heading, width, anchor, stretch)
COLUMNS = (
    ("subject", "使用者 (Subject)", 250, "w", True),
    ("issuer", "颁发者 (Issuer)", 170, "w", False),
    ("serial", "序列号 (Serial)", 150, "w", False),
    ("until", "有效期至 (Valid to)", 120, "center", False),
    ("days", "剩余天数 (Days left)", 135, "center", False),
    ("key", "USB Key", 130, "w", False),
)

SUBJECT_NAMES = {
    "CN": "名称",
    "O": "单位",
    "OU": "部门",
    "L": "城市",
    "ST": "省份",
    "C": "国家",
    "E": "电子邮箱",
    "SERIALNUMBER": "证件号码",
    "STREET": "地址",
    "T": "职务",
    "G": "名",
    "SN": "姓",
    "UID": "用户标识",
    "DC": "域",
}
KEY_USAGE_NAMES = {
    "digital_signature": "数字签名",
    "non_repudiation": "不可否认",
    "key_encipherment": "密钥加密",
    "data_encipherment": "数据加密",
    "key_agreement": "密钥协商",
    "key_cert_sign": "证书签发",
    "crl_sign": "CRL 签发",
    "encipher_only": "仅加密",
    "decipher_only": "仅解密",
}
EKU_NAMES = {
    "client_auth": "客户端身份验证",
    "server_auth": "服务器身份验证",
    "email_protection": "安全电子邮件",
    "code_signing": "代码签名",
    "time_stamping": "时间戳",
    "ocsp_signing": "OCSP 签名",
    "document_signing": "文档签名",
    "document_signing_ms": "文档签名",
    "smart_card_logon": "智能卡登录",
    "any_extended_key_usage": "任意用途",
}
#: expiry state → the row's tag (its text colour)
EXPIRY_TAGS = {
    ExpiryState.EXPIRED: "expired",
    ExpiryState.URGENT: "urgent",
    ExpiryState.WARNING: "warning",
    ExpiryState.OK: "",
}
#: expiry state → the details pane's text style
EXPIRY_STYLES = {
    ExpiryState.EXPIRED: "danger",
    ExpiryState.URGENT: "warn",
    ExpiryState.WARNING: "warn",
    ExpiryState.OK: "",
}
#: what an old certificate kept after its renewal is called
ARCHIVED_WORDS = "已归档 (archived)"
EXPIRY_WORDS = {
    ExpiryState.OK: "正常 (valid)",
    ExpiryState.WARNING: "30 天内到期 (expires within 30 days)",
    ExpiryState.URGENT: "7 天内到期 (expires within 7 days)",
    ExpiryState.EXPIRED: "已过期 (expired)",
}


# --- rows (pure) ----------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the table. ``kind``: cert | unreadable | no_certificates | token_error."""

    iid: str
    kind: str
    token: TokenInfo
    values: tuple[str, ...]
    tag: str = ""
    entry: CertEntry | None = None
    view: TokenView | None = None

    @property
    def exportable(self) -> bool:
        return self.entry is not None and self.entry.model is not None

    def probe(self, now: datetime, *, selected: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "row",
            "iid": self.iid,
            "kind": self.kind,
            "token_serial": self.token.serial,
            "token_label": self.token.label,
            "pin_state": self.token.pin_state.value,
            "selected": selected,
            "values": list(self.values),
            "tag": self.tag,
        }
        m = self.entry.model if self.entry else None
        if m is not None:
            assert self.entry is not None
            out.update(
                subject=m.subject_cn,
                issuer=m.issuer_cn,
                serial_hex=m.serial_hex,
                not_after=m.not_after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                days_left=m.days_left(now),
                expiry_state=m.expiry_state(now).value,
                sha256=m.sha256,
                has_private_key=self.entry.private_key is not None,
            )
        return out


def elide(text: str, keep: int = 12) -> str:
    """Long serial numbers in the table: the start and the last four."""
    if len(text) <= keep + 2:
        return text
    return f"{text[: keep - 4]}…{text[-4:]}"


def fit_text(text: str, width: int, measure: Callable[[str], int]) -> str:
    """``text`` cut with … so that it is at most ``width`` pixels wide."""
    if measure(text) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if measure(text[:mid].rstrip() + "…") <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


def local_date(dt: datetime) -> str:
    return dt.astimezone().strftime("%Y-%m-%d")


def local_time(dt: datetime) -> str:
    return dt.astimezone().strftime("%Y-%m-%d %H:%M")


def days_text(days: int, state: ExpiryState) -> str:
    if state is ExpiryState.EXPIRED:
        return "已过期 (expired)"
    if days == 0:
        return "今天到期 (today)"
    return f"{days} 天"


def build_rows(views: Sequence[TokenView], now: datetime) -> list[Row]:
    rows: list[Row] = []
    for v in views:
        t = v.token
        for c in sorted(v.certificates, key=_cert_order):
            m = c.model
            if m is None:
                label = c.obj.label or c.obj.key_id.hex() or "—"
                rows.append(
                    Row(
                        c.id,
                        "unreadable",
                        t,
                        (f"⚠ 证书无法读取「{label}」(unreadable)", "—", "—", "—", "—", t.label),
                        "problem",
                        c,
                        v,
                    )
                )
                continue
            state = m.expiry_state(now)
            values = (
                (m.subject_cn or m.subject_dn or "—") + usage_suffix(c),
                m.issuer_cn or m.issuer_dn or "—",
                elide(m.serial_hex),
                local_date(m.not_after),
                ARCHIVED_WORDS if c.archived else days_text(m.days_left(now), state),
                t.label,
            )
            tag = "muted" if c.archived else EXPIRY_TAGS[state]
            rows.append(Row(c.id, "cert", t, values, tag, c, v))
        if v.error is not None:
            text = f"⚠ 读取失败 (cannot read): {v.error.message_zh}"
            rows.append(
                Row(
                    f"token:{t.serial}",
                    "token_error",
                    t,
                    (text, "", "", "", "", t.label),
                    "problem",
                    None,
                    v,
                )
            )
        elif not v.certificates:
            text = "（无证书 no certificates）"
            rows.append(
                Row(
                    f"token:{t.serial}",
                    "no_certificates",
                    t,
                    (text, "", "", "", "", t.label),
                    "muted",
                    None,
                    v,
                )
            )
    return rows


def _cert_order(c: CertEntry) -> tuple[int, str, str]:
    """Readable before unreadable; per subject, the signing certificate first."""
    m = c.model
    if m is None:
        return (2, "", c.id)
    return (1 if m.is_encryption_cert else 0, m.subject_cn, c.id)


def usage_suffix(c: CertEntry) -> str:
    """（签名）/（加密） after the subject: HEBCA keys hold a pair with the same name."""
    m = c.model
    if m is None or not m.key_usage:
        return ""
    if m.is_encryption_cert:
        return "（加密）"
    return "（签名）"


def signature(views: Sequence[TokenView], modules: Sequence[ModuleStatus], now: datetime) -> Any:
    """What a redraw depends on: the keys, their certificates, their PIN states
    (and the day, for the days left)."""
    return (
        now.astimezone().date(),
        tuple((m.path, m.error.code if m.error else None) for m in modules),
        tuple(
            (
                v.token.module_path,
                v.token.serial,
                v.token.label,
                v.token.pin_state,
                v.error.code if v.error else None,
                tuple(
                    (c.id, c.model.sha256 if c.model else None, c.private_key is not None)
                    for c in v.certificates
                ),
                len(v.keys_without_certificate),
            )
            for v in views
        ),
    )


def status_text(views: Sequence[TokenView], refreshed: datetime | None) -> str:
    keys = len(views)
    certs = sum(len(v.certificates) for v in views)
    when = refreshed.astimezone().strftime("%H:%M:%S") if refreshed else "—"
    return (
        f"{keys} 个 USB Key · {certs} 张证书 · 刷新于 {when}"
        f"  ({keys} key{'s' if keys != 1 else ''}, {certs} certificate{'s' if certs != 1 else ''})"
    )


def _words(names: Sequence[str], table: dict[str, str]) -> str:
    if not names:
        return "—"
    return "，".join(f"{table[n]} ({n})" if n in table else n for n in names)


def detail_lines(row: Row, now: datetime) -> list[tuple[str, str, str]]:
    """(key, value, style) lines for the details pane; style: '' | mono | warn | danger."""
    t = row.token
    lines: list[tuple[str, str, str]] = []
    c = row.entry
    if c is not None and c.model is not None:
        m = c.model
        for short, value in reversed(m.subject):  # CN first, as the DN reads
            name = SUBJECT_NAMES.get(short)
            lines.append((f"使用者 {name} ({short})" if name else f"使用者 {short}", value, ""))
        state = m.expiry_state(now)
        left = m.days_left(now)
        validity = f"{local_time(m.not_before)} — {local_time(m.not_after)}"
        if state is ExpiryState.EXPIRED:
            validity += f"    已过期 {-left} 天 ({-left} days ago)"
        else:
            validity += f"    剩余 {left} 天 ({left} days left)"
        key = m.key_type
        if m.key_bits:
            key += f" {m.key_bits} 位 ({m.key_bits} bits)"
        if m.curve:
            key += f"  {m.curve}"
        status = (
            (
                "状态 (State)",
                f"{ARCHIVED_WORDS}：已由延期后的新证书取代 (replaced by its renewal)",
                "",
            )
            if c.archived
            else ("状态 (State)", EXPIRY_WORDS[state], EXPIRY_STYLES[state])
        )
        lines += [
            ("有效期 (Validity)", validity, EXPIRY_STYLES[state]),
            status,
            ("颁发者 (Issuer)", m.issuer_dn or "—", ""),
            ("序列号 (Serial)", m.serial_hex, "mono"),
            ("密钥 (Key)", key, ""),
            ("私钥 (Private key)", "有 (on the key)" if c.private_key else "无 (none)", ""),
            ("密钥用法 (Key usage)", _words(m.key_usage, KEY_USAGE_NAMES), ""),
            ("增强型密钥用法 (EKU)", _words(m.extended_key_usage, EKU_NAMES), ""),
            ("SHA-256 指纹 (Thumbprint)", " ".join(_groups(m.sha256)), "mono"),
            ("证书唯一标识 (Unique ID)", m.hebca_unique_id or "—", ""),
        ]
        if m.signing_note:
            lines.append(("签名 (Signing)", m.signing_note, "warn"))
    elif c is not None:
        lines += [
            ("标签 (Label)", c.obj.label or "—", ""),
            ("CKA_ID", c.obj.key_id.hex() or "—", "mono"),
            ("错误 (Error)", c.error.message() if c.error else "无法解析 (cannot parse)", "danger"),
        ]
    elif row.kind == "token_error" and row.view is not None and row.view.error is not None:
        lines.append(("错误 (Error)", row.view.error.message(), "danger"))
    elif row.kind == "no_certificates":
        lines.append(("证书 (Certificates)", "此 USB Key 中没有证书 (no certificates)", ""))
    if row.view is not None and row.view.keys_without_certificate and c is None:
        n = len(row.view.keys_without_certificate)
        lines.append(
            ("私钥 (Private keys)", f"{n} 个私钥没有对应证书 ({n} without certificate)", "")
        )
    state_style = "" if t.pin_state.value in ("ok", "to_be_changed") else "danger"
    lines += [
        ("USB Key", f"{t.label}    序列号 (serial) {t.serial}", ""),
        ("密码状态 (PIN)", PIN_STATE_TEXT[t.pin_state], state_style),
    ]
    return lines


def _groups(digest: str) -> list[str]:
    return [digest[i : i + 8] for i in range(0, len(digest), 8)]


def export_format(path: str | os.PathLike[str]) -> str:
    """'der' for .der and .cer (Windows' default binary form), else 'pem'."""
    return "der" if Path(path).suffix.lower() in (".der", ".cer") else "pem"


def certificate_file(der: bytes, fmt: str) -> bytes:
    return der if fmt == "der" else to_pem(der).encode("ascii")


def safe_filename(name: str) -> str:
    cleaned = "".join("_" if ch in '/\\:*?"<>|' or ord(ch) < 32 else ch for ch in name).strip()
    return cleaned.strip(".") or "certificate"


def token_matches(token: TokenInfo, query: str | None) -> bool:
    return bool(query) and query in (token.serial, token.label)


# --- the poller -------------------------------------------------------------------


@dataclass
class Snapshot:
    views: list[TokenView]
    modules: list[ModuleStatus]
    taken: datetime


@dataclass
class Failure:
    error: BaseException
    fatal: bool = False


class Poller:
    """Runs in its own thread: builds the TokenService, then every ``interval``
    re-scans and snapshots; results go to ``results``. Closes the service when
    stopped."""

    def __init__(
        self,
        make_service: Callable[[], TokenService],
        interval: float = POLL_SECONDS,
    ) -> None:
        self.make_service = make_service
        self.interval = interval
        self.results: queue.Queue[Snapshot | Failure] = queue.Queue()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="mycerts-poll", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def refresh_now(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _run(self) -> None:
        try:
            service = self.make_service()
        except Exception as exc:  # config errors, a module crashing at load
            self.results.put(Failure(exc, fatal=True))
            return
        try:
            while not self._stop.is_set():
                self.results.put(self.take(service))
                self._wake.wait(self.interval)
                self._wake.clear()
        finally:
            service.close()

    @staticmethod
    def take(service: TokenService) -> Snapshot | Failure:
        try:
            for d in service.drivers:
                try:
                    d.list_tokens(rescan=True)  # SoftHSM: see new token directories
                except CertHelperError as exc:
                    log.debug("rescan of %s failed: %s", d.module_path, exc.code)
            views = service.snapshot()
            return Snapshot(views, list(service.modules), datetime.now(UTC))
        except Exception as exc:
            log.warning("snapshot failed: %s", type(exc).__name__)
            return Failure(exc)


# --- the window -------------------------------------------------------------------


class MyCertsWindow:
    def __init__(self, config: Config, *, token: str | None = None) -> None:
        import tkinter as tk
        from tkinter import ttk

        self.tk, self.ttk = tk, ttk
        self.config = config
        self.preferred_token = token
        self.rows: dict[str, Row] = {}
        self.order: list[str] = []
        self.views: list[TokenView] = []
        self.modules: list[ModuleStatus] = []
        self.refreshed: datetime | None = None
        self._signature: Any = None
        self._notice = ""
        self._exported = ""
        self._closing = False
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self.probe_path = os.environ.get(ENV_PROBE) or None

        self.root = root = tk.Tk(className=S.WM_CLASS)
        root.withdraw()
        root.title(f"{S.TITLE} — 我的证书 (My certificates)")
        self.fonts = S.setup_look(root)
        ttk.Style(root).configure("Empty.TLabel", background=S.CARD)
        ttk.Style(root).configure("EmptyHeading.TLabel", background=S.CARD, font=self.fonts.heading)
        ttk.Style(root).configure(
            "EmptySub.TLabel", background=S.CARD, foreground=S.MUTED, font=self.fonts.sub
        )
        self._build()

        root.protocol("WM_DELETE_WINDOW", self.close)
        for seq in ("<Escape>", "<Control-w>", "<Control-q>"):
            root.bind(seq, lambda _e: self.close())
        root.bind("<F5>", lambda _e: self.refresh())
        root.bind("<Map>", self._on_map, add="+")
        self._mapped = False

        self.poller = Poller(lambda: TokenService.from_config(config))

    # --- layout -------------------------------------------------------------

    def _build(self) -> None:
        tk, ttk, root = self.tk, self.ttk, self.root
        outer = ttk.Frame(root)
        outer.pack(fill="both", expand=True)
        heading, sub = S.header(outer, self.fonts)
        heading.configure(text="我的证书")
        sub.configure(text="My certificates — every certificate on the USB keys you inserted")
        ttk.Separator(outer, orient="horizontal").pack(fill="x")

        statusbar = ttk.Frame(outer, style="Card.TFrame", padding=(24, 6, 24, 6))
        statusbar.pack(fill="x", side="bottom")
        ttk.Separator(outer, orient="horizontal").pack(fill="x", side="bottom")
        self.status = ttk.Label(
            statusbar, style="Sub.TLabel", text="正在读取 USB Key… (reading your USB keys)"
        )
        self.status.pack(side="left", anchor="w")

        self.body = body = ttk.Frame(outer, padding=(24, 10, 24, 14))
        body.pack(fill="both", expand=True)
        self.warning = ttk.Label(body, style="Warn.TLabel", wraplength=900)

        # the table and the details, one above the other
        self.main = ttk.PanedWindow(body, orient="vertical")
        table = ttk.Frame(self.main)
        self.tree = tree = ttk.Treeview(
            table,
            columns=[c[0] for c in COLUMNS],
            show="headings",
            selectmode="browse",
            height=8,
        )
        for key, title, width, anchor, stretch in COLUMNS:
            tree.heading(key, text=title, anchor=anchor)
            tree.column(key, width=width, minwidth=60, anchor=anchor, stretch=stretch)
        tree.bind("<Configure>", self._tree_resized, add="+")
        self._tree_width = 0
        self._pending_see: str | None = None
        tree.tag_configure("expired", foreground=S.DANGER)
        tree.tag_configure("urgent", foreground=S.ORANGE)
        tree.tag_configure("warning", foreground=S.AMBER)
        tree.tag_configure("problem", foreground=S.DANGER)
        tree.tag_configure("muted", foreground=S.MUTED)
        scroll = ttk.Scrollbar(table, orient="vertical", command=tree.yview, takefocus=0)
        tree.configure(yscrollcommand=scroll.set)
        scroll.pack(side="right", fill="y")
        tree.pack(side="left", fill="both", expand=True)
        tree.bind("<<TreeviewSelect>>", lambda _e: self._selection_changed())
        self.main.add(table, weight=3)

        details = ttk.Frame(self.main, padding=(0, 10, 0, 0))
        ttk.Label(details, text="证书详情 (Details)", style="Strong.TLabel").pack(
            anchor="w", pady=(0, 4)
        )
        box = tk.Frame(details, background=S.BORDER, padx=1, pady=1)
        box.pack(fill="both", expand=True)
        tab = 220
        self.details = text = tk.Text(
            box, height=9, wrap="word", relief="flat", background=S.CARD, foreground=S.TEXT,
            padx=12, pady=8, takefocus=0, borderwidth=0, highlightthickness=0,
            tabs=(tab,), font="TkDefaultFont",
        )  # fmt: skip
        dscroll = ttk.Scrollbar(box, orient="vertical", command=text.yview, takefocus=0)
        text.configure(yscrollcommand=dscroll.set)
        dscroll.pack(side="right", fill="y")
        text.pack(side="left", fill="both", expand=True)
        text.tag_configure("line", lmargin2=tab, spacing1=2, spacing3=2)
        text.tag_configure("key", foreground=S.MUTED)
        text.tag_configure("mono", font=self.fonts.mono)
        text.tag_configure("warn", foreground=S.AMBER)
        text.tag_configure("danger", foreground=S.DANGER)
        text.configure(state="disabled")
        self.main.add(details, weight=2)

        # the actions, above the table (made after it: Tab goes table → buttons)
        self.toolbar = bar = ttk.Frame(body, padding=(0, 0, 0, 10))
        ttk.Label(bar, text="证书列表 (Certificates)", style="Strong.TLabel").pack(
            side="left", anchor="s"
        )
        buttons = ttk.Frame(bar)
        buttons.pack(side="right")
        self.btn_export = self._button(buttons, "导出证书 (Export)", self.export)
        self.btn_pin = self._button(buttons, "修改密码 (Change PIN)", self.change_pin)
        self.btn_renew = self._button(buttons, "证书延期 (Renew)", self.renew)
        self.btn_refresh = self._button(buttons, "刷新 (Refresh)", self.refresh)
        bar.pack(fill="x", side="top")

        # no key: a friendly card instead of the table
        self.empty = empty = tk.Frame(
            body, background=S.CARD, highlightthickness=1, highlightbackground=S.BORDER
        )
        inner = ttk.Frame(empty, style="Card.TFrame", padding=(32, 28))
        inner.place(relx=0.5, rely=0.45, anchor="center")
        S.badge(inner, self.fonts, size=64, colour="#b8c0cc").pack(pady=(0, 16))
        self.empty_heading = ttk.Label(inner, style="EmptyHeading.TLabel", justify="center")
        self.empty_heading.pack()
        self.empty_sub = ttk.Label(inner, style="EmptySub.TLabel", justify="center")
        self.empty_sub.pack(pady=(6, 0))
        self.empty_hint = ttk.Label(
            inner, style="EmptySub.TLabel", justify="center", wraplength=560
        )
        self.empty_hint.pack(pady=(14, 0))
        self._show_empty("正在读取 USB Key…", "Reading your USB keys…", "")  # first snapshot

    def _button(self, parent: Any, text: str, command: Callable[[], None]) -> Any:
        button = self.ttk.Button(parent, text=text, command=command)
        button.pack(side="left", padx=(8, 0))
        for key in ("<Return>", "<KP_Enter>"):
            button.bind(key, lambda _e, b=button: (b.invoke(), "break")[1])
        return button

    def _show_empty(self, heading: str, sub: str, hint: str) -> None:
        self.empty_heading.configure(text=heading)
        self.empty_sub.configure(text=sub)
        self.empty_hint.configure(text=hint)
        self.main.pack_forget()
        self.empty.pack(fill="both", expand=True)

    def _show_table(self) -> None:
        self.empty.pack_forget()
        if not self.main.winfo_manager():
            self.main.pack(fill="both", expand=True)

    # --- life -------------------------------------------------------------------

    def run(self) -> int:
        root = self.root
        root.update_idletasks()
        sw, sh = root.winfo_screenwidth(), root.winfo_screenheight()
        width, height = min(1120, sw - 24), min(720, sh - 48)
        root.minsize(min(820, width), min(520, height))
        S.place_centred(root, width, height)
        root.deiconify()
        self.poller.start()
        root.after(DRAIN_MS, self._drain)
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(signal.SIGTERM, lambda *_a: self._request_close())
        try:
            root.mainloop()
        finally:
            self.poller.stop()
        return EXIT_OK

    def _request_close(self) -> None:
        self._closing = True

    def _on_map(self, event: Any) -> None:
        if event.widget is not self.root or self._mapped:
            return
        self._mapped = True
        self.root.after_idle(self.tree.focus_force)

    def close(self) -> None:
        self._closing = True
        self.poller.stop(timeout=0)  # ask it to stop; run() waits for it after the loop
        with contextlib.suppress(self.tk.TclError):
            self.root.destroy()

    def _drain(self) -> None:
        if self._closing:
            self.close()
            return
        latest: Snapshot | Failure | None = None
        with contextlib.suppress(queue.Empty):
            while True:
                latest = self.poller.results.get_nowait()
        if isinstance(latest, Snapshot):
            self.apply(latest)
        elif isinstance(latest, Failure):
            self._failed(latest)
        for serial, child in list(self._children.items()):  # reap change-PIN windows
            if child.poll() is not None:
                del self._children[serial]
        self.root.after(DRAIN_MS, self._drain)

    def _failed(self, failure: Failure) -> None:
        err = failure.error
        text = err.message() if isinstance(err, CertHelperError) else type(err).__name__
        if failure.fatal:
            self._show_empty("无法读取 USB Key", "Cannot read the USB keys", f"{text}")
        self.status.configure(text=f"⚠ 读取失败 (read failed): {text}")

    # --- drawing ----------------------------------------------------------------

    def apply(self, snap: Snapshot) -> None:
        """A new snapshot: redraw only when what it shows changed."""
        now = datetime.now(UTC)
        self.refreshed = snap.taken
        sig = signature(snap.views, snap.modules, now)
        changed = sig != self._signature
        self._signature = sig
        self.views, self.modules = snap.views, snap.modules
        if changed:
            self._redraw(now)
        self._update_status()
        self._write_probe()

    def _redraw(self, now: datetime) -> None:
        tree = self.tree
        self.warning.pack_forget()
        failed = [m for m in self.modules if m.error is not None]
        if failed:
            lines = [f"⚠ 驱动模块加载失败 (module failed): {m.path}" for m in failed]
            self.warning.configure(text="\n".join(lines))
            self.warning.pack(fill="x", pady=(0, 8), before=self.toolbar)

        if not self.views:
            self.rows, self.order = {}, []
            tree.delete(*tree.get_children())
            if not self.modules or all(m.driver is None for m in self.modules):
                self._show_empty(
                    "未找到 USB Key 驱动",
                    "No USB key driver (PKCS#11 module) was found",
                    "请安装 USB Key 厂商提供的驱动程序，或运行「检测修复」。\n"
                    "(Install the driver that came with your USB key, or run 检测修复.)",
                )
            else:
                self._show_empty(
                    "未检测到 USB Key，请插入",
                    "No USB key found — please insert your USB key",
                    "插入后会在这里自动显示，无需刷新。\n"
                    "(It shows up here by itself within a couple of seconds.)",
                )
            self._render_details()
            self._update_buttons()
            return

        self._show_table()
        selected = tree.selection()
        keep = selected[0] if selected else None
        top = tree.yview()[0]
        rows = build_rows(self.views, now)
        tree.delete(*tree.get_children())
        self.rows = {r.iid: r for r in rows}
        self.order = [r.iid for r in rows]
        for r in rows:
            tree.insert("", "end", iid=r.iid, values=r.values, tags=(r.tag,) if r.tag else ())
        self._layout_columns()

        target = None
        if self.preferred_token:
            target = next(
                (r.iid for r in rows if token_matches(r.token, self.preferred_token)), None
            )
            if target is not None:
                self.preferred_token = None
        if target is None and keep in self.rows:
            target = keep
        if target is None and rows:
            target = rows[0].iid
        if target is not None:
            tree.selection_set(target)
            tree.focus(target)
            tree.yview_moveto(top)
            self._pending_see = target
            self._see_pending()
        self._render_details()
        self._update_buttons()

    def _tree_resized(self, event: Any) -> None:
        if event.width != self._tree_width:
            self._tree_width = event.width
            self._layout_columns()
        self._see_pending()

    def _see_pending(self) -> None:
        """Scroll the selected row into view once the table has its size: before
        that, ttk's ``see`` counts no visible rows and scrolls one row too far."""
        iid, tree = self._pending_see, self.tree
        if iid is None:
            return
        if not tree.exists(iid):
            self._pending_see = None
        elif tree.winfo_ismapped() and tree.winfo_height() > 3 * self.fonts.bold.metrics(
            "linespace"
        ):
            self._pending_see = None
            tree.see(iid)

    def _layout_columns(self) -> None:
        """Fit the narrow columns to their contents; subject and issuer share the
        rest, their texts shortened with … where they do not fit."""
        from tkinter import font as tkfont

        tree = self.tree
        total = tree.winfo_width()
        if total <= 1 or not self.order:
            return
        body = tkfont.nametofont("TkDefaultFont", self.root)
        pad = 24
        widths: dict[str, int] = {}
        for i, (key, title, _w, _a, _s) in enumerate(COLUMNS):
            texts = [self.rows[iid].values[i] for iid in self.order]
            widths[key] = max(
                [self.fonts.bold.measure(title) + pad]
                + [body.measure(t) + pad for t in texts if t and not t.startswith(("⚠", "（"))]
            )
        fixed = sum(widths[k] for k in ("serial", "until", "days", "key"))
        rest = max(total - fixed - 4, 300)
        want_subject, want_issuer = widths["subject"], widths["issuer"]
        if want_subject + want_issuer > rest:
            issuer = max(min(want_issuer, rest // 3), 120)
            subject = rest - issuer
        else:
            issuer, subject = want_issuer, rest - want_issuer
        widths["subject"], widths["issuer"] = subject, issuer
        for key, *_ in COLUMNS:
            tree.column(key, width=widths[key])
        for iid in self.order:
            values = list(self.rows[iid].values)
            for i, key in enumerate(("subject", "issuer")):
                values[i] = fit_text(values[i], widths[key] - pad, body.measure)
            tree.item(iid, values=values)

    def _update_status(self) -> None:
        text = status_text(self.views, self.refreshed)
        if self._notice:
            text += f"    {self._notice}"
        self.status.configure(text=text)

    def selected_row(self) -> Row | None:
        sel = self.tree.selection()
        return self.rows.get(sel[0]) if sel else None

    def _selection_changed(self) -> None:
        self._render_details()
        self._update_buttons()
        self._write_probe()

    def _update_buttons(self) -> None:
        row = self.selected_row()
        self.btn_export.state(["!disabled"] if row and row.exportable else ["disabled"])
        has_key = row is not None or len(self.views) == 1
        self.btn_pin.state(["!disabled"] if has_key else ["disabled"])
        urgent = False
        if row and row.entry and row.entry.model:
            urgent = row.entry.model.expiry_state(datetime.now(UTC)) is not ExpiryState.OK
        self.btn_renew.configure(style="Primary.TButton" if urgent else "TButton")

    def _render_details(self) -> None:
        text = self.details
        text.configure(state="normal")
        text.delete("1.0", "end")
        row = self.selected_row()
        if row is None:
            text.insert("end", "请选择一张证书 (select a certificate)", ("key",))
        else:
            for i, (key, value, style) in enumerate(detail_lines(row, datetime.now(UTC))):
                if i:
                    text.insert("end", "\n")
                text.insert("end", key, ("line", "key"))
                text.insert("end", "\t" + value, ("line", style) if style else ("line",))
        text.configure(state="disabled")

    # --- actions ----------------------------------------------------------------

    def refresh(self) -> None:
        self.poller.refresh_now()

    def export(self) -> None:
        row = self.selected_row()
        if row is None or row.entry is None or row.entry.model is None:
            self.root.bell()
            return
        m = row.entry.model
        target = os.environ.get(ENV_EXPORT_DIR)
        if target:
            fmt = "der" if os.environ.get(ENV_EXPORT_FORMAT, "").lower() == "der" else "pem"
            path = str(Path(target) / f"{m.sha256[:16]}.{fmt}")
        else:
            from tkinter import filedialog

            path = filedialog.asksaveasfilename(
                parent=self.root,
                title="导出证书 (Export certificate)",
                initialfile=safe_filename(m.subject_cn or m.serial_hex) + ".pem",
                defaultextension=".pem",
                filetypes=[
                    ("PEM 证书 (Base64)", ("*.pem", "*.crt")),
                    ("DER 证书 (binary)", ("*.der", "*.cer")),
                    ("所有文件 (All files)", "*"),
                ],
            )
            if not path:
                return
            fmt = export_format(path)
        try:
            Path(path).write_bytes(certificate_file(m.der, fmt))
        except OSError as exc:
            from tkinter import messagebox

            messagebox.showerror(
                "导出失败 (Export failed)",
                f"无法写入文件 (cannot write the file):\n{path}\n{exc.strerror or exc}",
                parent=self.root,
            )
            return
        self._exported = path
        self._notice = f"已导出 (exported) {fmt.upper()}: {Path(path).name}"
        self._update_status()
        self._write_probe()

    def change_pin(self) -> None:
        row = self.selected_row()
        token = row.token if row else (self.views[0].token if len(self.views) == 1 else None)
        if token is None:
            self.root.bell()
            return
        child = self._children.get(token.serial)
        if child is not None and child.poll() is None:
            return  # its window is already open
        argv = [sys.executable, "-m", "helper.ui.changepin", "--token", token.serial]
        env = dict(os.environ)
        if self.probe_path:  # the child's probe lines go beside ours, not into our file
            env[ENV_PROBE] = f"{self.probe_path}.changepin"
        try:
            self._children[token.serial] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env)
        except OSError as exc:
            self._notice = f"⚠ 无法打开修改密码窗口 (cannot open): {exc.strerror}"
            self._update_status()

    def renew(self) -> None:
        url = getattr(self.config, "renewal_url", None) or DEFAULT_RENEWAL_URL
        # some browsers' launchers wait for the browser: never on the Tk thread
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        self._notice = f"已打开证书延期网站 (opened) {url}"
        self._update_status()

    # --- the probe (tests) ------------------------------------------------------

    def _write_probe(self) -> None:
        if not self.probe_path:
            return
        now = datetime.now(UTC)
        sel = self.tree.selection()
        lines = [
            self.rows[iid].probe(now, selected=bool(sel) and sel[0] == iid) for iid in self.order
        ]
        lines.append(
            {
                "type": "status",
                "keys": len(self.views),
                "certificates": sum(len(v.certificates) for v in self.views),
                "empty": not self.views,
                "refreshed": self.refreshed.isoformat() if self.refreshed else None,
                "status": self.status.cget("text"),
                "exported": self._exported or None,
            }
        )
        tmp = f"{self.probe_path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
        os.replace(tmp, self.probe_path)


# --- entry point ------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m helper.ui.mycerts", description="证书助手 — 我的证书 (My certificates)"
    )
    p.add_argument("--token", metavar="SERIAL", help="select this key's certificates first")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config()
    except CertHelperError as exc:
        print(f"错误 (error) [{exc.code}]: {exc.message()}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.log_level, log_dir=log_dir() if config.log_to_file else None)
    try:
        import tkinter as tk
    except ImportError:
        print("错误 (error): 缺少 tkinter (tkinter is not installed)", file=sys.stderr)
        return EXIT_NO_DISPLAY
    try:
        window = MyCertsWindow(config, token=args.token)
    except tk.TclError as exc:
        print(f"错误 (error): 无法打开窗口 (cannot open a window): {exc}", file=sys.stderr)
        return EXIT_NO_DISPLAY
    started = time.monotonic()
    code = window.run()
    log.debug("mycerts closed after %.0f s", time.monotonic() - started)
    return code


if __name__ == "__main__":
    sys.exit(main())
