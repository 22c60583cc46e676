"""`make demo` on a desktop (`certhelper --demo demo` with a display): the tray daemon
itself hosts the demo hall and the demo CA, makes the browser trust the helper, and a
second `run` just opens 我的证书. A port held by another program gets a Chinese message
naming the port and the program.

These run the real command in a child process on the session's Xvfb, on the demo's
fixed ports (9010, 9020, 17212, 17213): a test fails, with a message, if something else
on this machine holds them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.tokens import build_fixtures

PORTS = (9010, 9020, 17212, 17213)


def _free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory, xvfb: str) -> Iterator[dict[str, str]]:
    """A fresh HOME with the demo build, and the session's Xvfb as the desktop."""
    busy = [p for p in PORTS if not _free(p)]
    if busy:
        pytest.fail(f"the demo's ports are taken on this machine: {busy}")
    home = tmp_path_factory.mktemp("demo-desktop")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "CERTHELPER_"))}
    env.update(
        DISPLAY=xvfb,
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "c"),
        XDG_DATA_HOME=str(home / "d"),
        XDG_STATE_HOME=str(home / "s"),
        XDG_CACHE_HOME=str(home / "k"),
        PYTHONIOENCODING="utf-8",
    )
    env.pop("SOFTSKF_DIR", None)
    build_fixtures(home / "d" / "certhelper" / "demo-token", profile="demo")
    yield env


def _run(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "helper.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Demo:
    """`certhelper --demo demo --no-browser` in the background, its output collected."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "helper.cli.main", "--demo", "demo", "--no-browser"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its windows too are reaped by stop()
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} in the demo's output: {self.lines}")

    def stop(self) -> int:
        """SIGTERM, as a session's logout sends it; on a hang, the stacks (py-spy) go
        into the failure message before the process is killed."""
        self.proc.terminate()
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            spy = Path(sys.executable).with_name("py-spy")
            dump = subprocess.run(
                [str(spy), "dump", "--pid", str(self.proc.pid)],
                capture_output=True,
                text=True,
                check=False,
            )
            self.proc.kill()
            raise AssertionError(
                f"the demo did not stop on SIGTERM:\n{dump.stdout}{dump.stderr}"
            ) from None


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:  # loopback only
        return resp.status, resp.read().decode("utf-8")


def test_demo_on_a_desktop_is_the_tray_daemon_with_the_demo_sites(
    demo_home: dict[str, str],
) -> None:
    demo = Demo(demo_home)
    try:
        demo.wait_for("证书助手已启动")  # the tray daemon's own line
        assert _get("http://127.0.0.1:9010/ish/")[0] == 200
        assert _get("http://127.0.0.1:9020/")[0] == 200
        assert '"app": "certhelper"' in _get("http://127.0.0.1:17212/v1/alive")[1]
        # the browser trusts the helper without a manual step, and says so once
        assert any("已让本机浏览器信任证书助手的本机证书" in line for line in demo.lines)
        db = Path(demo_home["HOME"]) / ".pki" / "nssdb"
        listed = subprocess.run(
            ["certutil", "-d", f"sql:{db}", "-L"], capture_output=True, text=True, check=True
        )
        assert "certhelper" in listed.stdout.lower()
        # a second run does not clash: the daemon that runs is the tray daemon
        second = _run(demo_home, "--demo", "run")
        assert second.returncode == 0 and "已在运行" in second.stdout, second
    finally:
        try:
            assert demo.stop() in (0, -15), demo.lines
        finally:  # 我的证书, opened by the second run, outlives the daemon by design
            with contextlib.suppress(ProcessLookupError):
                os.killpg(demo.proc.pid, signal.SIGKILL)


def test_a_port_held_by_another_program_is_named(demo_home: dict[str, str]) -> None:
    squatter = subprocess.Popen(
        [sys.executable, "-c",
         "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',17213)); s.listen();"
         " print('ready',flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert squatter.stdout is not None and squatter.stdout.readline().strip() == "ready"
        done = _run(demo_home, "--demo", "demo", "--no-browser")
        assert done.returncode != 0
        message = done.stderr + done.stdout
        assert "端口 127.0.0.1:17213 已被" in message, message
        assert f"pid {squatter.pid}" in message, message  # the program is named
    finally:
        squatter.kill()
        squatter.wait()
