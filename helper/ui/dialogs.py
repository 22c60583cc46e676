"""The dialog process: one JSON request in, one window, one JSON result out.

Run as ``python -m helper.ui``. The protocol, one line each way (UTF-8 JSON):

request (stdin)::

    {"dialog": "pin" | "consent" | "picker", "timeout": 120, ...fields...}

    pin      the fields of helper.services.prompts.PinRequest
    consent  the fields of helper.services.prompts.ConsentRequest
    picker   {"origin": str, "insecure_origin": bool, "choices": [CertChoice fields, ...]}

result (stdout)::

    {"result": "ok", "pin": "..."}                         pin
    {"result": "ok", "choice": "once" | "always" | "deny"} consent
    {"result": "ok", "id": "..."}                          picker
    {"result": "cancel"} | {"result": "timeout"} | {"result": "error", "detail": "..."}

The parent keeps stdin open while the dialog is up; end-of-file on stdin (the
parent went away) cancels the dialog. The PIN leaves this process only on
stdout: it is never logged, never written to stderr and never put in a file.
A PIN request for a locked token is refused without opening a window
(``{"result": "error", "detail": "pin_locked"}``).

Every window has WM class ``certhelper``, a title starting with 证书助手, stays on
top, opens centred with its first field focused; Enter submits (in the consent
dialog: presses the focused button), Escape and closing the window cancel, and
the request's ``timeout`` (default 120 s) ends it with ``timeout``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, TextIO

from drivers.types import PinState
from helper.services.prompts import CertChoice, ConsentRequest, PinRequest
from helper.ui.style import (  # noqa: F401  (re-exported: the dialogs' look lives there)
    ACCENT,
    ACCENT_ACTIVE,
    ACCENT_DISABLED,
    BG,
    BORDER,
    CARD,
    CJK_FAMILIES,
    DANGER,
    DANGER_BG,
    INFO,
    INFO_BG,
    MONO_FAMILIES,
    MUTED,
    SELECT_BG,
    TEXT,
    TITLE,
    WARN,
    WARN_BG,
    WM_CLASS,
    apply_style,
    header,
    setup_fonts,
)

DEFAULT_TIMEOUT = 120.0
MAX_TIMEOUT = 3600.0
#: the most text the consent dialog shows of the data to be signed
MAX_TEXT_CHARS = 4000
#: no dialog is narrower (pixels)
MIN_WIDTH = 580

#: operation → (Chinese, English) as the PIN dialog names it
PIN_OPERATIONS = {
    "auth.authenticate": ("登录", "Log in"),
    "sign.data": ("签名", "Sign"),
    "renewal.request": ("申请证书延期", "Request the certificate's renewal"),
}
#: operation → (Chinese, English) as the consent dialog asks for it
CONSENT_OPERATIONS = {
    "connect": ("连接证书助手", "connect to the certificate helper"),
    "certificates.list": ("读取证书列表", "read your certificate list"),
    "auth.authenticate": ("使用证书登录", "log in with your certificate"),
    "sign.data": ("签名数据", "sign data with your certificate"),
    "renewal.request": ("为证书申请延期", "request the renewal of your certificate"),
    "renewal.install": (
        "把延期后的证书写入 USB Key",
        "write the renewed certificate onto your USB key",
    ),
}


class BadRequest(Exception):
    """The request line cannot be understood (the message names no field values)."""


def report_exception(exc: type[BaseException], tb: Any) -> None:
    """Write a traceback to stderr: frames and the exception type, never its message
    (a message could quote a value, and the parent logs stderr)."""
    sys.stderr.write("".join(traceback.format_tb(tb)) + f"{exc.__name__}\n")
    sys.stderr.flush()


# --- request parsing ----------------------------------------------------------


def _build(cls: Any, data: dict[str, Any], convert: dict[str, Callable[[Any], Any]]) -> Any:
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            try:
                kwargs[f.name] = convert[f.name](value) if f.name in convert else value
            except (TypeError, ValueError) as exc:
                raise BadRequest(f"invalid field {f.name!r}") from exc
        elif f.default is dataclasses.MISSING:
            raise BadRequest(f"missing field {f.name!r}")
    return cls(**kwargs)


def _opt_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not an int")
    return value


def parse_timeout(data: dict[str, Any]) -> float:
    value = data.get("timeout", DEFAULT_TIMEOUT)
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadRequest("invalid field 'timeout'")
    return min(float(value), MAX_TIMEOUT)


def parse_pin(data: dict[str, Any]) -> PinRequest:
    return _build(
        PinRequest,
        data,
        {"pin_state": PinState, "pin_min_len": _opt_int, "pin_max_len": _opt_int},
    )


def _details(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list | tuple):
        raise TypeError("not a list")
    rows = []
    for row in value:
        if not isinstance(row, list | tuple) or len(row) != 2:
            raise TypeError("not a pair")
        if not all(isinstance(v, str) for v in row):
            raise TypeError("not strings")
        rows.append((row[0], row[1]))
    return tuple(rows)


def parse_consent(data: dict[str, Any]) -> ConsentRequest:
    return _build(ConsentRequest, data, {"data_size": _opt_int, "details": _details})


def parse_picker(data: dict[str, Any]) -> tuple[str, bool, list[CertChoice]]:
    origin = data.get("origin")
    choices = data.get("choices")
    if not isinstance(origin, str):
        raise BadRequest("missing field 'origin'")
    if not isinstance(choices, list) or not choices:
        raise BadRequest("missing field 'choices'")
    parsed = []
    for c in choices:
        if not isinstance(c, dict):
            raise BadRequest("invalid field 'choices'")
        parsed.append(_build(CertChoice, c, {"days_left": int}))
    return origin, bool(data.get("insecure_origin", False)), parsed


def pin_length_range(request: PinRequest) -> tuple[int, int | None]:
    """The PIN lengths the OK button accepts: (min, max or None)."""
    lo = max(request.pin_min_len or 1, 1)
    hi = request.pin_max_len
    if hi is not None and hi < lo:  # a token reporting nonsense: trust only the minimum
        hi = None
    return lo, hi


def pin_length_hint(lo: int, hi: int | None) -> str:
    if hi is not None:
        if hi == lo:
            return f"{lo} 位 ({lo} characters)"
        return f"{lo}–{hi} 位 ({lo}–{hi} characters)"
    if lo > 1:
        return f"至少 {lo} 位 (at least {lo} characters)"
    return ""


def data_size_text(size: int) -> str:
    return f"数据大小 {size} 字节 ({size} bytes)"


def group_hex(digest: str) -> str:
    """A hex digest in groups of 8, 4 groups a line, for reading aloud and comparing."""
    groups = [digest[i : i + 8] for i in range(0, len(digest), 8)]
    return "\n".join(" ".join(groups[i : i + 4]) for i in range(0, len(groups), 4))


def is_plain_http(origin: str) -> bool:
    """Marked 不安全 even if the caller forgot to say so."""
    return origin.strip().lower().startswith("http:")


def clip_text(text: str) -> str:
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return (
        text[:MAX_TEXT_CHARS]
        + f"\n…（仅显示前 {MAX_TEXT_CHARS} 个字符，共 {len(text)} 个"
        + f" / first {MAX_TEXT_CHARS} of {len(text)} characters shown）"
    )


# --- windows ------------------------------------------------------------------


class Dialog:
    """The frame every dialog shares: header, origin card, body, buttons, countdown."""

    title_zh = ""
    title_en = ""
    resizable = False

    def __init__(self, timeout: float) -> None:
        import tkinter as tk
        from tkinter import ttk

        self.tk = tk
        self.ttk = ttk
        self.result: dict[str, Any] | None = None
        self._focus_first: Any = None
        self._mapped = False
        self._parent_gone = threading.Event()
        self.root = root = tk.Tk(className=WM_CLASS)
        root.withdraw()
        root.report_callback_exception = self._callback_error  # type: ignore[method-assign]
        root.title(f"{TITLE} — {self.title_zh} ({self.title_en})")
        root.configure(background=BG)
        root.resizable(self.resizable, self.resizable)
        with contextlib.suppress(tk.TclError):
            root.attributes("-topmost", True)

        self._fonts = fonts = setup_fonts(root)
        self.font_heading = fonts.heading
        self.font_sub = fonts.sub
        self.font_origin = fonts.origin
        self.font_bold = fonts.bold
        self.font_small = fonts.small
        self.font_mono = fonts.mono
        self.font_pin = fonts.pin
        self.font_icon = fonts.icon
        apply_style(root, fonts)

        outer = ttk.Frame(root, style="TFrame")
        outer.pack(fill="both", expand=True)
        self._header(outer)
        ttk.Separator(outer, orient="horizontal").pack(fill="x")
        self.body = ttk.Frame(outer, padding=(24, 16, 24, 8))
        self.body.pack(fill="both", expand=True)
        self.body.columnconfigure(1, weight=1)
        self._row = 0
        self.footer = ttk.Frame(outer, padding=(24, 8, 24, 18))
        self.footer.pack(fill="x", side="bottom")
        self.countdown = ttk.Label(self.footer, style="Muted.TLabel")
        self.countdown.pack(side="left", anchor="s")
        self.buttons = ttk.Frame(self.footer)
        self.buttons.pack(side="right")

        root.protocol("WM_DELETE_WINDOW", self.cancel)
        root.bind("<Escape>", lambda _e: self.cancel())
        root.bind("<Map>", self._on_map, add="+")
        self._deadline_ms = int(timeout * 1000)
        self._left = int(timeout + 0.999)
        root.after(self._deadline_ms, lambda: self.finish({"result": "timeout"}))
        self._tick()
        threading.Thread(target=self._watch_stdin, name="stdin-eof", daemon=True).start()
        root.after(250, self._poll_parent)

    # --- look -------------------------------------------------------------

    def _header(self, parent: Any) -> None:
        self.heading, self.subheading = header(parent, self._fonts)

    def set_heading(self, zh: str, en: str) -> None:
        self.heading.configure(text=zh)
        self.subheading.configure(text=en)

    def add_row(self, key: str, widget_or_text: Any, *, style: str = "Value.TLabel") -> Any:
        self.ttk.Label(self.body, text=key, style="Key.TLabel").grid(
            row=self._row, column=0, sticky="nw", padx=(0, 16), pady=3
        )
        if isinstance(widget_or_text, str):
            widget = self.ttk.Label(self.body, text=widget_or_text, style=style, wraplength=400)
        else:
            widget = widget_or_text
        widget.grid(row=self._row, column=1, sticky="w", pady=3)
        self._row += 1
        return widget

    def add_wide(self, widget: Any, pady: tuple[int, int] = (8, 0)) -> Any:
        widget.grid(row=self._row, column=0, columnspan=2, sticky="we", pady=pady)
        self._row += 1
        return widget

    def add_note(self, text: str, style: str, *, bold: bool = False) -> Any:
        """A full-width coloured box whose text wraps at the dialog's width."""
        label = self.ttk.Label(
            self.body,
            text=text,
            style=style,
            font=self.font_bold if bold else None,
            wraplength=MIN_WIDTH - 72,  # the body's width less its padding and the box's
        )
        return self.add_wide(label, pady=(10, 0))

    def add_origin(self, origin: str, insecure: bool) -> None:
        insecure = insecure or is_plain_http(origin)
        cell = self.ttk.Frame(self.body)
        self.ttk.Label(cell, text=origin, style="Origin.TLabel", wraplength=360).pack(
            side="left", anchor="w"
        )
        if insecure:
            self.ttk.Label(cell, text="⚠ 不安全 (not secure)", style="Insecure.TLabel").pack(
                side="left", padx=(10, 0)
            )
        self.add_row("网站 (Site)", cell)

    def add_insecure_note(self, origin: str, insecure: bool) -> None:
        if insecure or is_plain_http(origin):
            self.add_note(
                "该网站使用未加密的 http 连接，网址可能被冒用，请确认后再继续。\n"
                "(This site uses plain http; its address can be spoofed.)",
                "Danger.TLabel",
            )

    def add_button(self, text: str, command: Callable[[], None], *, primary: bool = False) -> Any:
        button = self.ttk.Button(
            self.buttons,
            text=text,
            command=command,
            style="Primary.TButton" if primary else "TButton",
        )
        button.pack(side="left", padx=(8, 0))
        for key in ("<Return>", "<KP_Enter>"):
            button.bind(key, lambda _e, b=button: (b.invoke(), "break")[1])
        return button

    def focus_first(self, widget: Any) -> None:
        self._focus_first = widget
        widget.focus_set()

    # --- life -------------------------------------------------------------

    def _on_map(self, event: Any) -> None:
        if event.widget is not self.root or self._mapped:
            return
        self._mapped = True
        self.root.lift()
        if self._focus_first is not None:
            self.root.after_idle(self._focus_first.focus_force)

    def _tick(self) -> None:
        if self.result is not None:
            return
        self.countdown.configure(text=f"{self._left} 秒后自动关闭 (closes in {self._left} s)")
        self._left -= 1
        if self._left >= 0:
            self.root.after(1000, self._tick)

    def _watch_stdin(self) -> None:
        # the raw descriptor, not sys.stdin: a thread blocked inside the buffered
        # reader would hold its lock when the interpreter shuts down
        try:
            fd = sys.stdin.fileno()
            while os.read(fd, 4096):
                pass
        except (OSError, ValueError):
            pass
        self._parent_gone.set()

    def _poll_parent(self) -> None:
        if self.result is not None:
            return
        if self._parent_gone.is_set():
            self.finish({"result": "cancel", "detail": "parent_gone"})
            return
        self.root.after(250, self._poll_parent)

    def _callback_error(self, exc: type[BaseException], value: BaseException, tb: Any) -> None:
        report_exception(exc, tb)
        self.finish({"result": "error", "detail": f"internal: {exc.__name__}"})

    def cancel(self) -> None:
        self.finish({"result": "cancel"})

    def finish(self, result: dict[str, Any]) -> None:
        if self.result is not None:
            return
        self.result = result
        with contextlib.suppress(self.tk.TclError):
            self.root.destroy()

    def show(self) -> dict[str, Any]:
        root = self.root
        root.update_idletasks()
        w, h = max(root.winfo_reqwidth(), MIN_WIDTH), root.winfo_reqheight()
        x = max((root.winfo_screenwidth() - w) // 2, 0)
        y = max((root.winfo_screenheight() - h) // 2, 0)
        root.geometry(f"{w}x{h}+{x}+{y}")
        root.deiconify()
        root.mainloop()
        return self.result or {"result": "cancel"}


class PinDialog(Dialog):
    title_zh = "输入密码"
    title_en = "Enter PIN"

    def __init__(self, request: PinRequest, timeout: float) -> None:
        super().__init__(timeout)
        ttk = self.ttk
        self.lo, self.hi = pin_length_range(request)
        self.set_heading("请输入 USB Key 密码", "Enter the PIN of your USB key")
        self.add_origin(request.origin, request.insecure_origin)
        zh, en = PIN_OPERATIONS.get(request.operation, (request.operation, request.operation))
        self.add_row("操作 (Action)", f"{zh} ({en})", style="Strong.TLabel")
        self.add_row("证书 (Certificate)", request.cert_subject or "—")
        key = request.token_label or "—"
        if request.token_serial:
            key += f"   序列号 (serial) {request.token_serial}"
        self.add_row("USB Key", key)

        self.pin = self.tk.StringVar(self.root, value="")
        cell = ttk.Frame(self.body)
        self.entry = ttk.Entry(
            cell, textvariable=self.pin, show="●", width=24, font=self.font_pin,
            exportselection=False,
        )  # fmt: skip
        self.entry.pack(anchor="w")
        for seq in ("<<Copy>>", "<<Cut>>"):
            self.entry.bind(seq, lambda _e: "break")
        notes = ttk.Frame(cell)
        notes.pack(anchor="w", fill="x", pady=(3, 0))
        ttk.Label(notes, text=pin_length_hint(self.lo, self.hi), style="Muted.TLabel").pack(
            side="left"
        )
        self.caps = ttk.Label(notes, text="", style="Caps.TLabel")
        self.caps.pack(side="left", padx=(12, 0))
        self.add_row("密码 (PIN)", cell)

        if request.pin_state is PinState.FINAL_TRY:
            self.add_note(
                "仅剩最后一次机会，输错将锁定 USB Key！\n"
                "(Last try: a wrong PIN will lock the USB key.)",
                "FinalTry.TLabel",
                bold=True,
            )
        elif request.pin_state is PinState.COUNT_LOW:
            self.add_note(
                "密码已输错多次，再输错几次将锁定 USB Key，请仔细核对。\n"
                "(Wrong PINs were entered several times; a few more will lock the key.)",
                "Warn.TLabel",
            )
        elif request.pin_state is PinState.TO_BE_CHANGED:
            self.add_note(
                "该 USB Key 仍在使用初始密码，请尽快修改。\n"
                "(This key still has its initial PIN; please change it.)",
                "Info.TLabel",
            )
        self.add_insecure_note(request.origin, request.insecure_origin)

        self.ok = self.add_button("确定 (OK)", self.submit, primary=True)
        self.add_button("取消 (Cancel)", self.cancel)
        self.pin.trace_add("write", lambda *_a: self._update())
        self._update()
        for key in ("<Return>", "<KP_Enter>"):
            self.entry.bind(key, lambda _e: (self.submit(), "break")[1])
        self.entry.bind("<KeyPress>", self._caps_lock, add="+")
        self.focus_first(self.entry)

    def _valid(self) -> bool:
        n = len(self.pin.get())
        return n >= self.lo and (self.hi is None or n <= self.hi)

    def _update(self) -> None:
        self.ok.state(["!disabled"] if self._valid() else ["disabled"])

    def _caps_lock(self, event: Any) -> None:
        on = bool(event.state & 0x2)
        self.caps.configure(text="大写锁定已打开 (Caps Lock is on)" if on else "")

    def submit(self) -> None:
        if not self._valid():
            self.root.bell()
            return
        self.finish({"result": "ok", "pin": self.pin.get()})


class ConsentDialog(Dialog):
    title_zh = "网站请求授权"
    title_en = "Site permission"

    def __init__(self, request: ConsentRequest, timeout: float) -> None:
        super().__init__(timeout)
        zh, en = CONSENT_OPERATIONS.get(request.operation, (request.operation, request.operation))
        self.set_heading(f"是否允许该网站{zh}？", f"Allow this site to {en}?")
        self.add_origin(request.origin, request.insecure_origin)
        self.add_row("操作 (Action)", f"{zh} ({en})", style="Strong.TLabel")
        if request.cert_subject:
            self.add_row("证书 (Certificate)", request.cert_subject)
        if request.cert_issuer:
            self.add_row("颁发者 (Issuer)", request.cert_issuer)
        for key, value in request.details:
            self.add_row(key, value)
        if request.operation == "sign.data":
            if request.text is not None:
                self._text_box(request)
            else:
                self._digest(request)
        self.add_insecure_note(request.origin, request.insecure_origin)

        self.once = self.add_button("允许一次 (Allow once)", lambda: self._choose("once"),
                                    primary=True)  # fmt: skip
        if request.allow_always:
            self.always = self.add_button("始终允许 (Always allow)", lambda: self._choose("always"))
        self.add_button("拒绝 (Deny)", lambda: self._choose("deny"))
        self.focus_first(self.once)

    def _text_box(self, request: ConsentRequest) -> None:
        tk, ttk = self.tk, self.ttk
        self.add_wide(
            ttk.Label(self.body, text="待签名内容 (Content to be signed)", style="Key.TLabel"),
            pady=(8, 2),
        )
        frame = ttk.Frame(self.body, style="Card.TFrame")
        text = tk.Text(
            frame, height=8, width=56, wrap="char", relief="flat", background=CARD,
            foreground=TEXT, font=self.font_sub, padx=8, pady=6, takefocus=0,
            highlightthickness=1, highlightbackground=BORDER, highlightcolor=BORDER,
        )  # fmt: skip
        scroll = ttk.Scrollbar(frame, orient="vertical", command=text.yview, takefocus=0)
        text.configure(yscrollcommand=scroll.set)
        text.insert("1.0", clip_text(request.text or ""))
        text.configure(state="disabled")
        text.pack(side="left", fill="both", expand=True)
        scroll.pack(side="right", fill="y")
        self.add_wide(frame, pady=(0, 0))
        if request.data_size is not None:
            self.add_wide(
                ttk.Label(
                    self.body,
                    text=data_size_text(request.data_size),
                    style="Muted.TLabel",
                ),
                pady=(2, 0),
            )

    def _digest(self, request: ConsentRequest) -> None:
        ttk = self.ttk
        cell = ttk.Frame(self.body)
        if request.data_size is not None:
            ttk.Label(cell, text=data_size_text(request.data_size)).pack(anchor="w")
        if request.data_sha256:
            ttk.Label(cell, text="SHA-256", style="Muted.TLabel").pack(anchor="w", pady=(4, 0))
            ttk.Label(cell, text=group_hex(request.data_sha256), font=self.font_mono).pack(
                anchor="w"
            )
        if request.data_size is None and not request.data_sha256:
            ttk.Label(cell, text="（未提供数据摘要 no summary given）", style="Muted.TLabel").pack(
                anchor="w"
            )
        self.add_row("待签名数据 (Data)", cell)

    def _choose(self, choice: str) -> None:
        self.finish({"result": "ok", "choice": choice})


class PickerDialog(Dialog):
    title_zh = "选择证书"
    title_en = "Choose a certificate"
    resizable = True

    #: (key, heading, widest it grows to fit its contents, anchor)
    COLUMNS = (
        ("subject", "使用者 (Subject)", 260, "w"),
        ("issuer", "颁发者 (Issuer)", 240, "w"),
        ("until", "有效期至 (Valid to)", 200, "center"),
        ("days", "剩余天数 (Days left)", 200, "center"),
        ("key", "USB Key", 180, "w"),
    )

    def __init__(
        self, origin: str, insecure: bool, choices: list[CertChoice], timeout: float
    ) -> None:
        super().__init__(timeout)
        ttk = self.ttk
        self.choices = choices
        self.set_heading("请选择要使用的证书", "Choose the certificate to use")
        self.add_origin(origin, insecure)
        self.add_insecure_note(origin, insecure)

        frame = ttk.Frame(self.body)
        self.tree = tree = ttk.Treeview(
            frame,
            columns=[c[0] for c in self.COLUMNS],
            show="headings",
            selectmode="browse",
            height=min(max(len(choices), 3), 8),
        )
        tree.tag_configure("expired", foreground=DANGER)
        tree.tag_configure("soon", foreground=WARN)
        rows = []
        for c in choices:
            if c.days_left < 0:
                days, tags = "已过期 (expired)", ("expired",)
            else:
                days, tags = f"{c.days_left} 天", ("soon",) if c.days_left <= 30 else ()
            values = (c.subject_cn, c.issuer_cn, c.not_after[:10], days, c.token_label)
            rows.append(values)
            tree.insert("", "end", iid=str(len(rows) - 1), tags=tags, values=values)
        for i, (key, title, widest, anchor) in enumerate(self.COLUMNS):
            fit = max(
                [self.font_bold.measure(title) + 24]
                + [tkfont_measure(self.root, str(v[i])) + 24 for v in rows]
            )
            tree.heading(key, text=title, anchor=anchor)
            tree.column(key, width=min(fit, widest), minwidth=60, anchor=anchor)
        scroll = ttk.Scrollbar(frame, orient="vertical", command=tree.yview, takefocus=0)
        tree.configure(yscrollcommand=scroll.set)
        tree.pack(side="left", fill="both", expand=True)
        if len(choices) > 8:
            scroll.pack(side="right", fill="y")
        self.body.rowconfigure(self._row, weight=1)
        self.add_wide(frame, pady=(10, 0))
        self.detail = self.add_wide(ttk.Label(self.body, style="Muted.TLabel"), pady=(6, 0))

        tree.selection_set("0")
        tree.focus("0")
        tree.bind("<<TreeviewSelect>>", lambda _e: self._show_detail())
        tree.bind("<Double-1>", self._double_click)
        self._show_detail()
        self.root.bind("<Return>", lambda _e: self.pick())
        self.root.bind("<KP_Enter>", lambda _e: self.pick())
        self.add_button("确定 (OK)", self.pick, primary=True)
        self.add_button("取消 (Cancel)", self.cancel)
        self.focus_first(tree)

    def _show_detail(self) -> None:
        sel = self.tree.selection()
        if not sel:
            self.detail.configure(text="")
            return
        c = self.choices[int(sel[0])]
        expires = c.not_after.replace("T", " ").removesuffix("Z") + " UTC" if c.not_after else "—"
        self.detail.configure(
            text=f"序列号 (Serial) {c.serial_hex or '—'}      到期 (Expires) {expires}"
        )

    def _double_click(self, event: Any) -> None:
        row = self.tree.identify_row(event.y)
        if row and self.tree.identify_region(event.x, event.y) in ("cell", "tree"):
            self.tree.selection_set(row)
            self.pick()

    def pick(self) -> None:
        sel = self.tree.selection()
        if not sel:
            self.root.bell()
            return
        self.finish({"result": "ok", "id": self.choices[int(sel[0])].id})


def tkfont_measure(root: Any, text: str) -> int:
    from tkinter import font as tkfont

    return tkfont.nametofont("TkDefaultFont", root).measure(text)


# --- entry point --------------------------------------------------------------


def run_request(data: dict[str, Any]) -> dict[str, Any]:
    """Show the dialog the request names and return its result (no exceptions for
    the person's answers: cancel and timeout are results)."""
    if not isinstance(data, dict):
        raise BadRequest("the request is not a JSON object")
    kind = data.get("dialog")
    timeout = parse_timeout(data)
    if kind == "pin":
        request = parse_pin(data)
        if request.pin_state is PinState.LOCKED:
            return {"result": "error", "detail": "pin_locked"}  # never a window
        return _open(lambda: PinDialog(request, timeout))
    if kind == "consent":
        consent = parse_consent(data)
        return _open(lambda: ConsentDialog(consent, timeout))
    if kind == "picker":
        origin, insecure, choices = parse_picker(data)
        return _open(lambda: PickerDialog(origin, insecure, choices, timeout))
    raise BadRequest("unknown dialog")


def _open(factory: Callable[[], Dialog]) -> dict[str, Any]:
    try:
        import tkinter as tk
    except ImportError:
        return {"result": "error", "detail": "no_tkinter"}
    try:
        dialog = factory()
    except tk.TclError as exc:
        if "display" in str(exc):  # "couldn't connect to display", "no display name"
            return {"result": "error", "detail": f"no_display: {exc}"}
        raise
    return dialog.show()


def serve_one(
    handle: Callable[[Any], dict[str, Any]],
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """The child side of the protocol: read one request line, answer one result
    line (an error result rather than silence, whatever goes wrong)."""
    out = stdout or sys.stdout
    try:
        if stdin is not None:
            line = stdin.readline()
        else:
            line = sys.stdin.buffer.readline().decode("utf-8")
        if not line.strip():
            raise BadRequest("no request")
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise BadRequest("the request is not JSON") from exc
        result = handle(data)
    except BadRequest as exc:
        result = {"result": "error", "detail": f"bad_request: {exc}"}
    except Exception as exc:  # a UI bug must still answer the parent
        report_exception(type(exc), exc.__traceback__)
        result = {"result": "error", "detail": f"internal: {type(exc).__name__}"}
    try:
        out.write(json.dumps(result) + "\n")
        out.flush()
    except (OSError, ValueError):
        return 1
    return 0


def main(stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Read one request line, run the dialog, write one result line."""
    return serve_one(run_request, stdin, stdout)
