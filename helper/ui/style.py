"""The look every certhelper Tk window shares: colours, fonts, ttk styles, the header.

Used by the short-lived dialogs (:mod:`helper.ui.dialogs`) and by the window
processes (我的证书, 修改密码). Nothing here imports tkinter at import time: the
functions take the root window and import what they need when called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WM_CLASS = "certhelper"
TITLE = "证书助手"

# Fonts tried in order for Chinese text; the first one Tk knows is used.
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei UI",
    "Microsoft YaHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Droid Sans Fallback",
)
MONO_FAMILIES = ("Noto Sans Mono CJK SC", "DejaVu Sans Mono", "Consolas", "Menlo")

# Colours
BG = "#f5f7fa"
CARD = "#ffffff"
BORDER = "#dde1e6"
TEXT = "#1f2329"
MUTED = "#646a73"
ACCENT = "#1f5fbf"
ACCENT_ACTIVE = "#174a96"
ACCENT_DISABLED = "#a8bddf"
DANGER = "#c62828"
DANGER_BG = "#fdecea"
WARN = "#8a5300"
WARN_BG = "#fff4e0"
INFO = "#1f4f8f"
INFO_BG = "#e8f1fd"
OK = "#1b6e3a"
OK_BG = "#e6f4ea"
SELECT_BG = "#1f5fbf"
#: row colours of certificates by expiry: ≤ 30 days, ≤ 7 days, expired
AMBER = "#a86400"
ORANGE = "#d4440c"


@dataclass(frozen=True)
class Fonts:
    heading: Any
    sub: Any
    origin: Any
    bold: Any
    small: Any
    mono: Any
    pin: Any
    icon: Any


def setup_fonts(root: Any) -> Fonts:
    """Point Tk's named fonts at a CJK family (size 10) and make the fonts we use."""
    from tkinter import font as tkfont

    families = set(tkfont.families(root))
    cjk = next((f for f in CJK_FAMILIES if f in families), None)
    mono = next((f for f in MONO_FAMILIES if f in families), None)
    for name in ("TkDefaultFont", "TkTextFont", "TkMenuFont", "TkHeadingFont", "TkCaptionFont"):
        named = tkfont.nametofont(name, root)
        if cjk:
            named.configure(family=cjk)
        named.configure(size=10)
    base = tkfont.nametofont("TkDefaultFont", root).actual()["family"]
    family = cjk or base
    return Fonts(
        heading=tkfont.Font(root, family=family, size=14, weight="bold"),
        sub=tkfont.Font(root, family=family, size=9),
        origin=tkfont.Font(root, family=family, size=12, weight="bold"),
        bold=tkfont.Font(root, family=family, size=10, weight="bold"),
        small=tkfont.Font(root, family=family, size=9),
        mono=tkfont.Font(root, family=mono or "TkFixedFont", size=9),
        pin=tkfont.Font(root, family=family, size=13),
        icon=tkfont.Font(root, family=family, size=16, weight="bold"),
    )


