"""The control socket: one daemon per user, requests and replies, stale files."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helper.services import control
from helper.services.control import Claim, DaemonUnavailable, Running, claim, request


@pytest.fixture
def cdir() -> Iterator[Path]:
    """A short directory (AF_UNIX paths are limited to ~107 bytes)."""
    with tempfile.TemporaryDirectory(prefix="ch-") as d:
        yield Path(d) / "certhelper"


class Served:
    """A claim answering requests on a loop in a thread, recording them."""

    def __init__(self, got: Claim) -> None:
        self.claim = got
        self.seen: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def handler(message: dict[str, Any]) -> dict[str, Any]:
            self.seen.append(message)
            if message["cmd"] == "boom":
                return {"ok": False, "error": "unknown_command"}
            return {"ok": True, "echo": message}

        async def main() -> None:
            await got.serve(handler)
            ready.set()

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(main(), self.loop).result(5)
        assert ready.wait(5)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.claim.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def test_first_claims_second_finds_it(cdir: Path) -> None:
    first = claim(cdir)
    assert isinstance(first, Claim) and first.transport == "unix"
    served = Served(first)
    try:
        second = claim(cdir)
        assert second == Running(cdir)
        reply = request({"cmd": "show", "window": "mycerts"}, second.dir)
        assert reply == {"ok": True, "echo": {"cmd": "show", "window": "mycerts"}}
        assert served.seen == [{"cmd": "show", "window": "mycerts"}]
        assert request({"cmd": "boom"}, cdir) == {"ok": False, "error": "unknown_command"}
    finally:
        served.close()
    # the daemon left: the socket file is gone and the next start wins
    assert not (cdir / control.SOCKET_NAME).exists()
    again = claim(cdir)
    assert isinstance(again, Claim)
    again.close()


def test_daemon_running_follows_the_claim(cdir: Path) -> None:
    assert control.daemon_running(cdir / "never") is False
    first = claim(cdir)
    assert isinstance(first, Claim)
    try:
        assert control.daemon_running(cdir) is True
        assert control.daemon_running(cdir) is True  # asking does not take the lock
    finally:
        first.close()
    assert control.daemon_running(cdir) is False
    again = claim(cdir)  # and asking left nothing behind that blocks the next daemon
    assert isinstance(again, Claim)
    again.close()


def test_modes(cdir: Path) -> None:
    got = claim(cdir)
    assert isinstance(got, Claim)
    try:
        assert stat.S_IMODE(cdir.stat().st_mode) == 0o700
        assert stat.S_IMODE((cdir / control.SOCKET_NAME).stat().st_mode) == 0o600
        assert stat.S_IMODE((cdir / control.LOCK_NAME).stat().st_mode) == 0o600
    finally:
        got.close()


def test_loose_directory_is_tightened(cdir: Path) -> None:
    cdir.mkdir(mode=0o755)
    os.chmod(cdir, 0o755)
    got = claim(cdir)
    assert isinstance(got, Claim)
    got.close()
    assert stat.S_IMODE(cdir.stat().st_mode) == 0o700


def test_stale_socket_file_is_recovered(cdir: Path) -> None:
    """A daemon that was killed leaves its socket file; nobody holds the lock."""
    cdir.mkdir(mode=0o700)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(cdir / control.SOCKET_NAME))
    dead.close()  # the file stays, nothing listens
    with pytest.raises(DaemonUnavailable):
        request({"cmd": "ping"}, cdir, timeout=0.3)
    got = claim(cdir)
    assert isinstance(got, Claim)
    served = Served(got)
    try:
        assert request({"cmd": "ping"}, cdir)["ok"] is True
    finally:
        served.close()


def test_garbage_in_place_of_the_socket(cdir: Path) -> None:
    cdir.mkdir(mode=0o700)
    (cdir / control.SOCKET_NAME).write_text("not a socket")
    got = claim(cdir)
    assert isinstance(got, Claim)
    got.close()


def test_a_client_waits_for_a_daemon_still_starting(cdir: Path) -> None:
    """Lock held, socket not yet answering: the second start waits, then gets through."""
    first = claim(cdir)
    assert isinstance(first, Claim)
    assert claim(cdir) == Running(cdir)
    box: dict[str, Any] = {}
    t = threading.Thread(target=lambda: box.update(reply=request({"cmd": "ping"}, cdir)))
    t.start()
    served = Served(first)  # starts answering only now (the connection was queued)
    try:
        t.join(10)
        assert box["reply"]["ok"] is True
    finally:
        served.close()


def test_bad_requests(cdir: Path) -> None:
    served = Served(claim(cdir))  # type: ignore[arg-type]
    try:
        for raw in (b"not json\n", b"[1, 2]\n", b'{"cmd": 5}\n', b'{"window": "x"}\n'):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(str(cdir / control.SOCKET_NAME))
                s.sendall(raw)
                reply = json.loads(s.makefile("rb").readline())
            assert reply == {"ok": False, "error": "bad_request"}, raw
        assert served.seen == []
    finally:
        served.close()


def test_tcp_transport_needs_the_secret(cdir: Path) -> None:
    """Where AF_UNIX is missing (Windows), loopback TCP with a secret in a user-only file."""
    got = claim(cdir, transport="tcp")
    assert isinstance(got, Claim) and got.transport == "tcp"
    served = Served(got)
    try:
        info = json.loads((cdir / control.TCP_NAME).read_text())
        assert stat.S_IMODE((cdir / control.TCP_NAME).stat().st_mode) == 0o600
        assert claim(cdir, transport="tcp") == Running(cdir)
        reply = request({"cmd": "state"}, cdir, transport="tcp")
        assert reply == {"ok": True, "echo": {"cmd": "state"}}  # the secret is not passed on
        with socket.create_connection(("127.0.0.1", info["port"])) as s:
            s.sendall(b'{"cmd": "quit", "secret": "guess"}\n')
            assert json.loads(s.makefile("rb").readline()) == {"ok": False, "error": "forbidden"}
        assert served.seen == [{"cmd": "state"}]
    finally:
        served.close()
    assert not (cdir / control.TCP_NAME).exists()


def test_control_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert control.control_dir() == tmp_path / "certhelper"
    # no runtime dir: the user's data dir, never a shared /tmp fallback
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert control.control_dir() == tmp_path / "data" / "certhelper"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "missing"))
    assert control.control_dir() == tmp_path / "data" / "certhelper"


def test_path_too_long_is_a_clear_error(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 120)
    with pytest.raises(DaemonUnavailable) as err:
        claim(deep)
    assert "control.sock" in str(err.value)
    assert claim(deep, transport="tcp").close() is None  # TCP has no such limit
