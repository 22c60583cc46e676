"""The tray icon (docs/desktop.md): menu and state as pure data (``menu``,
``state``), icons drawn with Pillow (``icons``), the pystray wrapper (``tray``)."""

from helper.tray.menu import MenuEntry, build_menu
from helper.tray.state import Status, TrayState, compute_state

__all__ = ["MenuEntry", "Status", "TrayState", "build_menu", "compute_state"]
