"""修改密码 — change the PIN of a USB key, in a window of its own.

Run as ``python -m helper.ui.changepin [--token LABEL|SERIAL]`` (the tray and
我的证书 spawn it; it also works alone, without the daemon). The process loads
the configuration (``$CERTHELPER_CONFIG`` is honoured), builds its own
:class:`~helper.services.tokens.TokenService` and closes it on exit.

- A key chooser when several keys are inserted and no ``--token`` was given;
  the key's PIN state (tries low, final try, initial PIN to be changed).
- A locked PIN shows guidance (unlock at the CA office) and no fields at all:
  nothing is ever sent to a locked key.
- 当前密码, 新密码, 确认新密码 (masked). The foundation's policy
  (:mod:`helper.domain.pin_policy`: the key's length range, not the current
  PIN, never 123456, printable ASCII) is checked as you type: errors in red
  under the fields, the weak-PIN warning in amber; 确定 is enabled only when the
  policy passes and the confirmation matches. Enter submits when allowed,
  Escape closes.
- 确定 runs C_SetPIN once, in a worker thread (the window stays responsive),
  and never retries. A wrong current PIN shows 当前密码错误 with the PIN state
  read afterwards and clears the fields; success shows 密码修改成功 and closes
  the window after 1.5 s.

PINs live only in the Entry widgets and, for the call, in
:class:`~drivers.types.Pin` objects; they are never logged, printed or written
to the probe file.

Test hooks (environment):

``CERTHELPER_UI_PROBE=<path>``
    The window appends one JSON line per visible change: ``ready`` (key, PIN
    state, locked, fields shown, chooser shown), ``check`` (确定 enabled, the
    policy's error and warning codes, the messages shown), ``refused`` (Enter
    or 确定 while not allowed), ``busy``, ``result`` (outcome, message text,
    PIN state, fields cleared) and ``exit`` (the exit code). Never a PIN.
``CERTHELPER_TEST_HOOKS=1`` with ``CERTHELPER_TEST_PIN_STATE=<state>``
    A test double for what SoftHSM cannot do: every key the window reads
    reports that PIN state (``locked``, ``final_try``, ``count_low``,
    ``to_be_changed``). Ignored unless ``CERTHELPER_TEST_HOOKS=1``.

Exit codes: 0 the PIN was changed; 1 closed without a change; 2 configuration
error; 3 no display / no Tk.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from drivers.errors import (
    CertHelperError,
    PinIncorrect,
    PinInvalid,
    PinLenRange,
    PinLocked,
    TokenAbsent,
)
from drivers.protocol import TokenDriver
from drivers.types import Pin, PinState, TokenInfo
from helper.config import Config, load_config, log_dir
from helper.domain.pin_policy import (
    DEFAULT_MAX_LEN,
    DEFAULT_MIN_LEN,
    INITIAL_PIN,
    PolicyIssue,
    check_new_pin,
)
from helper.domain.presentation import PIN_STATE_TEXT
from helper.logs import setup_logging
from helper.services import operations
from helper.services.tokens import TokenService
from helper.ui import style as S

log = logging.getLogger(__name__)

ENV_PROBE = "CERTHELPER_UI_PROBE"
ENV_TEST_HOOKS = "CERTHELPER_TEST_HOOKS"
ENV_TEST_PIN_STATE = "CERTHELPER_TEST_PIN_STATE"
#: how long the success message stays before the window closes (ms)
SUCCESS_CLOSE_MS = 1500
WIDTH = 600

EXIT_CHANGED = 0
EXIT_CLOSED = 1
EXIT_CONFIG = 2
EXIT_NO_DISPLAY = 3

CA_OFFICE = "河北CA沧州办事处：运河区解放西路颐和国际 B 座 602 室，电话 13315703324"
LOCKED_TEXT = (
    "该 USB Key 的密码已锁定，无法修改。\n"
    "请携带 USB Key 和本人有效证件到 CA 办事处解锁。\n"
    "(The PIN is locked and cannot be changed here. "
    "Take the key and your ID to the CA office to unlock it.)"
)
STATE_STYLE = {
    PinState.OK: "Value.TLabel",
    PinState.TO_BE_CHANGED: "StateInfo.TLabel",
    PinState.COUNT_LOW: "StateWarn.TLabel",
    PinState.FINAL_TRY: "StateDanger.TLabel",
    PinState.LOCKED: "StateDanger.TLabel",
}
MISMATCH = "两次输入的新密码不一致 (The two new PINs differ)"


# --- pure helpers ---------------------------------------------------------------


def forced_pin_state() -> PinState | None:
    """The PIN state the test double imposes, if the hooks are on."""
    if os.environ.get(ENV_TEST_HOOKS) != "1":
        return None
    value = os.environ.get(ENV_TEST_PIN_STATE, "").strip().lower()
    try:
        return PinState(value) if value else None
    except ValueError:
        return None


def with_test_state(info: TokenInfo) -> TokenInfo:
    forced = forced_pin_state()
    return dataclasses.replace(info, pin_state=forced) if forced else info


def new_pin_range(token: TokenInfo) -> tuple[int, int]:
    """The new PIN's length range as the policy applies it (6..16 without a range)."""
    lo = token.pin_min_len if token.pin_min_len and token.pin_min_len >= 1 else DEFAULT_MIN_LEN
    hi = token.pin_max_len if token.pin_max_len and token.pin_max_len >= 1 else DEFAULT_MAX_LEN
    if hi < lo:
        return DEFAULT_MIN_LEN, DEFAULT_MAX_LEN
    return lo, hi


