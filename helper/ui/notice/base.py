"""The frame every notice shares (on the dialogs' Dialog): heading, cards, buttons."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from helper.ui.dialogs.base import Dialog
from helper.ui.dialogs.texts import MIN_WIDTH
from helper.ui.style import (
    BORDER,
    CARD,
    TEXT,
)

if TYPE_CHECKING:
    pass

from helper.ui.notice.content import NO_DEADLINE
from helper.ui.notice.wrap import wrap_text

log = logging.getLogger(__name__)


class Notice(Dialog):
    """A Dialog whose answers are notice results and that waits unless told otherwise."""

    #: a notice's buttons grant nothing (renew, change the PIN, close): no input delay
    guarded = False
    #: the body's width inside its padding (the dialog's minimum width)
    ROOM = MIN_WIDTH - 48

    def __init__(self, timeout: float | None) -> None:
        from tkinter import font as tkfont

        self.timeout = timeout
        super().__init__(timeout if timeout is not None else NO_DEADLINE)
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
