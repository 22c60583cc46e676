"""The tray menu as data (pure): what it holds, in which order, and what each
entry does. :mod:`helper.tray.tray` turns it into a pystray menu.

Order (docs/desktop.md): 我的证书 (default: what a left click opens) · 修改密码 ·
应用 ▸ (categories ▸ entries) · 证书延期 · 检测修复 · 技术支持 · ─ · 关于 · 退出.
Backends that show no tooltip (AppIndicator) get the state as a first,
disabled line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from helper.apps import Category
from helper.tray.state import Status, TrayState

SHOW_MYCERTS = "show:mycerts"
SHOW_CHANGEPIN = "show:changepin"
SHOW_DOCTOR = "show:doctor"
SHOW_SUPPORT = "show:support"
SHOW_ABOUT = "show:about"
RENEW = "renew"
QUIT = "quit"
OPEN_PREFIX = "open:"

#: the windows a ``show:`` action (and the control socket's ``show``) may name
WINDOWS = ("mycerts", "changepin", "doctor", "support", "about")


@dataclass(frozen=True)
class MenuEntry:
    label: str
    action: str | None = None
    children: tuple[MenuEntry, ...] = ()
    enabled: bool = True
    default: bool = False

    @property
    def is_separator(self) -> bool:
        return self.label == "-" and self.action is None and not self.children


SEPARATOR = MenuEntry("-")


def open_action(url: str) -> str:
    return OPEN_PREFIX + url


def parse_action(action: str) -> tuple[str, str]:
    """``"show:mycerts"`` → ``("show", "mycerts")``; ``"open:<url>"`` → ``("open", url)``;
    ``"quit"`` → ``("quit", "")``."""
    verb, _, arg = action.partition(":")
    return verb, arg


def apps_menu(apps: Sequence[Category]) -> MenuEntry:
    categories = tuple(
        MenuEntry(c.name, None, tuple(MenuEntry(a.name, open_action(a.url)) for a in c.apps))
        for c in apps
        if c.apps
    )
    return MenuEntry("应用", None, categories, enabled=bool(categories))


def build_menu(
    state: TrayState, apps: Sequence[Category], *, status_line: bool = False
) -> list[MenuEntry]:
    entries: list[MenuEntry] = []
    if status_line:
        entries += [MenuEntry(state.summary, None, enabled=False), SEPARATOR]
    entries += [
        MenuEntry("我的证书", SHOW_MYCERTS, default=True),
        MenuEntry("修改密码", SHOW_CHANGEPIN, enabled=state.status is not Status.NO_KEY),
        apps_menu(apps),
        MenuEntry("证书延期", RENEW),
        MenuEntry("检测修复", SHOW_DOCTOR),
        MenuEntry("技术支持", SHOW_SUPPORT),
        SEPARATOR,
        MenuEntry("关于", SHOW_ABOUT),
        MenuEntry("退出", QUIT),
    ]
    return entries
