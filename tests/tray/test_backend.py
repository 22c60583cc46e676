"""Which pystray backend the tray asks for, per platform and desktop."""

from __future__ import annotations

from pathlib import Path

import pytest

from helper.tray import tray
from helper.tray.tray import TrayUnavailable, choose_backends, load_icon_class


def test_environment_wins() -> None:
    assert choose_backends({"PYSTRAY_BACKEND": "xorg"}, "linux") == ["xorg"]


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_pystrays_own_backend_elsewhere(platform: str) -> None:
    assert choose_backends({}, platform) == [""]


def test_linux_without_a_session_bus_gets_xorg(tmp_path: Path) -> None:
    assert choose_backends({"XDG_RUNTIME_DIR": str(tmp_path)}, "linux") == ["xorg"]


def test_linux_with_a_session_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent"}
    monkeypatch.setattr(tray, "_sni_host", lambda: False)
    assert choose_backends(env, "linux") == ["gtk", "xorg"]
    monkeypatch.setattr(tray, "_sni_host", lambda: True)
    assert choose_backends(env, "linux") == ["appindicator", "gtk", "xorg"]


def test_no_backend_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(TrayUnavailable) as err:
        load_icon_class(["nosuchbackend"])
    assert "nosuchbackend" in str(err.value)
