"""修改密码's Tk window: draws the model's state (model.py) and forwards typing and
clicks; the change itself runs in a worker thread so the window stays responsive.

Test hooks: see helper/ui/changepin/__init__.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import threading
from collections.abc import Callable
from typing import Any

from drivers.protocol import TokenDriver
from drivers.types import Pin, PinState, TokenInfo
from helper.domain.presentation import token_state_text
from helper.services.tokens import TokenService
from helper.ui import style as S
from helper.ui.changepin.model import After, ChangePinModel, Form
from helper.ui.changepin.outcome import (
    LOCKED_HELP,
    LOCKED_TEXT,
    Outcome,
    change_pin,
    outcome_message,
)
from helper.ui.changepin.policy import MISMATCH, new_pin_hint

ENV_PROBE = "CERTHELPER_UI_PROBE"
#: how long the success message stays before the window closes (ms)
SUCCESS_CLOSE_MS = 1500


def tell_daemon_pin_changed(serial: str) -> None:
    """Tell a running tray daemon (if any) that this key left its initial PIN, so the
    tray and its notices follow at once whichever window changed it. In the background:
    no daemon means nothing to tell, and the window must not wait for that."""

    def tell() -> None:
        from helper.services import control

        try:
            control.request({"cmd": "pin_changed", "serial": serial}, timeout=1.0)
        except Exception:  # no daemon, or an old one: nothing else depends on it
            return

    threading.Thread(target=tell, name="tell-daemon", daemon=True).start()


WIDTH = 600

STATE_STYLE = {
    PinState.OK: "Value.TLabel",
    PinState.TO_BE_CHANGED: "StateInfo.TLabel",
    PinState.COUNT_LOW: "StateWarn.TLabel",
    PinState.FINAL_TRY: "StateDanger.TLabel",
    PinState.LOCKED: "StateDanger.TLabel",
}


def state_text(info: TokenInfo) -> str:
    """The key's PIN lines: its state, the exact tries left where the key tells them
    (SKF), the initial-PIN reminder."""
    parts = token_state_text(
        info.pin_state, info.pin_retries_left, info.pin_max_retries, info.pin_is_default
    ).split("  ")
    return "\n".join(parts)  # one fact a line


class ChangePinWindow:
    def __init__(
        self,
        service: TokenService,
        tokens: list[tuple[TokenDriver, TokenInfo]],
        *,
        query: str | None = None,
    ) -> None:
        import tkinter as tk
        from tkinter import ttk

        self.tk, self.ttk = tk, ttk
        self.service = service
        self.model = ChangePinModel(tokens)
        self.query = query
        self.entries: list[Any] = []
        self._last_codes: Any = None
        self._results: queue.Queue[Outcome] = queue.Queue()
        self._focus_first: Any = None
        self._mapped = False
        self._closing = False
        self.probe_path = os.environ.get(ENV_PROBE) or None

        self.root = root = tk.Tk(className=S.WM_CLASS)
        root.withdraw()
        root.title(f"{S.TITLE} — 修改密码 (Change PIN)")
        root.resizable(False, False)
        self.fonts = S.setup_look(root)
        st = ttk.Style(root)
        st.configure("Error.TLabel", foreground=S.DANGER, font=self.fonts.small)
        st.configure("Weak.TLabel", foreground=S.WARN, font=self.fonts.small)
        st.configure("StateInfo.TLabel", foreground=S.INFO, font=self.fonts.bold)
        st.configure("StateWarn.TLabel", foreground=S.WARN, font=self.fonts.bold)
        st.configure("StateDanger.TLabel", foreground=S.DANGER, font=self.fonts.bold)
        st.configure("TCombobox", padding=(6, 3), arrowsize=14)
        st.map(
            "TCombobox",
            fieldbackground=[("readonly", S.CARD)],
            selectbackground=[("readonly", S.CARD)],
            selectforeground=[("readonly", S.TEXT)],
        )

        outer = ttk.Frame(root)
        outer.pack(fill="both", expand=True)
        heading, sub = S.header(outer, self.fonts)
        heading.configure(text="修改 USB Key 密码")
        sub.configure(text="Change the PIN of your USB key")
        ttk.Separator(outer, orient="horizontal").pack(fill="x")
        self.body = ttk.Frame(outer, padding=(24, 16, 24, 4))
        self.body.pack(fill="both", expand=True)
        self.body.columnconfigure(1, weight=1)
        self.footer = ttk.Frame(outer, padding=(24, 10, 24, 18))
        self.footer.pack(fill="x", side="bottom")
        self.caps = ttk.Label(self.footer, text="", style="Caps.TLabel")
        self.caps.pack(side="left", anchor="s")
        self.buttons = ttk.Frame(self.footer)
        self.buttons.pack(side="right")

        # the key: a chooser when several are inserted and none was named
        self.chooser: Any = None
        self.key_label: Any = None
        ttk.Label(self.body, text="USB Key", style="Key.TLabel").grid(
            row=0, column=0, sticky="w", padx=(0, 16), pady=4
        )
        if len(tokens) > 1:
            names = [f"{t.label}   ({t.serial})" for _, t in tokens]
            self.chooser = ttk.Combobox(
                self.body, values=names, state="readonly", width=36, takefocus=1
            )
            self.chooser.current(0)
            self.chooser.grid(row=0, column=1, sticky="w", pady=4)
            self.chooser.bind("<<ComboboxSelected>>", lambda _e: self._choose())
        else:
            self.key_label = ttk.Label(self.body, style="Strong.TLabel")
            self.key_label.grid(row=0, column=1, sticky="w", pady=4)
        self.form: Any = None

        root.protocol("WM_DELETE_WINDOW", self.close)
        root.bind("<Escape>", lambda _e: self.close())
        root.bind("<Map>", self._on_map, add="+")
        if tokens:
            self._choose()
        else:
            self._no_key()

    # --- building -------------------------------------------------------------

    def _clear_form(self) -> None:
        if self.form is not None:
            self.form.destroy()
        for child in self.buttons.winfo_children():
            child.destroy()
        self.entries = []
        self.ok_button = None

    def _form_frame(self) -> Any:
        self._clear_form()
        self.form = form = self.ttk.Frame(self.body)
        form.grid(row=1, column=0, columnspan=2, sticky="we")
        form.columnconfigure(1, weight=1)
        return form

    def _align(self) -> None:
        """The key label above the form and the form's labels share one column width."""
        self.root.update_idletasks()
        body = self.body.grid_bbox(0, 0) or (0, 0, 0, 0)
        width = max(self.form.grid_bbox(0, 0)[2], body[2])
        self.form.columnconfigure(0, minsize=width)
        self.body.columnconfigure(0, minsize=width)

    def _no_key(self) -> None:
        form = self._form_frame()
        if self.query:
            text = (
                f"找不到指定的 USB Key「{self.query}」，请确认已插入。\n"
                f"(No USB key matches {self.query}; is it inserted?)"
            )
        else:
            text = (
                "未检测到 USB Key，请插入后重新打开。\n(No USB key found: insert it and try again.)"
            )
        self.key_label.configure(text="—")
        self._note(form, 0, text, "Warn.TLabel")
        close = self._button("关闭 (Close)", self.close, primary=True)
        self._focus(close)
        self._probe(event="ready", token_serial=None, locked=False, fields=False, tokens=0)

    def _choose(self) -> None:
        choice = self.model.choose(self.chooser.current() if self.chooser is not None else 0)
        if choice.form is Form.UNREADABLE:
            assert choice.error is not None
            form = self._form_frame()
            self._note(form, 0, f"无法读取 USB Key (cannot read the key): {choice.error.message()}",
                       "Danger.TLabel")  # fmt: skip
            self._focus(self._button("关闭 (Close)", self.close, primary=True))
            return
        info = choice.info
        assert info is not None
        if self.key_label is not None:
            self.key_label.configure(text=f"{info.label}    序列号 (serial) {info.serial}")
        if choice.form is Form.LOCKED:
            self._locked_form(info)
        else:
            self._pin_form(info)
        self._probe(
            event="ready",
            token_serial=info.serial,
            token_label=info.label,
            pin_state=info.pin_state.value,
            pin_retries_left=info.pin_retries_left,
            pin_max_retries=info.pin_max_retries,
            pin_is_default=info.pin_is_default,
            state_text=state_text(info),
            notes=self._notes(),
            locked=info.pin_state is PinState.LOCKED,
            fields=bool(self.entries),
            chooser=self.chooser is not None,
            tokens=len(self.model.tokens),
        )

    def _state_row(self, form: Any, row: int, info: TokenInfo) -> None:
        ttk = self.ttk
        ttk.Label(form, text="密码状态 (PIN)", style="Key.TLabel").grid(
            row=row, column=0, sticky="w", padx=(0, 16), pady=4
        )
        self.state_label = ttk.Label(
            form, text=state_text(info), style=STATE_STYLE[info.pin_state], wraplength=WIDTH - 230
        )
        self.state_label.grid(row=row, column=1, sticky="w", pady=4)

    def _locked_form(self, info: TokenInfo) -> None:
        form = self._form_frame()
        self._state_row(form, 0, info)
        self._note(form, 1, LOCKED_TEXT, "FinalTry.TLabel", bold=True)
        self._note(form, 2, LOCKED_HELP, "Info.TLabel")
        self._align()
        self._focus(self._button("关闭 (Close)", self.close, primary=True))

    def _pin_form(self, info: TokenInfo) -> None:
        ttk = self.ttk
        form = self._form_frame()
        self._state_row(form, 0, info)
        row = 1
        if info.pin_state is PinState.FINAL_TRY:
            self._note(
                form, row,
                "当前密码仅剩最后一次机会，输错将锁定 USB Key！\n"
                "(Last try: a wrong current PIN will lock the key.)",
                "FinalTry.TLabel", bold=True,
            )  # fmt: skip
            row += 1
        elif info.pin_state is PinState.COUNT_LOW:
            self._note(
                form, row,
                "密码已输错多次，再输错几次将锁定 USB Key，请仔细核对当前密码。\n"
                "(Wrong PINs were entered several times; a few more will lock the key.)",
                "Warn.TLabel",
            )  # fmt: skip
            row += 1
        elif info.pin_state is PinState.TO_BE_CHANGED:
            self._note(
                form, row,
                "该 USB Key 仍在使用初始密码，请设置新密码。\n"
                "(This key still has its initial PIN; please set a new one.)",
                "Info.TLabel",
            )  # fmt: skip
            row += 1

        self.messages: dict[str, Any] = {}
        for key, label in (
            ("old", "当前密码 (Current PIN)"),
            ("new", "新密码 (New PIN)"),
            ("confirm", "确认新密码 (Confirm)"),
        ):
            ttk.Label(form, text=label, style="Key.TLabel").grid(
                row=row, column=0, sticky="nw", padx=(0, 16), pady=(8, 0)
            )
            cell = ttk.Frame(form)
            cell.grid(row=row, column=1, sticky="we", pady=(4, 0))
            entry = ttk.Entry(cell, show="●", width=24, font=self.fonts.pin, exportselection=False)
            entry.pack(anchor="w")
            for seq in ("<<Copy>>", "<<Cut>>"):
                entry.bind(seq, lambda _e: "break")
            for seq in ("<Return>", "<KP_Enter>"):
                entry.bind(seq, self._enter)
            entry.bind("<KeyPress>", self._key, add="+")
            entry.bind("<<Paste>>", lambda _e: self.root.after_idle(self._update), add="+")
            if key != "old":  # the current PIN gets no message: it is the key's to judge
                message = ttk.Label(cell, text="", style="Muted.TLabel", wraplength=WIDTH - 230)
                message.pack(anchor="w", pady=(2, 0))
                self.messages[key] = message
            self.entries.append(entry)
            row += 1
        self.outcome = ttk.Label(form, text="", wraplength=WIDTH - 72)
        self.outcome_row = row
        self.ok_button = self._button("确定 (OK)", self.submit, primary=True)
        self._button("取消 (Cancel)", self.close)
        self._last_codes = None
        self._update()
        self._align()
        self._focus(self.entries[0])

    def _note(self, form: Any, row: int, text: str, style: str, *, bold: bool = False) -> Any:
        font = {"font": self.fonts.bold} if bold else {}
        label = self.ttk.Label(form, text=text, style=style, wraplength=WIDTH - 72, **font)
        label.grid(row=row, column=0, columnspan=2, sticky="we", pady=(8, 2))
        return label

    def _button(self, text: str, command: Callable[[], None], *, primary: bool = False) -> Any:
        button = self.ttk.Button(
            self.buttons, text=text, command=command,
            style="Primary.TButton" if primary else "TButton",
        )  # fmt: skip
        button.pack(side="left", padx=(8, 0))
        for key in ("<Return>", "<KP_Enter>"):
            button.bind(key, lambda _e, b=button: (b.invoke(), "break")[1])
        return button

    def _buttons(self) -> list[Any]:
        """The ttk buttons of the footer (Tk types them as plain widgets)."""
        return list(self.buttons.winfo_children())

    def _focus(self, widget: Any) -> None:
        self._focus_first = widget
        if self._mapped:
            widget.focus_force()
        else:
            widget.focus_set()

    # --- typing -----------------------------------------------------------------

    def _key(self, event: Any) -> None:
        on = bool(event.state & 0x2)
        self.caps.configure(text="大写锁定已打开 (Caps Lock is on)" if on else "")
        self.root.after_idle(self._update)

    def _pins(self) -> tuple[Pin, Pin, Pin]:
        old, new, confirm = (Pin(e.get()) for e in self.entries)
        return old, new, confirm

    def _update(self) -> None:
        info = self.model.info
        check = self.model.typed(*self._pins()) if self.entries else None
        if check is None or info is None:
            return
        new_msg = self.messages["new"]
        if check.errors:
            text = "\n".join(i.message for i in check.errors)
            new_msg.configure(text=text, style="Error.TLabel")
        elif check.warnings:
            text = "\n".join(f"⚠ {i.message}" for i in check.warnings)
            new_msg.configure(text=text, style="Weak.TLabel")
        else:
            new_msg.configure(text=new_pin_hint(info), style="Muted.TLabel")
        self.messages["confirm"].configure(
            text=MISMATCH if check.mismatch else "", style="Error.TLabel"
        )
        if self.ok_button is not None:
            self.ok_button.state(["!disabled"] if check.ok else ["disabled"])
        codes = check.codes()
        if codes != self._last_codes:
            self._last_codes = codes
            self._probe(
                event="check",
                ok_enabled=check.ok,
                errors=list(codes[1]),
                warnings=list(codes[2]),
                mismatch=check.mismatch,
                messages=[m.cget("text") for m in self.messages.values() if m.cget("text")],
            )

    # --- the change -------------------------------------------------------------

    def _enter(self, _event: Any) -> str:
        self.submit()
        return "break"

    def submit(self) -> None:
        model = self.model
        if model.busy or model.done or not self.entries:
            return
        old, new, confirm = self._pins()
        allowed = model.may_submit(old, new, confirm)  # the token untouched
        self._update()
        if not allowed or model.driver is None or model.info is None:
            self.root.bell()
            self._probe(event="refused", errors=[i.code for i in model.check.errors])
            return
        model.busy = True
        for e in self.entries:
            e.state(["disabled"])
        for b in self._buttons():
            b.state(["disabled"])
        if self.chooser is not None:
            self.chooser.state(["disabled"])
        self._show_outcome("正在修改密码，请勿拔出 USB Key… (Changing the PIN…)", "Info.TLabel")
        self._probe(event="busy")
        worker = threading.Thread(
            target=self._work,
            args=(model.driver, model.info, old, new),
            name="set-pin",
            daemon=True,
        )
        del old, new, confirm
        worker.start()
        self.root.after(50, self._wait)

    def _work(self, driver: TokenDriver, info: TokenInfo, old: Pin, new: Pin) -> None:
        """Runs in the worker thread; the outcome goes to the queue."""
        self._results.put(change_pin(driver, info, old, new))
        del old, new

    def _wait(self) -> None:
        try:
            outcome = self._results.get_nowait()
        except queue.Empty:
            self.root.after(50, self._wait)
            return
        self._finished(outcome)

    def _finished(self, outcome: Outcome) -> None:
        text, style = outcome_message(outcome)
        after = self.model.finished(outcome)
        info = self.model.info
        assert info is not None
        if after is After.CLOSE:
            for e in self.entries:  # a disabled entry ignores delete
                e.state(["!disabled"])
                e.delete(0, "end")
                e.state(["disabled"])
            self.messages["new"].configure(text=new_pin_hint(info), style="Muted.TLabel")
            self.messages["confirm"].configure(text="")
            self._show_outcome(text, style)
            self._probe_result(outcome, text)
            tell_daemon_pin_changed(info.serial)
            self.root.after(SUCCESS_CLOSE_MS, self._quit)
            return
        if after is After.LOCKED:
            self._locked_form(info)
            self._probe_result(outcome, text)
            return
        for e in self.entries:
            e.state(["!disabled"])
            e.delete(0, "end")
        for b in self._buttons():
            b.state(["!disabled"])
        if self.chooser is not None:
            self.chooser.state(["!disabled", "readonly"])
        self.state_label.configure(text=state_text(info), style=STATE_STYLE[info.pin_state])
        self._update()
        self._show_outcome(text, style)
        self.entries[0].focus_force()
        self._probe_result(outcome, text)

    def _show_outcome(self, text: str, style: str) -> None:
        self.outcome.configure(text=text, style=style)
        self.outcome.grid(row=self.outcome_row, column=0, columnspan=2, sticky="we", pady=(12, 0))

    def _probe_result(self, outcome: Outcome, text: str) -> None:
        self._probe(
            event="result",
            outcome=outcome.kind,
            message=text,
            pin_state=outcome.pin_state.value if outcome.pin_state else None,
            error=outcome.error.code if outcome.error else None,
            retries_left=outcome.retries_left,
            pin_is_default=outcome.info.pin_is_default if outcome.info else None,
            state_text=state_text(self.model.info) if self.model.info else None,
            notes=self._notes(),
            fields_empty=all(not e.get() for e in self.entries if e.winfo_exists()),
            locked=bool(self.model.info and self.model.info.pin_state is PinState.LOCKED),
        )

    # --- life -------------------------------------------------------------------

    def _on_map(self, event: Any) -> None:
        if event.widget is not self.root or self._mapped:
            return
        self._mapped = True
        self.root.lift()
        if self._focus_first is not None:
            self.root.after_idle(self._focus_first.focus_force)

    def close(self) -> None:
        if self.model.busy:  # the key is being written: wait for the outcome
            self.root.bell()
            return
        self._quit()

    def _quit(self) -> None:
        with contextlib.suppress(self.tk.TclError):
            self.root.destroy()

    def _watch_signals(self) -> None:
        if self._closing and not self.model.busy:
            self._quit()
            return
        self.root.after(200, self._watch_signals)

    def run(self) -> int:
        root = self.root
        root.update_idletasks()
        w = max(root.winfo_reqwidth(), WIDTH)
        x = max((root.winfo_screenwidth() - w) // 2, 0)
        y = max((root.winfo_screenheight() - root.winfo_reqheight()) // 3, 0)
        root.minsize(w, 1)
        root.geometry(f"+{x}+{y}")  # the height follows the messages shown
        root.deiconify()
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, lambda *_a: setattr(self, "_closing", True))
        root.after(200, self._watch_signals)
        root.mainloop()
        self._probe(event="exit", code=self.model.exit_code)
        return self.model.exit_code

    # --- the probe (tests) ------------------------------------------------------

    def _notes(self) -> list[str]:
        """The texts of the form's notes and labels as shown now (never an entry's)."""
        out: list[str] = []
        todo = list(self.form.winfo_children()) if self.form is not None else []
        while todo:
            widget = todo.pop(0)
            todo.extend(widget.winfo_children())
            if widget.winfo_class() == "TLabel" and str(widget.cget("text")):
                out.append(str(widget.cget("text")))
        return out

    def _probe(self, **fields: Any) -> None:
        if not self.probe_path:
            return
        with open(self.probe_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(fields, ensure_ascii=False) + "\n")
