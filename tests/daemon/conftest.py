"""In-process daemons: real bridge (loopback, free ports, TLS identity in tmp with
no keyring), a token service over fixed views built from real certificates, a
tray double and a window double that record what they were asked."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest

from helper.config import Config
from helper.daemon.run import Daemon
from helper.services import control
from helper.services.tokens import TokenView
from tests.support.daemon import APPS, FakeTokens, FakeTray, FakeWindows, Harness, make_config


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """HOME and the XDG dirs in tmp; the runtime dir short (AF_UNIX path limit)."""
    with tempfile.TemporaryDirectory(prefix="chrt-") as runtime:
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
        monkeypatch.delenv("CERTHELPER_CONFIG", raising=False)
        yield tmp_path


@pytest.fixture
def start_daemon(home: Path) -> Iterator[Callable[..., Harness]]:
    started: list[Harness] = []

    def start(
        views: list[TokenView], *, config: Config | None = None, wait: bool = True, **kw: Any
    ) -> Harness:
        tokens = FakeTokens(views)
        windows = FakeWindows()
        urls: list[str] = []
        got = control.claim()
        assert isinstance(got, control.Claim)
        options = dict(
            tray_factory=FakeTray,
            prompter=object(),
            service_factory=lambda _config: tokens,
            apps=APPS,
            windows=windows,
            open_url=urls.append,
            state_interval=0.2,
            bridge_options={"keyring_backend": keyring.backends.fail.Keyring()},
        )
        options.update(kw)
        daemon = Daemon(config or make_config(), got, **options)
        h = Harness(daemon, tokens, windows, urls, got.dir, None)  # type: ignore[arg-type]

        def main() -> None:
            try:
                h.result["code"] = daemon.run()
            except BaseException as exc:
                h.result["error"] = exc
            finally:
                got.close()

        h.thread = threading.Thread(target=main, daemon=True)
        h.thread.start()
        started.append(h)
        if wait:
            end = time.monotonic() + 30
            while daemon.tray is None and "error" not in h.result and time.monotonic() < end:
                time.sleep(0.05)
            assert "error" not in h.result, h.result
            assert h.tray.started.wait(10)
        return h

    yield start
    for h in started:
        if h.thread.is_alive():
            try:
                h.stop()
            except Exception:
                h.daemon.request_stop()
                h.thread.join(10)
