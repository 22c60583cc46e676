"""我的证书's Tk window: draws what the model (model.py) says and forwards clicks.

Test hooks (environment; they only ever write what the window shows, never a PIN):
see helper/ui/mycerts/__init__.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import webbrowser
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drivers.errors import CertHelperError
from helper.config import Config
from helper.services.tokens import TokenService
from helper.ui import style as S
from helper.ui.mycerts.export import certificate_file, export_format, safe_filename
from helper.ui.mycerts.model import READING, EmptyScreen, MyCertsModel
from helper.ui.mycerts.poller import Failure, Poller, Snapshot
from helper.ui.mycerts.rows import Row, detail_lines, fit_text

ENV_PROBE = "CERTHELPER_UI_PROBE"
ENV_EXPORT_DIR = "CERTHELPER_EXPORT_DIR"
ENV_EXPORT_FORMAT = "CERTHELPER_EXPORT_FORMAT"
DEFAULT_RENEWAL_URL = "https://www.hebca.com"
#: how often the Tk thread looks for snapshots from the poller (ms)
DRAIN_MS = 100
EXIT_OK = 0

#: (key, heading, width, anchor, stretch)
COLUMNS = (
    ("subject", "使用者 (Subject)", 250, "w", True),
    ("issuer", "颁发者 (Issuer)", 170, "w", False),
    ("serial", "序列号 (Serial)", 150, "w", False),
    ("until", "有效期至 (Valid to)", 120, "center", False),
    ("days", "剩余天数 (Days left)", 135, "center", False),
    ("key", "USB Key", 130, "w", False),
)


class MyCertsWindow:
    def __init__(self, config: Config, *, token: str | None = None) -> None:
        import tkinter as tk
        from tkinter import ttk

        self.tk, self.ttk = tk, ttk
        self.config = config
        self.model = MyCertsModel(token)
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
        self._show_empty(READING)  # until the first snapshot

    def _button(self, parent: Any, text: str, command: Callable[[], None]) -> Any:
        button = self.ttk.Button(parent, text=text, command=command)
        button.pack(side="left", padx=(8, 0))
        for key in ("<Return>", "<KP_Enter>"):
            button.bind(key, lambda _e, b=button: (b.invoke(), "break")[1])
        return button

    def _show_empty(self, screen: EmptyScreen) -> None:
        self.empty_heading.configure(text=screen.heading)
        self.empty_sub.configure(text=screen.sub)
        self.empty_hint.configure(text=screen.hint)
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
            self._show_empty(EmptyScreen("无法读取 USB Key", "Cannot read the USB keys", text))
        self.status.configure(text=f"⚠ 读取失败 (read failed): {text}")

    # --- drawing ----------------------------------------------------------------

    def apply(self, snap: Snapshot) -> None:
        """A new snapshot: redraw only when what it shows changed."""
        if self.model.apply(snap, datetime.now(UTC)):
            self._redraw()
        self._update_status()
        self._write_probe()

    def _redraw(self) -> None:
        tree, model = self.tree, self.model
        self.warning.pack_forget()
        warnings = model.module_warnings()
        if warnings:
            self.warning.configure(text="\n".join(warnings))
            self.warning.pack(fill="x", pady=(0, 8), before=self.toolbar)
        selected = tree.selection()
        top = tree.yview()[0]
        tree.delete(*tree.get_children())
        empty = model.empty_screen()
        if empty is not None:
            self._show_empty(empty)
            self._render_details()
            self._update_buttons()
            return
        self._show_table()
        for iid in model.order:
            r = model.rows[iid]
            tree.insert("", "end", iid=r.iid, values=r.values, tags=(r.tag,) if r.tag else ())
        self._layout_columns()
        target = model.selection_after_redraw(selected[0] if selected else None)
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
        rows, order = self.model.rows, self.model.order
        if total <= 1 or not order:
            return
        body = tkfont.nametofont("TkDefaultFont", self.root)
        pad = 24
        widths: dict[str, int] = {}
        for i, (key, title, _w, _a, _s) in enumerate(COLUMNS):
            texts = [rows[iid].values[i] for iid in order]
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
        for iid in order:
            values = list(rows[iid].values)
            for i, key in enumerate(("subject", "issuer")):
                values[i] = fit_text(values[i], widths[key] - pad, body.measure)
            tree.item(iid, values=values)

    def _update_status(self) -> None:
        self.status.configure(text=self.model.status())

    def selected_row(self) -> Row | None:
        sel = self.tree.selection()
        return self.model.rows.get(sel[0]) if sel else None

    def _selection_changed(self) -> None:
        self._render_details()
        self._update_buttons()
        self._write_probe()

    def _update_buttons(self) -> None:
        buttons = self.model.buttons(self.selected_row(), datetime.now(UTC))
        self.btn_export.state(["!disabled"] if buttons.export else ["disabled"])
        self.btn_pin.state(["!disabled"] if buttons.change_pin else ["disabled"])
        self.btn_renew.configure(style="Primary.TButton" if buttons.renew_primary else "TButton")

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
                value = value.replace("\n", "\n\t")  # later lines under the first
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
        self.model.exported_to(path, fmt, Path(path).name)
        self._update_status()
        self._write_probe()

    def change_pin(self) -> None:
        token = self.model.pin_token(self.selected_row())
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
            self.model.notice = f"⚠ 无法打开修改密码窗口 (cannot open): {exc.strerror}"
            self._update_status()

    def renew(self) -> None:
        url = getattr(self.config, "renewal_url", None) or DEFAULT_RENEWAL_URL
        # some browsers' launchers wait for the browser: never on the Tk thread
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        self.model.notice = f"已打开证书延期网站 (opened) {url}"
        self._update_status()

    # --- the probe (tests) ------------------------------------------------------

    def _write_probe(self) -> None:
        if not self.probe_path:
            return
        sel = self.tree.selection()
        lines = self.model.probe_lines(
            sel[0] if sel else None, self.status.cget("text"), datetime.now(UTC)
        )
        tmp = f"{self.probe_path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
        os.replace(tmp, self.probe_path)
