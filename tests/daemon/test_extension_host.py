"""``certhelper native-host`` (a real subprocess, stdio framed as the browser
does) relaying to a real in-process daemon over its control socket: the frames
reach the same HEBCA/native protocol handlers and the same gate (audit log)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path
from queue import Empty, Queue
from typing import Any

from helper.bridge.extension.framing import Decoder, encode
from tests.daemon.test_daemon import healthy_key
from tests.support.daemon import Harness, make_config

ROOT = Path(__file__).resolve().parents[2]
HALL = "http://hall.example.test:9010"


class Host:
    """The browser's side of one native-messaging port."""

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from helper.cli.main import main; raise SystemExit(main())",
                "native-host",
                "chrome-extension://x/",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.got: Queue[Any] = Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        decoder = Decoder(limit=2 * 1024 * 1024)
        assert self.proc.stdout is not None
        while data := os.read(self.proc.stdout.fileno(), 65536):
            for item in decoder.feed(data):
                self.got.put(item)
        self.got.put(None)

    def raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.raw(encode(message))

    def recv(self, timeout: float = 15) -> Any:
        try:
            return self.got.get(timeout=timeout)
        except Empty:
            raise AssertionError("no message from the native host") from None

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(10)


def audit(h: Harness) -> list[dict[str, Any]]:
    path = h.daemon.bridge.gate.audit_log.path
    return [json.loads(line) for line in Path(path).read_text("utf-8").splitlines()]


def start(start_daemon: Any) -> Harness:
    return start_daemon([healthy_key()], config=make_config(origins=[HALL]))


def test_hebca_frames_reach_the_gate_with_the_reported_origin(start_daemon: Any) -> None:
    h = start(start_daemon)
    host = Host()
    host.send({"open": {"origin": HALL, "protocol": "hebca"}})
    assert host.recv() == {"opened": HALL}
    host.send({"frame": "0|1591600000000"})
    assert host.recv() == {"frame": "0|Welcome"}
    host.send({"frame": "1|GetCertCount"})
    reply = host.recv()["frame"]
    assert reply.startswith("1|GetCertCount|")
    assert json.loads(reply.split("|", 2)[2])["ret"] == 0
    assert host.close() == 0
    ops = [(e["origin"], e["operation"]) for e in audit(h)]
    assert (HALL, "hebca:GetCertCount") in ops


def test_unconfigured_plain_http_origin_is_refused(start_daemon: Any) -> None:
    h = start(start_daemon)
    host = Host()
    host.send({"open": {"origin": "http://evil.example.test", "protocol": "hebca"}})
    err = host.recv()
    assert err["error"]["code"] == "origin_denied"
    host.send({"frame": "1|GetCertCount"})  # the stream is gone: nothing reaches the gate
    assert host.recv()["error"]["code"] in {"origin_denied", "daemon_unavailable"}
    host.close()
    assert not any(e["operation"] == "hebca:GetCertCount" for e in audit(h))


def test_bad_input_oversized_and_interleaved(start_daemon: Any) -> None:
    start(start_daemon)
    host = Host()
    host.raw(
        encode({"open": {"origin": HALL, "protocol": "hebca"}})
        + struct.pack("<I", 8)
        + b"not json"
        + encode({"frame": "0|1"})
        + struct.pack("<I", 3)
        + b"[1]"
        + encode({"frame": "1|GetCertCount"})
    )
    got = [host.recv() for _ in range(5)]
    assert got[0] == {"opened": HALL}
    errors = [g for g in got if "error" in g]
    frames = [g["frame"] for g in got if "frame" in g]
    assert [e["error"]["code"] for e in errors] == ["bad_frame", "bad_frame"]
    assert frames[0] == "0|Welcome" and frames[1].startswith("1|GetCertCount|")
    # a frame over 64 KiB: reported, then the host exits (the stream cannot resync)
    host.raw(struct.pack("<I", 64 * 1024 + 1) + b"{" * 10)
    assert host.recv()["error"]["code"] == "frame_too_large"
    assert host.recv() is None
    assert host.proc.wait(10) == 1


def test_browser_closes_mid_request_and_mid_frame(start_daemon: Any) -> None:
    h = start(start_daemon)
    host = Host()
    host.send({"open": {"origin": HALL, "protocol": "hebca"}})
    assert host.recv() == {"opened": HALL}
    host.send({"frame": "1|GetCertCount"})
    host.raw(encode({"frame": "1|GetCertCount"})[:7])  # truncated: port closed mid-frame
    assert host.close() == 0
    # the daemon is unharmed and still serves a new port
    again = Host()
    again.send({"open": {"origin": HALL, "protocol": "hebca"}})
    assert again.recv() == {"opened": HALL}
    again.close()
    assert h.call({"cmd": "ping"})["ok"]


