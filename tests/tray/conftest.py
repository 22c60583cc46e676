"""A desktop with a system tray for the real-window tests: Xvfb (on a random
high display number) and trayer as the XEmbed tray host, one
of each per session. Programs that show a pystray GTK icon run under
``dbus-run-session`` (pystray's GTK backend connects to the session bus) with
``PYSTRAY_BACKEND=gtk``; see /work/shared/docs/desktop-testing.md.

Screenshots go to a temporary folder (or ``$CERTHELPER_UISHOTS``), printed at
the end of the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.tray import (
    SHOTS,
    TrayDesktop,
    require_tools,
    start_trayer,
    start_xvfb,
    stop_process,
)


@pytest.fixture(scope="session")
def tray_shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("CERTHELPER_UISHOTS")
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        return Path(chosen)
    return tmp_path_factory.mktemp("tray-shots")


@pytest.fixture(scope="session")
def tray_desktop(tray_shots: Path) -> Iterator[TrayDesktop]:
    """Xvfb with trayer docked at the top right (the XEmbed tray host)."""
    require_tools()
    xvfb, display = start_xvfb()
    desk = TrayDesktop(display, tray_shots)
    try:
        host = start_trayer(desk, tray_shots / "trayer.log")
        try:
            yield desk
        finally:
            stop_process(host)
    finally:
        stop_process(xvfb)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SHOTS:
        terminalreporter.write_line(f"tray screenshots ({len(SHOTS)}): {SHOTS[0].parent}")