def old_pin_ok(length: int, token: TokenInfo) -> bool:
    """A current PIN the key could accept at all (no try is spent on one it cannot)."""
    lo = token.pin_min_len if token.pin_min_len and token.pin_min_len >= 1 else 1
    hi = token.pin_max_len if token.pin_max_len and token.pin_max_len >= lo else None
    return length >= lo and (hi is None or length <= hi)


def new_pin_hint(token: TokenInfo) -> str:
    lo, hi = new_pin_range(token)
    size = f"{lo}–{hi} 位" if hi <= 32 else f"至少 {lo} 位"
    size_en = f"{lo}–{hi} characters" if hi <= 32 else f"at least {lo} characters"
    return (
        f"{size}，不能是 {INITIAL_PIN}，不能与当前密码相同\n"
        f"({size_en}; not {INITIAL_PIN}; not the current PIN)"
    )


@dataclass
class Check:
    """The policy's verdict on what is typed now (codes and messages, never the PINs)."""

    ok: bool
    errors: list[PolicyIssue] = field(default_factory=list)
    warnings: list[PolicyIssue] = field(default_factory=list)
    mismatch: bool = False

    def codes(self) -> tuple[bool, tuple[str, ...], tuple[str, ...], bool]:
        return (
            self.ok,
            tuple(i.code for i in self.errors),
            tuple(i.code for i in self.warnings),
            self.mismatch,
        )


def evaluate(old: Pin, new: Pin, confirm: Pin, token: TokenInfo) -> Check:
    check = Check(ok=False)
    if len(new):
        lo, hi = new_pin_range(token)
        result = check_new_pin(new, old=old if len(old) else None, min_len=lo, max_len=hi)
        check.errors, check.warnings = result.errors, result.warnings
    if len(confirm) and not new.equals(confirm):
        # still typing the confirmation: only a wrong start or a longer one is a mismatch
        typing = len(confirm) < len(new) and Pin(new.reveal()[: len(confirm)]).equals(confirm)
        check.mismatch = not typing
    check.ok = (
        old_pin_ok(len(old), token)
        and len(new) > 0
        and not check.errors
        and len(confirm) > 0
        and new.equals(confirm)
    )
    return check


@dataclass
class Outcome:
    kind: str  # ok | pin_incorrect | pin_locked | error
    pin_state: PinState | None = None
    error: CertHelperError | None = None
    detail: str = ""


def outcome_message(outcome: Outcome) -> tuple[str, str]:
    """(text, style) for an outcome."""
    if outcome.kind == "ok":
        return "✔ 密码修改成功 (PIN changed)。请牢记新密码 (remember the new PIN).", "Ok.TLabel"
    if outcome.kind == "pin_incorrect":
        text = "当前密码错误，请重新输入。(The current PIN is incorrect.)"
        if outcome.pin_state is PinState.FINAL_TRY:
            return (
                text + "\n仅剩最后一次机会，再输错将锁定 USB Key！"
                "\n(Last try: another wrong PIN locks the key.)",
                "FinalTry.TLabel",
            )
        if outcome.pin_state is PinState.COUNT_LOW:
            return (
                text + "\n密码已输错多次，剩余次数不多，请仔细核对。"
                "\n(Several wrong PINs: a few more will lock the key.)",
                "Danger.TLabel",
            )
        return text, "Danger.TLabel"
    if outcome.kind == "pin_locked":
        return "密码已锁定 (The PIN is locked)。" + CA_OFFICE, "Danger.TLabel"
    err = outcome.error
    if isinstance(err, PinLenRange):
        text = "新密码长度不符合该 USB Key 的要求 (the key refused the new PIN's length)。"
    elif isinstance(err, PinInvalid):
        text = "该 USB Key 不接受新密码中的字符 (the key refused the new PIN's characters)。"
    elif isinstance(err, TokenAbsent):
        text = "未检测到 USB Key，可能已被拔出 (the USB key was removed)。"
    elif err is not None:
        text = f"修改失败 (failed): {err.message()}"
    else:
        text = f"修改失败 (failed): 内部错误 (internal error) {outcome.detail}"
    return text + "\n密码未修改 (the PIN was not changed).", "Danger.TLabel"