def apply_style(root: Any, fonts: Fonts) -> Any:
    """Configure the ttk styles every window uses; returns the ttk.Style."""
    from tkinter import ttk

    style = ttk.Style(root)
    if style.theme_use() in ("default", "classic", "alt"):
        style.theme_use("clam")
    style.configure(".", background=BG, foreground=TEXT)
    style.configure("TFrame", background=BG)
    style.configure("Card.TFrame", background=CARD)
    style.configure("TLabel", background=BG, foreground=TEXT)
    style.configure("Heading.TLabel", background=CARD, font=fonts.heading)
    style.configure("Sub.TLabel", background=CARD, foreground=MUTED, font=fonts.sub)
    style.configure("Key.TLabel", foreground=MUTED)
    style.configure("Value.TLabel", foreground=TEXT)
    style.configure("Strong.TLabel", font=fonts.bold)
    style.configure("Muted.TLabel", foreground=MUTED, font=fonts.small)
    style.configure("Origin.TLabel", foreground=ACCENT, font=fonts.origin)
    style.configure(
        "Insecure.TLabel",
        foreground="#ffffff",
        background=DANGER,
        font=fonts.bold,
        padding=(6, 1),
    )
    for name, fg, bg in (
        ("Danger", DANGER, DANGER_BG),
        ("Warn", WARN, WARN_BG),
        ("Info", INFO, INFO_BG),
        ("Ok", OK, OK_BG),
    ):
        style.configure(f"{name}.TLabel", foreground=fg, background=bg, padding=(10, 6))
    style.configure("FinalTry.TLabel", foreground="#ffffff", background=DANGER, padding=(10, 6))
    style.configure("Caps.TLabel", foreground=WARN, font=fonts.small)
    style.configure("TButton", padding=(14, 5))
    style.configure(
        "Primary.TButton",
        background=ACCENT,
        foreground="#ffffff",
        bordercolor=ACCENT_ACTIVE,
        focuscolor="#ffffff",
        font=fonts.bold,
    )
    style.map(
        "Primary.TButton",
        background=[
            ("disabled", ACCENT_DISABLED),
            ("pressed", ACCENT_ACTIVE),
            ("active", ACCENT_ACTIVE),
        ],
        foreground=[("disabled", "#eef2f8")],
        bordercolor=[("disabled", ACCENT_DISABLED)],
    )
    style.configure("TEntry", padding=(6, 4))
    style.configure("Treeview", rowheight=fonts.bold.metrics("linespace") + 8)
    style.configure("Treeview.Heading", font=fonts.bold, padding=(6, 4))
    style.map(
        "Treeview",
        background=[("selected", SELECT_BG)],
        foreground=[("selected", "#ffffff")],
    )
    return style


def setup_look(root: Any) -> Fonts:
    """Fonts and ttk styles for a new root window."""
    root.configure(background=BG)
    fonts = setup_fonts(root)
    apply_style(root, fonts)
    return fonts


def badge(parent: Any, fonts: Fonts, *, size: int = 44, colour: str = ACCENT) -> Any:
    """The rounded square with 证 on it (a Canvas, not packed)."""
    import tkinter as tk

    icon = tk.Canvas(
        parent, width=size, height=size, background=CARD, highlightthickness=0, takefocus=0
    )
    r, s = round(size * 9 / 44), size
    pts = [r, 0, s - r, 0, s, 0, s, r, s, s - r, s, s, s - r, s, r, s, 0, s, 0, s - r, 0, r,
           0, 0]  # fmt: skip
    icon.create_polygon(pts, smooth=True, fill=colour, outline=colour)
    icon.create_text(s // 2, s // 2, text="证", fill="#ffffff", font=fonts.icon)
    return icon


def header(parent: Any, fonts: Fonts) -> tuple[Any, Any]:
    """The white band on top: the 证 badge, a heading and an English subheading.

    Packed into ``parent``; returns the (heading, subheading) labels."""
    from tkinter import ttk

    head = ttk.Frame(parent, style="Card.TFrame", padding=(24, 16, 24, 14))
    head.pack(fill="x")
    badge(head, fonts).pack(side="left", padx=(0, 14))
    words = ttk.Frame(head, style="Card.TFrame")
    words.pack(side="left", fill="x", expand=True)
    heading = ttk.Label(words, style="Heading.TLabel")
    heading.pack(anchor="w")
    subheading = ttk.Label(words, style="Sub.TLabel")
    subheading.pack(anchor="w")
    return heading, subheading


def place_centred(root: Any, width: int, height: int) -> None:
    """Size the window and put it in the middle of the screen."""
    x = max((root.winfo_screenwidth() - width) // 2, 0)
    y = max((root.winfo_screenheight() - height) // 2, 0)
    root.geometry(f"{width}x{height}+{x}+{y}")
