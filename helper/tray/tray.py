"""The pystray wrapper: icon, tooltip and menu, with a thread-safe ``set_state``.

Backend (docs/desktop.md): ``PYSTRAY_BACKEND`` when set; on Windows and macOS
pystray's own; on Linux AppIndicator when a StatusNotifier host is on the
session bus, else GTK (an XEmbed tray icon, needs PyGObject and a session bus),
else Xorg (no menu: a left click opens 我的证书). The platform-specific bits
are :func:`choose_backends`, :func:`_set_tooltip` and :func:`_xorg_clicks`.

The icon's *title* is ASCII on Xorg and GTK: pystray's Xorg backend crashes on
a non-Latin-1 title; Chinese goes in the tooltip and the menu. On Windows and
macOS pystray's title *is* the tooltip.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from helper.apps import Category
from helper.tray.icons import icon_for
from helper.tray.menu import MenuEntry, build_menu
from helper.tray.state import TrayState

log = logging.getLogger(__name__)

ICON_NAME = "certhelper"
#: GTK's program name, hence the tray icon window's WM class
PRGNAME = "chtray"
#: backends whose title pystray shows as the tooltip
_TITLE_IS_TOOLTIP = ("win32", "darwin")
#: backends without tooltips: the menu gets a status line instead
_NO_TOOLTIP = ("appindicator",)
SNI_WATCHER = "org.kde.StatusNotifierWatcher"


class TrayUnavailable(Exception):
    """No pystray backend works here (no display, no tray libraries)."""


# --- backend choice (platform code) ------------------------------------------


def _session_bus(environ: Mapping[str, str]) -> bool:
    if environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return True
    runtime = environ.get("XDG_RUNTIME_DIR")
    return runtime is not None and bool(runtime) and Path(runtime, "bus").exists()


def _gi_has(namespace: str, version: str) -> bool:
    try:
        import gi

        gi.require_version(namespace, version)
        return True
    except (ImportError, ValueError):
        return False


def _sni_host() -> bool:
    """Whether a StatusNotifier watcher (KDE, GNOME's AppIndicator extension,
    a panel with an SNI tray) owns its name on the session bus."""
    if not (_gi_has("AyatanaAppIndicator3", "0.1") or _gi_has("AppIndicator3", "0.1")):
        return False
    try:
        from gi.repository import Gio, GLib

        bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        reply = bus.call_sync(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameHasOwner",
            GLib.Variant("(s)", (SNI_WATCHER,)),
            GLib.VariantType("(b)"),
            Gio.DBusCallFlags.NONE,
            1000,
            None,
        )
        return bool(reply.unpack()[0])
    except Exception as exc:  # no bus, no GLib: no StatusNotifier host
        log.debug("no StatusNotifier host: %s", exc)
        return False


def choose_backends(
    environ: Mapping[str, str] | None = None, platform: str | None = None
) -> list[str]:
    """The pystray backends to try, best first ("" = pystray's own choice)."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if environ.get("PYSTRAY_BACKEND"):
        return [environ["PYSTRAY_BACKEND"]]
    if platform in ("win32", "darwin"):
        return [""]
    order = []
    if importlib.util.find_spec("gi") is not None and _session_bus(environ):
        if _sni_host():
            order.append("appindicator")
        order.append("gtk")  # pystray's GTK backend needs the session bus (notifications)
    order.append("xorg")
    return order


def load_icon_class(backends: Sequence[str]) -> tuple[str, type]:
    """Import the first backend of ``backends`` that works: (name, Icon class)."""
    errors = []
    saved = os.environ.get("PYSTRAY_BACKEND")
    for name in backends:
        try:
            if name:
                os.environ["PYSTRAY_BACKEND"] = name  # pystray picks one when imported
            if name in ("gtk", "appindicator"):
                _set_prgname()
            import pystray

            module = importlib.import_module(f"pystray._{name}") if name else pystray
            cls = module.Icon
            return cls.__module__.rsplit("._", 1)[-1], cls
        except Exception as exc:  # ImportError, or Xlib's when there is no display
            errors.append(f"{name or 'default'}: {exc}")
            sys.modules.pop("pystray", None)
        finally:
            if saved is None:
                os.environ.pop("PYSTRAY_BACKEND", None)
            else:
                os.environ["PYSTRAY_BACKEND"] = saved
    raise TrayUnavailable("; ".join(errors) or "no backend")


def _set_prgname() -> None:
    """GTK names the icon's X window after the program; "main.py" or "certhelper"
    would make it look like one of our dialogs (WM class certhelper) to tools."""
    with contextlib.suppress(Exception):
        from gi.repository import GLib

        if GLib.get_prgname() in (None, ""):
            GLib.set_prgname(PRGNAME)


def _xorg_clicks(icon: Any) -> None:
    """pystray's Xorg icon window does not ask for button events (0.19.5), so a
    click would never arrive; ask for them before its event loop starts."""
    window = getattr(icon, "_window", None)
    if window is None:
        return
    from Xlib import X

    with contextlib.suppress(Exception):
        window.change_attributes(
            event_mask=X.ExposureMask | X.StructureNotifyMask | X.ButtonPressMask
        )
        icon._display.flush()


def _set_tooltip(backend: str, icon: Any, text: str) -> None:
    """GTK's status icon has a real tooltip; pystray does not set it."""
    if backend != "gtk":
        return
    from gi.repository import GLib

    status_icon = getattr(icon, "_status_icon", None)
    if status_icon is not None:
        GLib.idle_add(lambda: status_icon.set_tooltip_text(text) and False)


# --- the tray ------------------------------------------------------------------


class Tray:
    """The tray icon. ``on_action`` gets a menu action string (helper.tray.menu)
    on the tray's own thread: it must return quickly."""

    def __init__(
        self,
        *,
        on_action: Callable[[str], None],
        apps: Sequence[Category],
        state: TrayState,
        backends: Sequence[str] | None = None,
    ) -> None:
        self.backend, icon_cls = load_icon_class(
            choose_backends() if backends is None else backends
        )
        log.info("tray backend: %s", self.backend)
        self._on_action = on_action
        self._stopping = False
        self._apps = list(apps)
        self.state = state
        self._icon = icon_cls(
            # Xorg names the icon's window class after it: keep it apart from our
            # `certhelper` windows, as GTK's program name does
            PRGNAME if self.backend == "xorg" else ICON_NAME,
            icon=icon_for(state.status),
            title=self._title(state),
            menu=self._menu(state),
        )
        if self.backend == "xorg":
            _xorg_clicks(self._icon)

    @property
    def status_line(self) -> bool:
        return self.backend in _NO_TOOLTIP

    def _title(self, state: TrayState) -> str:
        return state.tooltip if self.backend in _TITLE_IS_TOOLTIP else ICON_NAME

    def entries(self, state: TrayState) -> list[MenuEntry]:
        return build_menu(state, self._apps, status_line=self.status_line)

    def _menu(self, state: TrayState) -> Any:
        import pystray

        return pystray.Menu(*self._items(self.entries(state)))

    def _items(self, entries: Sequence[MenuEntry]) -> list[Any]:
        import pystray

        items: list[Any] = []
        for e in entries:
            if e.is_separator:
                items.append(pystray.Menu.SEPARATOR)
            elif e.children:
                submenu = pystray.Menu(*self._items(e.children))
                items.append(pystray.MenuItem(e.label, submenu, enabled=e.enabled))
            else:
                action = functools.partial(self._fire, e.action) if e.action else None
                items.append(
                    pystray.MenuItem(e.label, action, enabled=e.enabled, default=e.default)
                )
        return items

    def _fire(self, action: str, _icon: Any = None, _item: Any = None) -> None:
        try:
            self._on_action(action)
        except Exception:
            log.exception("tray action %s failed", action)

    # --- thread-safe -----------------------------------------------------------

    def set_state(self, state: TrayState) -> None:
        old, self.state = self.state, state
        if state == old:
            return
        if state.status is not old.status:
            self._icon.icon = icon_for(state.status)
        self._icon.title = self._title(state)
        self._icon.menu = self._menu(state)
        _set_tooltip(self.backend, self._icon, state.tooltip)

    def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Show the icon and handle its events until :meth:`stop` (main thread).
        ``on_ready`` is called (on another thread) once the icon is shown."""

        failed = threading.Event()

        def setup(icon: Any) -> None:
            if failed.is_set():
                return
            icon.visible = True
            _set_tooltip(self.backend, icon, self.state.tooltip)
            if on_ready is not None:
                on_ready()

        try:
            self._icon.run(setup=setup)
        except Exception:
            failed.set()
            _release_setup_thread(self._icon)
            if not self._stopping:
                raise
            # pystray's GTK backends close their last notification on the way out,
            # which fails where no notification service runs (a bare session bus)
            log.debug("tray shutdown", exc_info=True)

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(Exception):
            self._icon.stop()


def _release_setup_thread(icon: Any) -> None:
    """pystray starts its setup thread (not a daemon thread) before the backend, and
    that thread waits until the icon is ready. A backend that fails first (e.g. GTK
    without a session bus) leaves it waiting for ever, and the process could never
    exit: hand it the ready signal (it then finds ``failed`` set and returns)."""
    thread = getattr(icon, "_setup_thread", None)
    queue = getattr(icon, "_Icon__queue", None)  # pystray's private ready queue
    if thread is not None and thread.is_alive() and queue is not None:
        queue.put(False)
