"""`certhelper run` for real: a subprocess under Xvfb with trayer and a D-Bus
session, over a private copy of the SoftHSM tokens. It serves /v1/ping over
HTTPS, docks its tray icon with a Chinese menu, tells a second `certhelper run`
to go away (after opening 我的证书), follows keys being removed and put back,
and quits cleanly on the control socket's ``quit``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helper.cli.commands import ALREADY_RUNNING
from helper.services import control
from helper.tray.icons import BLUE, GREY
from tests.support.procs import alive
from tests.support.tokens import Fixtures, copy_fixtures
from tests.support.tray import TrayDesktop


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Run:
    home: Path
    runtime: Path
    fx: Fixtures
    env: dict[str, str]
    port: int
    hebca_port: int
    proc: subprocess.Popen[str] | None = None

    @property
    def control_dir(self) -> Path:
        return self.runtime / "certhelper"

    @property
    def log(self) -> str:
        path = self.home / "state" / "certhelper" / "log" / "certhelper.log"
        return path.read_text("utf-8", errors="replace") if path.exists() else "(no log)"

    def call(self, message: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        return control.request(message, self.control_dir, timeout=timeout)

    def start(self, desk: TrayDesktop) -> None:
        desk.park_pointer()
        self.proc = subprocess.Popen(
            ["dbus-run-session", "--", sys.executable, "-m", "helper.cli.main", "run"],
            env=self.env,
            cwd=self.home,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_state(self, state: str, timeout: float = 30) -> dict[str, Any]:
        end = time.monotonic() + timeout
        reply: dict[str, Any] = {}
        while time.monotonic() < end:
            reply = self.call({"cmd": "state"})
            if reply.get("state") == state:
                return reply
            time.sleep(0.25)
        raise AssertionError(f"state stayed {reply} (wanted {state})\n{self.log[-3000:]}")


@pytest.fixture
def run(
    fixtures: Fixtures, tmp_path: Path, module_path: str, tray_desktop: TrayDesktop
) -> Iterator[Run]:
    home = tmp_path / "home"
    home.mkdir()
    fx = copy_fixtures(fixtures, tmp_path / "fx")
    port, hebca_port = free_port(), free_port()
    config = home / "config.toml"
    config.write_text(
        f'use_catalog = false\nmodules = ["{module_path}"]\nsofthsm2_conf = "{fx.conf}"\n'
        f"[bridge]\nport = {port}\n[hebca]\nport = {hebca_port}\n",
        "utf-8",
    )
    with tempfile.TemporaryDirectory(prefix="chrun-") as runtime:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("XDG_", "CERTHELPER_", "DBUS_", "SOFTHSM2_"))
        }
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / "config"),
            XDG_DATA_HOME=str(home / "data"),
            XDG_STATE_HOME=str(home / "state"),
            XDG_CACHE_HOME=str(home / "cache"),
            XDG_RUNTIME_DIR=runtime,
            CERTHELPER_CONFIG=str(config),
            SOFTHSM2_CONF=str(fx.conf),
            PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
            DISPLAY=tray_desktop.display,
            PYSTRAY_BACKEND="gtk",
            NO_AT_BRIDGE="1",
            LANG="C.UTF-8",
            PYTHONIOENCODING="utf-8",
        )
        r = Run(home, Path(runtime), fx, env, port, hebca_port)
        try:
            yield r
        finally:
            proc = r.proc
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(Exception):
                    r.call({"cmd": "quit"}, timeout=3)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc is not None and proc.stdout is not None:
                proc.stdout.close()
    tray_desktop.wait_windows(0, timeout=20)


def _kill_windows(r: Run) -> None:
    """The window processes the daemon opened (their pids are in its log)."""
    for line in r.log.splitlines():
        if " opened (pid " in line:
            pid = int(line.rsplit("(pid ", 1)[1].rstrip(")"))
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 15)


def near(pixel: tuple[int, int, int], colour: tuple[int, ...], tol: int = 45) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel, colour[:3], strict=True))


def test_certhelper_run(run: Run, tray_desktop: TrayDesktop) -> None:
    desk = tray_desktop
    run.start(tray_desktop)
    # the daemon answers on its control socket once the bridge is up
    end = time.monotonic() + 90
    while True:
        try:
            first = run.call({"cmd": "state"}, timeout=2)
            break
        except control.DaemonUnavailable:
            assert run.proc is not None and run.proc.poll() is None, run.proc.stdout.read()  # type: ignore[union-attr]
            assert time.monotonic() < end, run.log[-3000:]
    # the fixtures hold an expiring and an expired certificate with their keys
    assert first["state"] == "attention", first
    assert "到期" in first["tooltip"] or "过期" in first["tooltip"]

    # the bridge: native API over HTTPS (trusting the per-install CA), HEBCA endpoint
    ca = run.home / "data" / "certhelper" / "tls" / "ca.pem"
    ctx = ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(
        f"https://127.0.0.1:{run.port}/v1/ping", context=ctx, timeout=10
    ) as r:
        assert json.load(r)["app"] == "certhelper"
    with socket.create_connection(("127.0.0.1", run.hebca_port), timeout=5):
        pass

    # the tray icon docks; a right click opens the menu
    x, y, w, h = desk.wait_icon(timeout=30)
    spot = (x + max(1, w * 22 // 100), y + h * 60 // 100)
    desk.click(x + w // 2, y + h // 2, button=3)
    wins = desk.wait_windows(2)
    menu = max((desk.geometry(wid) for wid in wins), key=lambda g: g[3])
    time.sleep(0.3)
    shot = desk.screenshot("daemon-menu")
    mx, my, mw, mh = menu
    desk.crop(
        shot,
        "daemon-menu-crop",
        (max(0, mx - 20), 0, min(800 - max(0, mx - 20), mw + 60), my + mh + 10),
    )
    print(f"daemon tray menu: {shot}")
    desk.key("Escape")
    desk.wait_windows(1)

    # a second `certhelper run`: no second daemon; it asks the first to open 我的证书
    t0 = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "helper.cli.main", "run"],
        env=run.env,
        cwd=run.home,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 0, second.stderr
    assert ALREADY_RUNNING in second.stdout
    assert time.monotonic() - t0 < 15
    end = time.monotonic() + 10
    while "window mycerts opened" not in run.log and time.monotonic() < end:
        time.sleep(0.2)
    assert "window mycerts opened" in run.log
    assert run.proc is not None and run.proc.poll() is None
    # 我的证书 (helper.ui.mycerts, WM class certhelper) shows up on the desktop
    found = desk.run(
        "xdotool", "search", "--sync", "--onlyvisible", "--classname", "certhelper", timeout=30
    )
    assert found.split()
    time.sleep(1.0)
    desk.screenshot("daemon-mycerts")
    _kill_windows(run)

    # keys removed: no key (SoftHSM shows it after the poller's rescan), icon grey
    tokens = run.fx.dir / "tokens"
    aside = run.fx.dir / "unplugged"
    aside.mkdir()
    for d in tokens.iterdir():
        shutil.move(str(d), aside / d.name)
    gone = run.wait_state("no_key")
    assert gone["tooltip"] == "证书助手 — 未检测到 USB Key"
    end = time.monotonic() + 10
    while not near(desk.pixel(*spot), GREY) and time.monotonic() < end:
        time.sleep(0.2)
    assert near(desk.pixel(*spot), GREY), desk.pixel(*spot)
    desk.screenshot("daemon-no-key")

    # and put back
    for d in aside.iterdir():
        shutil.move(str(d), tokens / d.name)
    back = run.wait_state("attention")
    assert back["reasons"] == first["reasons"]
    end = time.monotonic() + 10
    while not near(desk.pixel(*spot), BLUE) and time.monotonic() < end:
        time.sleep(0.2)
    assert near(desk.pixel(*spot), BLUE)

    # quit: the process ends cleanly and leaves no socket behind
    assert run.call({"cmd": "quit"}) == {"ok": True}
    assert run.proc.wait(timeout=30) == 0, run.log[-3000:]
    assert not (run.control_dir / control.SOCKET_NAME).exists()
    problems = [ln for ln in run.log.splitlines() if " ERROR " in ln or "Traceback" in ln]
    assert not problems, "\n".join(problems)
    with pytest.raises(control.DaemonUnavailable):
        run.call({"cmd": "ping"}, timeout=0.5)


def test_sigterm_stops_it_cleanly(run: Run, tray_desktop: TrayDesktop) -> None:
    run.start(tray_desktop)
    end = time.monotonic() + 90
    while True:
        try:
            pid = run.call({"cmd": "ping"}, timeout=2)["pid"]
            break
        except control.DaemonUnavailable:
            assert time.monotonic() < end, run.log[-3000:]
    tray_desktop.wait_icon(timeout=30)
    os.kill(pid, signal.SIGTERM)  # the daemon (dbus-run-session's child), e.g. at logout
    assert run.proc is not None
    assert run.proc.wait(timeout=30) == 0, run.log[-3000:]
    assert "stopping" in run.log
    assert not (run.control_dir / control.SOCKET_NAME).exists()


def test_native_host_starts_the_daemon_when_none_runs(run: Run, tray_desktop: TrayDesktop) -> None:
    """The browser starts ``certhelper native-host`` for the extension; with no daemon
    running it starts ``certhelper run --background`` (detached: the daemon outlives the
    host) and relays the page's first frame once the daemon answers. There is no session
    bus here, so the tray fails and the daemon serves without one; it must still quit
    (pystray's setup thread used to keep that process alive for ever)."""
    from helper.bridge.extension.framing import Decoder, encode

    hall = "http://111.62.46.105:9010"  # a configured hall by default
    with pytest.raises(control.DaemonUnavailable):
        run.call({"cmd": "ping"}, timeout=1)
    host = subprocess.Popen(
        [sys.executable, "-m", "helper.cli.main", "native-host", "chrome-extension://x/"],
        env=run.env,
        cwd=run.home,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert host.stdin is not None and host.stdout is not None
    decoder = Decoder(limit=1 << 20)
    pending: list[Any] = []

    def recv(timeout: float) -> Any:
        end = time.monotonic() + timeout
        while not pending:
            assert time.monotonic() < end, run.log[-3000:]
            assert host.stdout is not None
            pending.extend(decoder.feed(os.read(host.stdout.fileno(), 65536)))
        return pending.pop(0)

    daemon_pid = 0
    try:
        host.stdin.write(encode({"open": {"origin": hall, "protocol": "hebca"}}))
        host.stdin.flush()
        assert recv(90) == {"opened": hall}
        host.stdin.write(encode({"frame": "1|GetCertCount"}))
        host.stdin.flush()
        assert recv(30)["frame"].startswith("1|GetCertCount|")
        daemon_pid = run.call({"cmd": "ping"}, timeout=5)["pid"]
        assert daemon_pid != host.pid
        host.stdin.close()
        assert host.wait(10) == 0
        assert run.call({"cmd": "ping"}, timeout=5)["pid"] == daemon_pid  # it outlives the host
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        with contextlib.suppress(control.DaemonUnavailable):
            run.call({"cmd": "quit"}, timeout=3)
        end = time.monotonic() + 30
        while daemon_pid and alive(daemon_pid):
            if time.monotonic() > end:
                os.kill(daemon_pid, signal.SIGKILL)
                raise AssertionError(f"the daemon did not quit\n{run.log[-3000:]}")
            time.sleep(0.2)
