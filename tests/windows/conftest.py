"""The window processes (我的证书, 修改密码) as a person uses them: real windows
under the session's Xvfb (tests/ui/conftest.py), driven by xdotool, against a
private copy of the SoftHSM tokens.

Each window runs as its own process with the environment `tests.conftest.Cli`
builds (SOFTHSM2_CONF = the copy, CERTHELPER_CONFIG = a config with
``use_catalog = false`` and the SoftHSM module, HOME and XDG dirs in tmp) plus
DISPLAY and ``CERTHELPER_UI_PROBE``: the window writes what it shows there as
JSON lines (see the module docstrings of helper.ui.mycerts and
helper.ui.changepin), which is what the tests assert on, beside screenshots.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, Fixtures
from tests.ui.conftest import Desktop, desk, shots_dir, xvfb  # noqa: F401


class WindowApp:
    """One window process (``python -m helper.ui.<name>``) and its probe file."""

    def __init__(
        self, desktop: Desktop, cli: Cli, name: str, args: tuple[str, ...], env: dict[str, str]
    ):
        self.desk = desktop
        self.probe = cli.home / f"probe-{name}-{time.monotonic_ns()}.jsonl"
        self.stderr = cli.home / f"{name}.stderr"
        self.env = {**cli.env, "DISPLAY": desktop.display, "CERTHELPER_UI_PROBE": str(self.probe)}
        self.env.update(env)
        with open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"helper.ui.{name}", *args],
                env=self.env,
                cwd=cli.home,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    # --- probe -----------------------------------------------------------------

    def lines(self) -> list[dict[str, Any]]:
        try:
            text = self.probe.read_text("utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def wait_for(
        self, what: str, test: Callable[[list[dict[str, Any]]], Any], timeout: float = 15
    ) -> Any:
        """Poll the probe until ``test(lines)`` is truthy; return its value."""
        end = time.monotonic() + timeout
        while True:
            found = test(self.lines())
            if found:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the window exited ({self.proc.returncode}) waiting for {what}: "
                    f"{self.stderr.read_text(errors='replace')[-2000:]}"
                )
            if time.monotonic() > end:
                raise AssertionError(f"no {what} within {timeout} s; probe: {self.lines()[-5:]}")
            time.sleep(0.05)

    # --- process -----------------------------------------------------------------

    def wait_exit(self, timeout: float = 10) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the window did not exit within {timeout} s") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # the window closes itself on SIGTERM
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def home_cli(fresh_tokens: Fixtures, tmp_path: Path, module_path: str) -> Cli:
    """The CLI (and the windows' environment) on a private copy of the tokens."""
    home = tmp_path / "home"
    home.mkdir()
    return Cli(fresh_tokens, home, module_path)


@pytest.fixture
def open_window(desk: Desktop, home_cli: Cli) -> Iterator[Callable[..., WindowApp]]:  # noqa: F811
    """Start a window process: ``open_window("mycerts", "--token", s, env={...})``."""
    started: list[WindowApp] = []

    def start(name: str, *args: str, env: dict[str, str] | None = None) -> WindowApp:
        app = WindowApp(desk, home_cli, name, args, env or {})
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()


class TokenDirs:
    """Unplug and plug SoftHSM tokens of the private copy by moving their
    directories out of and back into the token directory (atomic renames)."""

    def __init__(self, fx: Fixtures, stash: Path) -> None:
        self.tokens = fx.dir / "tokens"
        self.stash = stash
        stash.mkdir()

    def _dir_of(self, serial: str, where: Path) -> Path:
        # SoftHSM names a token directory by a UUID that ends in the serial
        for d in where.iterdir():
            if d.is_dir() and d.name.replace("-", "").endswith(serial):
                return d
        raise AssertionError(f"no token directory for {serial} in {where}")

    def unplug(self, serial: str) -> None:
        d = self._dir_of(serial, self.tokens)
        d.rename(self.stash / d.name)

    def plug(self, serial: str) -> None:
        d = self._dir_of(serial, self.stash)
        d.rename(self.tokens / d.name)

    def unplug_all(self) -> list[str]:
        serials = []
        for d in list(self.tokens.iterdir()):
            if d.is_dir():
                serials.append(d.name.replace("-", "")[-16:])
                d.rename(self.stash / d.name)
        return serials


@pytest.fixture
def token_dirs(fresh_tokens: Fixtures, tmp_path: Path) -> TokenDirs:
    return TokenDirs(fresh_tokens, tmp_path / "unplugged")
