"""``certhelper native-host``: the process the browser starts for the extension.

stdin/stdout carry native-messaging frames (:mod:`.framing`); the daemon is
reached over its user-only control channel with the ``extension`` command
(:mod:`.relay`). Messages from the extension:

* ``{"open": {"origin": O, "protocol": "native" | "hebca"}}`` — first; ``O`` is
  the origin the browser gave the service worker (``sender.origin``);
* ``{"frame": text}`` — one protocol frame.

Messages to the extension: ``{"opened": O}``, ``{"frame": text}`` and
``{"error": {"code": ...}}``. The host keeps no protocol state: if the daemon
goes away between frames the next frame reconnects (starting the daemon if
needed) with the same origin and protocol; login sessions are the daemon's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any, BinaryIO

from helper.services import control

from .framing import Decoder, FrameTooLarge, FramingError, ReplyTooLarge, encode

log = logging.getLogger(__name__)

#: seconds to wait for a daemon that is starting
START_TIMEOUT = 30.0
Connector = Callable[[dict[str, Any]], tuple[socket.socket, IO[bytes]]]


def connect_daemon(message: dict[str, Any]) -> tuple[socket.socket, IO[bytes]]:
    """Open an ``extension`` stream to the daemon. A daemon that holds the endpoint
    but is slow (starting, busy machine) is waited for; only when none holds it is
    ``certhelper run --background`` started detached (it outlives this host, and
    exits quietly if another host started one first)."""
    try:
        return control.open_stream(message, timeout=0.5)
    except control.DaemonUnavailable:
        if control.daemon_running():
            return control.open_stream(message, timeout=START_TIMEOUT)
    subprocess.Popen(
        [sys.executable, "-c", "from helper.cli.main import main; main(['run', '--background'])"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return control.open_stream(message, timeout=START_TIMEOUT)


class NativeHost:
    def __init__(self, stdout: BinaryIO, connector: Connector = connect_daemon) -> None:
        self.stdout = stdout
        self.connector = connector
        self._out = threading.Lock()
        self._open: dict[str, Any] | None = None
        self._sock: socket.socket | None = None

    def emit(self, payload: dict[str, Any]) -> None:
        try:
            data = encode(payload)
        except ReplyTooLarge:
            data = encode({"error": {"code": ReplyTooLarge.code}})
        with self._out:
            self.stdout.write(data)
            self.stdout.flush()

    def run(self, stdin: BinaryIO) -> int:
        decoder = Decoder()
        fd = stdin.fileno()
        try:
            while True:
                data = os.read(fd, 65536)
                if not data:
                    left = decoder.close()
                    if left is not None:
                        log.info("browser closed mid-frame: %s", left)
                    return 0
                for item in decoder.feed(data):
                    if isinstance(item, FramingError):
                        self.emit({"error": {"code": item.code}})
                        if isinstance(item, FrameTooLarge):
                            return 1
                        continue
                    self.handle(item)
        finally:
            self._drop()

    def handle(self, message: dict[str, Any]) -> None:
        if "open" in message:
            spec = message["open"]
            if (
                self._open is not None
                or not isinstance(spec, dict)
                or not isinstance(spec.get("origin"), str)
                or not isinstance(spec.get("protocol"), str)
            ):
                self.emit({"error": {"code": "bad_request"}})
                return
            self._open = {
                "cmd": "extension",
                "origin": spec["origin"],
                "protocol": spec["protocol"],
            }
            self._connect(announce=True)
            return
        frame = message.get("frame")
        if not isinstance(frame, str) or self._open is None:
            self.emit({"error": {"code": "bad_request"}})
            return
        line = json.dumps({"frame": frame}, ensure_ascii=False).encode("utf-8") + b"\n"
        for attempt in range(2):
            if self._sock is None and not self._connect(announce=False):
                return
            assert self._sock is not None
            try:
                self._sock.sendall(line)
                return
            except OSError:
                self._drop()
                if attempt:
                    self.emit({"error": {"code": control.DaemonUnavailable.code}})

    def _connect(self, *, announce: bool) -> bool:
        assert self._open is not None
        try:
            sock, stream = self.connector(self._open)
        except control.DaemonUnavailable as exc:
            log.info("daemon unavailable: %s", exc)
            self.emit({"error": {"code": exc.code}})
            return False
        self._sock = sock
        threading.Thread(
            target=self._pump, args=(sock, stream, announce), daemon=True, name="daemon-pump"
        ).start()
        return True

    def _pump(self, sock: socket.socket, stream: IO[bytes], announce: bool) -> None:
        """Daemon → browser, until the daemon closes this stream."""
        try:
            for line in stream:
                try:
                    payload = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(payload, dict):
                    continue
                if "opened" in payload and not announce:
                    continue  # a reconnect: the page already heard it
                self.emit(payload)
        except (OSError, ValueError):
            pass
        finally:
            if self._sock is sock:
                self._sock = None
            with contextlib.suppress(OSError):
                sock.close()

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


def main() -> int:
    """Entry point of ``certhelper native-host`` (stdio belongs to the browser)."""
    return NativeHost(sys.stdout.buffer).run(sys.stdin.buffer)


if __name__ == "__main__":  # the launcher's way in: ~50 ms sooner than the full CLI
    sys.exit(main())
