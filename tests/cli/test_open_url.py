"""``certhelper open-url``: wakes a running daemon, or starts one."""

from __future__ import annotations

from typing import Any

import pytest

from helper.cli import open_url
from helper.cli.main import main
from helper.services import control
from installer.desktop import quote_exec_arg
from tests.support.browser import LoopThread
from tests.support.installer import Home


def test_running_daemon_is_asked_to_show_a_window(home: Home) -> None:
    claim = control.claim()
    assert isinstance(claim, control.Claim)
    seen: list[dict[str, Any]] = []

    def handler(message: dict[str, Any]) -> dict[str, Any]:
        seen.append(message)
        return {"ok": True}

    loop = LoopThread()
    try:
        loop.run(claim.serve(handler))
        out = home.run("open-url", "P11://127.0.0.1:8080/login").stdout
        assert "已在运行" in out
        home.run("open-url", "certhelper://changepin")
    finally:
        loop.loop.call_soon_threadsafe(claim.close)
        loop.stop()
    assert seen == [
        {"cmd": "show", "window": "mycerts"},
        {"cmd": "show", "window": "changepin"},
    ]


def test_no_daemon_starts_one(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    spawned: list[bool] = []
    monkeypatch.setattr(open_url, "spawn_daemon", lambda: spawned.append(True))
    assert main(["open-url", "p11://whatever"]) == 0
    assert spawned == [True]
    # the probe let go of the endpoint, so `certhelper run` can claim it
    again = control.claim()
    assert isinstance(again, control.Claim)
    again.close()


def test_other_schemes_are_refused(home: Home) -> None:
    result = home.run("open-url", "https://example.cn/", check=False)
    assert result.returncode == 2


@pytest.mark.parametrize(
    ("url", "window"),
    [
        ("P11://anything", "mycerts"),
        ("certhelper://doctor", "doctor"),
        ("certhelper:about", "about"),
        ("certhelper://unknown", "mycerts"),
    ],
)
def test_window_for(url: str, window: str) -> None:
    assert open_url.window_for(url) == window


def test_exec_quoting() -> None:
    assert quote_exec_arg("/usr/bin/certhelper") == "/usr/bin/certhelper"
    assert quote_exec_arg("/opt/my apps/certhelper") == '"/opt/my apps/certhelper"'
    assert quote_exec_arg('/a$b"c') == '"/a\\\\$b\\\\"c"'
    assert quote_exec_arg("50%") == '"50%%"'
