"""Window processes (我的证书, 修改密码) under the session's Xvfb, with their probe
files, and token directories to plug and unplug."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.cli import Cli
from tests.support.desktop import Desktop
from tests.support.tokens import Fixtures


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