# --- the window -------------------------------------------------------------------


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
        self.tokens = tokens
        self.query = query
        self.exit_code = EXIT_CLOSED
        self.busy = False
        self.done = False
        self.driver: TokenDriver | None = None
        self.info: TokenInfo | None = None
        self.entries: list[Any] = []
        self.check = Check(ok=False)
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
        width = max(self.form.grid_bbox(0, 0)[2], self.body.grid_bbox(0, 0)[2])
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
        index = self.chooser.current() if self.chooser is not None else 0
        driver, token = self.tokens[index]
        try:
            info = with_test_state(driver.token_info(token.serial))
        except CertHelperError as exc:
            self.driver, self.info = driver, None
            form = self._form_frame()
            self._note(form, 0, f"无法读取 USB Key (cannot read the key): {exc.message()}",
                       "Danger.TLabel")  # fmt: skip
            self._focus(self._button("关闭 (Close)", self.close, primary=True))
            return
        self.driver, self.info = driver, info
        if self.key_label is not None:
            self.key_label.configure(text=f"{info.label}    序列号 (serial) {info.serial}")
        if info.pin_state is PinState.LOCKED:
            self._locked_form(info)
        else:
            self._pin_form(info)
        self._probe(
            event="ready",
            token_serial=info.serial,
            token_label=info.label,
            pin_state=info.pin_state.value,
            locked=info.pin_state is PinState.LOCKED,
            fields=bool(self.entries),
            chooser=self.chooser is not None,
            tokens=len(self.tokens),
        )

    def _state_row(self, form: Any, row: int, info: TokenInfo) -> None:
        ttk = self.ttk
        ttk.Label(form, text="密码状态 (PIN)", style="Key.TLabel").grid(
            row=row, column=0, sticky="w", padx=(0, 16), pady=4
        )
        self.state_label = ttk.Label(
            form, text=PIN_STATE_TEXT[info.pin_state], style=STATE_STYLE[info.pin_state]
        )
        self.state_label.grid(row=row, column=1, sticky="w", pady=4)

    def _locked_form(self, info: TokenInfo) -> None:
        form = self._form_frame()
        self._state_row(form, 0, info)
        self._note(form, 1, LOCKED_TEXT, "FinalTry.TLabel", bold=True)
        self._note(form, 2, CA_OFFICE, "Info.TLabel")
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
                entry.bind(seq, lambda _e: (self.submit(), "break")[1])
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
        label = self.ttk.Label(
            form, text=text, style=style, font=self.fonts.bold if bold else None,
            wraplength=WIDTH - 72,
        )  # fmt: skip
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
        if not self.entries or self.info is None or self.busy or self.done:
            return
        self.check = check = evaluate(*self._pins(), self.info)
        new_msg = self.messages["new"]
        if check.errors:
            text = "\n".join(i.message for i in check.errors)
            new_msg.configure(text=text, style="Error.TLabel")
        elif check.warnings:
            text = "\n".join(f"⚠ {i.message}" for i in check.warnings)
            new_msg.configure(text=text, style="Weak.TLabel")
        else:
            new_msg.configure(text=new_pin_hint(self.info), style="Muted.TLabel")
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

    def submit(self) -> None:
        if self.busy or self.done or not self.entries:
            return
        self._update()
        if not self.check.ok or self.info is None or self.driver is None:
            self.root.bell()
            self._probe(event="refused", errors=[i.code for i in self.check.errors])
            return
        old, new, confirm = self._pins()
        try:
            operations.check_change(self.info, old, new, confirm)  # the token untouched
        except CertHelperError:
            self.root.bell()
            self._probe(event="refused", errors=[i.code for i in self.check.errors])
            return
        self.busy = True
        for e in self.entries:
            e.state(["disabled"])
        for b in self.buttons.winfo_children():
            b.state(["disabled"])
        if self.chooser is not None:
            self.chooser.state(["disabled"])
        self._show_outcome("正在修改密码，请勿拔出 USB Key… (Changing the PIN…)", "Info.TLabel")
        self._probe(event="busy")
        worker = threading.Thread(
            target=self._work, args=(self.driver, self.info, old, new), name="set-pin", daemon=True
        )
        del old, new, confirm
        worker.start()
        self.root.after(50, self._wait)

    def _work(self, driver: TokenDriver, info: TokenInfo, old: Pin, new: Pin) -> None:
        """C_SetPIN, once. Runs in the worker thread; the result goes to the queue."""
        try:
            operations.apply_change(driver, info, old, new)
            outcome = Outcome("ok")
        except PinIncorrect:
            outcome = Outcome("pin_incorrect", pin_state=self._state_now(driver, info))
        except PinLocked:
            outcome = Outcome("pin_locked", pin_state=PinState.LOCKED)
        except CertHelperError as exc:
            outcome = Outcome("error", error=exc, pin_state=self._state_now(driver, info))
        except Exception as exc:  # a driver bug must not leave the window hanging
            log.error("PIN change failed: %s", type(exc).__name__)
            outcome = Outcome("error", detail=type(exc).__name__)
        del old, new
        self._results.put(outcome)

    @staticmethod
    def _state_now(driver: TokenDriver, info: TokenInfo) -> PinState | None:
        try:
            return with_test_state(driver.token_info(info.serial)).pin_state
        except CertHelperError:
            return None

    def _wait(self) -> None:
        try:
            outcome = self._results.get_nowait()
        except queue.Empty:
            self.root.after(50, self._wait)
            return
        self._finished(outcome)

    def _finished(self, outcome: Outcome) -> None:
        self.busy = False
        text, style = outcome_message(outcome)
        if outcome.kind == "ok":
            self.done = True
            self.exit_code = EXIT_CHANGED
            for e in self.entries:  # a disabled entry ignores delete
                e.state(["!disabled"])
                e.delete(0, "end")
                e.state(["disabled"])
            assert self.info is not None
            self.messages["new"].configure(text=new_pin_hint(self.info), style="Muted.TLabel")
            self.messages["confirm"].configure(text="")
            self._show_outcome(text, style)
            self._probe_result(outcome, text)
            self.root.after(SUCCESS_CLOSE_MS, self._quit)
            return
        if outcome.pin_state is PinState.LOCKED or outcome.kind == "pin_locked":
            assert self.info is not None
            self.info = dataclasses.replace(self.info, pin_state=PinState.LOCKED)
            self._locked_form(self.info)
            self._probe_result(outcome, text)
            return
        for e in self.entries:
            e.state(["!disabled"])
            e.delete(0, "end")
        for b in self.buttons.winfo_children():
            b.state(["!disabled"])
        if self.chooser is not None:
            self.chooser.state(["!disabled", "readonly"])
        if outcome.pin_state is not None and self.info is not None:
            self.info = dataclasses.replace(self.info, pin_state=outcome.pin_state)
            self.state_label.configure(
                text=PIN_STATE_TEXT[outcome.pin_state], style=STATE_STYLE[outcome.pin_state]
            )
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
            fields_empty=all(not e.get() for e in self.entries if e.winfo_exists()),
            locked=bool(self.info and self.info.pin_state is PinState.LOCKED),
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
        if self.busy:  # the key is being written: wait for the outcome
            self.root.bell()
            return
        self._quit()

    def _quit(self) -> None:
        with contextlib.suppress(self.tk.TclError):
            self.root.destroy()

    def _watch_signals(self) -> None:
        if self._closing and not self.busy:
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
        self._probe(event="exit", code=self.exit_code)
        return self.exit_code

    # --- the probe (tests) ------------------------------------------------------

    def _probe(self, **fields: Any) -> None:
        if not self.probe_path:
            return
        with open(self.probe_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(fields, ensure_ascii=False) + "\n")


# --- entry point ------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m helper.ui.changepin", description="证书助手 — 修改密码 (Change PIN)"
    )
    p.add_argument("--token", metavar="LABEL|SERIAL", help="the key whose PIN to change")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config: Config = load_config()
    except CertHelperError as exc:
        print(f"错误 (error) [{exc.code}]: {exc.message()}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.log_level, log_dir=log_dir() if config.log_to_file else None)
    try:
        import tkinter as tk
    except ImportError:
        print("错误 (error): 缺少 tkinter (tkinter is not installed)", file=sys.stderr)
        return EXIT_NO_DISPLAY
    service = TokenService.from_config(config)
    try:
        tokens = sorted(service.tokens(), key=lambda dt: (dt[1].label, dt[1].serial))
        if args.token:
            tokens = [(d, t) for d, t in tokens if args.token in (t.serial, t.label)]
        try:
            window = ChangePinWindow(service, tokens, query=args.token)
        except tk.TclError as exc:
            print(f"错误 (error): 无法打开窗口 (cannot open a window): {exc}", file=sys.stderr)
            return EXIT_NO_DISPLAY
        return window.run()
    finally:
        service.close()


if __name__ == "__main__":
    sys.exit(main())
