"""Autostart: an XDG autostart entry, ``~/.config/autostart/certhelper.desktop``.

Why XDG autostart and not a systemd user unit: the tray icon needs the graphical
session (DISPLAY / WAYLAND_DISPLAY, the D-Bus session bus, the StatusNotifier host),
and every desktop that shows a tray starts XDG autostart entries *inside* that session
(GNOME, KDE, Xfce, MATE, Cinnamon, Deepin, UKUI, LXQt) — also the ones without
systemd user sessions. A systemd unit would need ``graphical-session.target``, which
only some desktops reach, and environment import, or it starts before the display.
On systemd desktops that run XDG autostart through ``systemd-xdg-autostart-generator``
the entry becomes a unit anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from installer import paths
from installer.desktop import exec_line, remove_recorded, write_if_changed
from installer.manifest import Manifest
from installer.report import Step

NAME = "自启动 autostart"


def entry_text() -> str:
    return "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            "Version=1.0",
            "Name=Certificate Helper",
            "Name[zh_CN]=证书助手",
            "Comment=USB key certificate helper (tray and localhost service)",
            "Comment[zh_CN]=USB Key 数字证书助手（托盘图标与本机服务）",
            f"Exec={exec_line('run')}",
            "Terminal=false",
            "X-GNOME-Autostart-enabled=true",
            "X-GNOME-Autostart-Delay=2",
            "",
        ]
    )


def install(manifest: Manifest, *, dry_run: bool = False) -> Step:
    path = paths.autostart_file()
    status = write_if_changed(path, entry_text(), manifest, dry_run=dry_run)
    return Step(NAME, "exists" if status == "exists" else "done", str(path))


def uninstall(manifest: Manifest, *, dry_run: bool = False) -> Step:
    path = paths.autostart_file()
    if remove_recorded(path, manifest, dry_run=dry_run) == "done":
        return Step(NAME, "done", f"已删除 removed {path}")
    return Step(NAME, "skipped", "未由安装程序添加 not added by install")


@dataclass(frozen=True)
class AutostartStatus:
    """For ``certhelper doctor``: is certhelper started with the session?"""

    path: Path
    present: bool
    enabled: bool
    exec_ok: bool  # the Exec program exists

    @property
    def ok(self) -> bool:
        return self.present and self.enabled and self.exec_ok


def status() -> AutostartStatus:
    import shlex
    import shutil

    path = paths.autostart_file()
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return AutostartStatus(path, False, False, False)
    keys = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )
    enabled = (
        keys.get("X-GNOME-Autostart-enabled", "true").lower() != "false"
        and keys.get("Hidden", "false").lower() != "true"
    )
    try:
        argv = shlex.split(keys.get("Exec", "").replace("\\\\", "\\"))
    except ValueError:
        argv = []
    exec_ok = bool(argv) and shutil.which(argv[0]) is not None and "run" in argv[1:]
    return AutostartStatus(path, True, enabled, exec_ok)
