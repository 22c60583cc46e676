"""The PIN dialog: the key, the operation, the PIN state warnings and the exact tries
left (where the key tells them), a masked field.

Test hook: ``CERTHELPER_UI_PROBE=<path>`` makes the dialog append one JSON line
``{"dialog": "pin", "texts": [...]}`` with every label text it shows once it is
built (labels only: never the PIN field).
"""

from __future__ import annotations

import json
import os
from typing import Any

from drivers.types import PinState
from helper.domain.presentation import pin_tries_text
from helper.services.prompts import PinRequest
from helper.ui.dialogs.base import Dialog
from helper.ui.dialogs.texts import PIN_OPERATIONS, pin_length_hint, pin_length_range


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

        if request.retry_note:  # the PIN just typed was wrong: asked again, same certificate
            self.add_note(request.retry_note, "FinalTry.TLabel", bold=True)
        tries = "" if request.retry_note else tries_note(request)
        if request.pin_state is PinState.FINAL_TRY:
            self.add_note(
                "仅剩最后一次机会，输错将锁定 USB Key！\n"
                "(Last try: a wrong PIN will lock the USB key.)" + tries,
                "FinalTry.TLabel",
                bold=True,
            )
        elif request.pin_state is PinState.COUNT_LOW:
            self.add_note(
                "密码已输错多次，再输错几次将锁定 USB Key，请仔细核对。\n"
                "(Wrong PINs were entered several times; a few more will lock the key.)" + tries,
                "Warn.TLabel",
            )
        elif tries:
            self.add_note(tries.strip(), "Warn.TLabel")
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
            self.entry.bind(key, self._enter)
        self.entry.bind("<KeyPress>", self._caps_lock, add="+")
        self.focus_first(self.entry)
        self._probe()

    def _probe(self) -> None:
        path = os.environ.get("CERTHELPER_UI_PROBE")
        if not path:
            return
        texts: list[str] = []
        todo: list[Any] = [self.root]
        while todo:
            widget = todo.pop(0)
            todo.extend(widget.winfo_children())
            if widget.winfo_class() == "TLabel" and str(widget.cget("text")):
                texts.append(str(widget.cget("text")))
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"dialog": "pin", "texts": texts}, ensure_ascii=False) + "\n")

    def _valid(self) -> bool:
        n = len(self.pin.get())
        return n >= self.lo and (self.hi is None or n <= self.hi)

    def _update(self) -> None:
        self.ok.state(["!disabled"] if self._valid() and self.armed else ["disabled"])

    def armed_again(self) -> None:
        self._update()

    def _caps_lock(self, event: Any) -> None:
        on = bool(event.state & 0x2)
        self.caps.configure(text="大写锁定已打开 (Caps Lock is on)" if on else "")

    def _enter(self, _event: Any) -> str:
        self.submit()
        return "break"

    def submit(self) -> None:
        if not self._valid() or not self.armed:
            self.root.bell()
            return
        self.finish({"result": "ok", "pin": self.pin.get()})


def tries_note(request: PinRequest) -> str:
    """A line with the exact tries left, once some were spent ("" otherwise)."""
    left, most = request.pin_retries_left, request.pin_max_retries
    if left is None or (most is not None and left >= most):
        return ""
    return "\n" + pin_tries_text(left, most)