def test_daemon_restart_between_messages(start_daemon: Any) -> None:
    h = start(start_daemon)
    host = Host()
    host.send({"open": {"origin": HALL, "protocol": "hebca"}})
    assert host.recv() == {"opened": HALL}
    host.send({"frame": "0|1"})
    assert host.recv() == {"frame": "0|Welcome"}
    assert h.stop() == 0
    h2 = start(start_daemon)
    host.send({"frame": "1|GetCertCount"})
    reply = host.recv()
    assert "frame" in reply, reply
    assert reply["frame"].startswith("1|GetCertCount|")
    host.close()
    assert (HALL, "hebca:GetCertCount") in [(e["origin"], e["operation"]) for e in audit(h2)]


def test_native_protocol_and_server_events_reach_the_extension(start_daemon: Any) -> None:
    """The native API through the host, and the native transport's server events
    (token.removed …, broadcast on its hub) on the extension connection too."""
    import asyncio

    from helper.bridge.ws import HUB_KEY

    h = start(start_daemon)
    host = Host()
    host.send({"open": {"origin": HALL, "protocol": "native"}})
    assert host.recv() == {"opened": HALL}
    host.send({"frame": json.dumps({"id": 7, "method": "certificates.list", "params": {}})})
    reply = json.loads(host.recv()["frame"])
    assert reply["id"] == 7 and isinstance(reply["result"]["certificates"], list)
    hub = h.daemon.bridge.runner.app[HUB_KEY]
    assert h.daemon.loop is not None
    asyncio.run_coroutine_threadsafe(
        hub.broadcast("token.removed", {"label": "k", "serial": "s"}), h.daemon.loop
    ).result(5)
    event = json.loads(host.recv()["frame"])
    assert event == {"event": "token.removed", "data": {"label": "k", "serial": "s"}}
    assert host.close() == 0
    ops = [(e["origin"], e["operation"]) for e in audit(h)]
    assert (HALL, "certificates.list") in ops


def test_a_frame_of_exactly_64_kib_still_arrives(start_daemon: Any) -> None:
    """The largest message the host takes from the browser (64 KiB) becomes a control
    line of 64 KiB plus its newline: it must reach the handler, not cut the stream
    (the daemon's line limit was exactly 64 KiB)."""
    start(start_daemon)
    host = Host()
    host.send({"open": {"origin": HALL, "protocol": "native"}})
    assert host.recv() == {"opened": HALL}

    def frame(n: int) -> str:
        return json.dumps({"id": 8, "method": "no.such", "params": {"p": "汇" + "a" * n}})

    n = 64 * 1024 - len(encode({"frame": frame(0)})) + 4
    assert len(encode({"frame": frame(n)})) - 4 == 64 * 1024
    host.send({"frame": frame(n)})
    reply = json.loads(host.recv()["frame"])
    assert reply["id"] == 8 and reply["error"]["code"] == "unknown_method"
    host.send({"frame": json.dumps({"id": 9, "method": "certificates.list", "params": {}})})
    assert json.loads(host.recv()["frame"])["id"] == 9
    assert host.close() == 0


def test_a_slow_daemon_is_waited_for_not_doubled(monkeypatch: Any) -> None:
    """The daemon holds the endpoint but answers late (starting, busy machine): the
    host waits for it and never starts a second ``certhelper run``."""
    import tempfile
    import time

    from helper.bridge.extension import host as host_mod
    from helper.services import control
    from tests.services.test_control import Served

    spawned: list[Any] = []
    monkeypatch.setattr(host_mod.subprocess, "Popen", lambda *a, **k: spawned.append(a))
    with tempfile.TemporaryDirectory(prefix="ch-") as d:
        cdir = Path(d) / "certhelper"
        monkeypatch.setattr(control, "control_dir", lambda: cdir)
        first = control.claim(cdir)
        assert isinstance(first, control.Claim)
        box: dict[str, Any] = {}
        t = threading.Thread(
            target=lambda: box.update(got=host_mod.connect_daemon({"cmd": "extension"}))
        )
        t.start()
        time.sleep(1.5)  # well past the host's quick first attempt
        served = Served(first)
        try:
            t.join(10)
            sock, _stream = box["got"]
            sock.close()
        finally:
            served.close()
    assert spawned == []


def test_no_daemon_starts_one_in_the_background(monkeypatch: Any) -> None:
    import tempfile

    from helper.bridge.extension import host as host_mod
    from helper.services import control
    from tests.services.test_control import Served

    started: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="ch-") as d:
        cdir = Path(d) / "certhelper"
        monkeypatch.setattr(control, "control_dir", lambda: cdir)

        def popen(argv: list[str], **kw: Any) -> None:  # "the daemon starts"
            started.append(argv)
            got = control.claim(cdir)
            assert isinstance(got, control.Claim)
            started.append(Served(got))

        monkeypatch.setattr(host_mod.subprocess, "Popen", popen)
        sock, _stream = host_mod.connect_daemon({"cmd": "extension"})
        sock.close()
        started[1].close()
    assert started[0][-1] == "from helper.cli.main import main; main(['run', '--background'])"
    assert started[0][0] == sys.executable
