"""The frame every dialog shares: header, origin card, body, buttons, countdown,
the parent watch (EOF on stdin cancels), and the one result it gives."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from helper.ui.dialogs.texts import MIN_WIDTH, is_plain_http
from helper.ui.style import (
    BG,
    TITLE,
    WM_CLASS,
    apply_style,
    header,
    setup_fonts,
)


def report_exception(exc: type[BaseException], tb: Any) -> None:
    """Write a traceback to stderr: frames and the exception type, never its message
    (a message could quote a value, and the parent logs stderr)."""
    sys.stderr.write("".join(traceback.format_tb(tb)) + f"{exc.__name__}\n")
    sys.stderr.flush()


class Dialog:
    """The frame every dialog shares: header, origin card, body, buttons, countdown.

    Keyjacking (security.md, requirement 19): a page can make a dialog appear while
    the person is typing or clicking in the page. For ``input_delay`` seconds after
    the window appears, and again whenever it gets the focus back, every key and
    click is ignored (Escape, which only refuses, excepted) and the buttons are shown
    disabled; subclasses never make an allowing button the default."""

    title_zh = ""
    title_en = ""
    resizable = False
    #: seconds keys and clicks are ignored after the window appears or regains focus
    input_delay = 0.7
    #: False for windows whose buttons grant nothing (notices)
    guarded = True

    def __init__(self, timeout: float) -> None:
        import tkinter as tk
        from tkinter import ttk

        self.tk = tk
        self.ttk = ttk
        self.result: dict[str, Any] | None = None
        self._focus_first: Any = None
        #: keys and clicks reach the dialog (False during the input delay)
        self.armed = not self.guarded
        self._held: list[Any] = []
        self._release_job: str | None = None
        self._had_focus = False
        self._action_buttons: list[Any] = []
        self._mapped = False
        self._parent_gone = threading.Event()
        self.root = root = tk.Tk(className=WM_CLASS)
        root.withdraw()
        root.report_callback_exception = self._callback_error
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
        font = {"font": self.font_bold} if bold else {}
        label = self.ttk.Label(
            self.body,
            text=text,
            style=style,
            wraplength=MIN_WIDTH - 72,  # the body's width less its padding and the box's
            **font,
        )
        return self.add_wide(label, pady=(10, 0))

    def add_origin(self, origin: str, insecure: bool) -> None:
        insecure = insecure or is_plain_http(origin)
        cell = self.ttk.Frame(self.body)
        self.ttk.Label(cell, text=origin, style="Origin.TLabel", wraplength=360).pack(
            side="left", anchor="w"
        )
        if insecure:
            self.ttk.Label(cell, text="http", style="Muted.TLabel").pack(side="left", padx=(10, 0))
        self.add_row("网站 (Site)", cell)

    def add_insecure_note(self, origin: str, insecure: bool) -> None:
        """A plain-http site reaches a dialog only when it is a hall in the person's
        settings (others are refused before any dialog): a calm grey remark, not a red
        banner the person would learn to ignore on every login."""
        if insecure or is_plain_http(origin):
            self.add_note(
                "这是您设置中的办事大厅；它使用未加密的 http 连接，请核对网址。"
                "(A hall in your settings; it uses plain http: check the address.)",
                "Muted.TLabel",
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
        self._action_buttons.append(button)
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
        if self.guarded:
            self._hold()
            self.root.after(100, self._watch_focus)
        if self._focus_first is not None:
            self.root.after_idle(self._focus_first.focus_force)

    # --- the input delay (keyjacking) ---------------------------------------

    def _install_guard(self) -> None:
        """A bind tag in front of every widget's own: it swallows keys and clicks
        while the dialog is not armed, before any widget or window binding runs."""
        tag = f"certhelper-guard-{id(self)}"
        for key in ("<KeyPress>", "<KeyRelease>", "<ButtonPress>", "<ButtonRelease>"):
            self.root.bind_class(tag, key, self._gate)
        # the focus coming back is seen when its event arrives, before the next key
        self.root.bind_class(tag, "<FocusIn>", self._focus_in, add="+")
        self.root.bind_class(tag, "<FocusOut>", self._focus_out, add="+")
        todo: list[Any] = [self.root]
        while todo:
            widget = todo.pop()
            widget.bindtags((tag, *widget.bindtags()))
            todo.extend(widget.winfo_children())

    def _gate(self, event: Any) -> str | None:
        if self.armed or getattr(event, "keysym", "") == "Escape":
            return None
        return "break"

    def _hold(self) -> None:
        """Ignore input for input_delay seconds; the buttons look disabled meanwhile."""
        self.armed = False
        if self._release_job is not None:
            self.root.after_cancel(self._release_job)
        for b in self._action_buttons:
            if not b.instate(["disabled"]):
                b.state(["disabled"])
                self._held.append(b)
        self._release_job = self.root.after(int(self.input_delay * 1000), self._release)

    def _release(self) -> None:
        self._release_job = None
        self.armed = True
        held, self._held = self._held, []
        for b in held:
            b.state(["!disabled"])
        self.armed_again()

    def armed_again(self) -> None:
        """Subclasses re-check what their buttons depend on (the PIN's length)."""

    def _focus_in(self, _event: Any) -> None:
        if not self._had_focus:
            self._had_focus = True
            self._hold()

    def _focus_out(self, _event: Any) -> None:
        self.root.after_idle(self._check_focus_left)

    def _check_focus_left(self) -> None:
        try:
            if self.root.focus_get() is None:
                self._had_focus = False
        except (KeyError, self.tk.TclError):
            pass

    def _watch_focus(self) -> None:
        """Regaining the focus starts the input delay again."""
        if self.result is not None:
            return
        try:
            focused = self.root.focus_get() is not None
        except (KeyError, self.tk.TclError):  # a focused widget Tk cannot name
            focused = True
        if focused and not self._had_focus:
            self._hold()
        self._had_focus = focused
        self.root.after(100, self._watch_focus)

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
        if self.guarded:
            self._install_guard()
        root.deiconify()
        root.mainloop()
        return self.result or {"result": "cancel"}


def tkfont_measure(root: Any, text: str) -> int:
    from tkinter import font as tkfont

    return tkfont.nametofont("TkDefaultFont", root).measure(text)
