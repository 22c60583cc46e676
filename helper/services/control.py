"""The daemon's control socket: one daemon per user, and a way to talk to it.

``certhelper run`` first :func:`claim`\\ s the endpoint. The claim is an
exclusive lock on ``control.lock`` held for the daemon's lifetime (so two
starts at once cannot both win); the winner removes a stale socket file left
by a daemon that died and binds ``control.sock``. A loser finds the daemon
through the socket (:func:`request`) and asks it to show a window.

Where: ``<runtime dir>/certhelper/`` (``$XDG_RUNTIME_DIR`` on Linux; platformdirs'
``user_runtime_dir`` elsewhere), or the data dir when there is no runtime dir
(never platformdirs' shared ``/tmp`` fallback). Directory 0700, socket 0600,
and on Linux the peer's uid is checked too.

Protocol: one JSON line in, one JSON line out, then the connection closes.
Commands: ``{"cmd": "show", "window": W}`` (W in mycerts, changepin, doctor,
support, about), ``{"cmd": "ping"}``, ``{"cmd": "state"}``, ``{"cmd": "quit"}``.
Replies: ``{"ok": true, ...}`` or ``{"ok": false, "error": code}``.

Platforms without ``AF_UNIX`` (CPython on Windows) use loopback TCP instead:
the port and a random secret go in ``control.json`` (user-only), and every
request must carry the secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from drivers.errors import CertHelperError, register
from helper.config import APP, data_dir

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
LOCK_NAME = "control.lock"
TCP_NAME = "control.json"
MAX_LINE = 64 * 1024
#: the reader's limit: a stream's line (an extension frame: up to 64 KiB from the
#: browser, re-encoded with its own JSON escaping) may be longer than a command line
STREAM_LINE = 8 * MAX_LINE
#: seconds a client waits for the daemon's answer (it may still be starting)
CLIENT_TIMEOUT = 15.0
_READ_TIMEOUT = 5.0


@dataclass(frozen=True)
class Stream:
    """A handler's answer that takes the connection over: the client first gets
    ``{"ok": true}``, then ``run`` owns the reader and writer (JSON lines both
    ways, see the extension transport) until it returns."""

    run: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


Reply = dict[str, Any] | Stream
Handler = Callable[[dict[str, Any]], Awaitable[Reply] | Reply]


@register
class DaemonUnavailable(CertHelperError):
    code = "daemon_unavailable"
    message_zh = "证书助手后台服务无法启动或无法连接"
    message_en = "The certhelper daemon cannot start or cannot be reached"
    exit_code = 1


def has_unix_sockets() -> bool:
    return hasattr(socket, "AF_UNIX")


def control_dir() -> Path:
    """Where the control socket lives (see the module docstring)."""
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        if runtime and Path(runtime).is_dir():
            return Path(runtime) / APP
        return data_dir()
    import platformdirs

    return Path(platformdirs.user_runtime_dir(APP, appauthor=False))


def _prepare_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if hasattr(os, "getuid"):
            st = path.stat()
            if st.st_uid != os.getuid():
                raise DaemonUnavailable(detail=f"{path} belongs to another user")
            if st.st_mode & 0o077:
                os.chmod(path, 0o700)
    except OSError as exc:
        raise DaemonUnavailable(detail=f"{path}: {exc.strerror}") from None


# --- the lock (platform code) ---------------------------------------------------


def _try_lock(f: IO[bytes]) -> bool:
    """An exclusive, non-blocking lock on the open file; False if someone holds it."""
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _peer_is_us(sock: socket.socket) -> bool:
    """On Linux, the connecting process must run as our user (the 0700 directory
    already ensures it; this is the second lock on the door)."""
    if not sys.platform.startswith("linux") or not hasattr(socket, "SO_PEERCRED"):
        return True
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return False
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


# --- the daemon's side ------------------------------------------------------------


@dataclass
class Claim:
    """The endpoint this process won: a listening socket and the held lock."""

    dir: Path
    sock: socket.socket
    lock_file: IO[bytes]
    transport: str  # "unix" or "tcp"
    secret: str = ""
    _server: asyncio.AbstractServer | None = field(default=None, repr=False)

    async def serve(self, handler: Handler) -> None:
        """Answer requests on the running loop until :meth:`close`."""

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                reply = await self._answer(reader, writer, handler)
                if isinstance(reply, Stream):
                    writer.write(b'{"ok": true}\n')
                    await writer.drain()
                    await reply.run(reader, writer)
                    return
                writer.write(json.dumps(reply, ensure_ascii=False).encode("utf-8") + b"\n")
                await writer.drain()
            except (ConnectionError, TimeoutError):
                pass
            except Exception:
                log.exception("control request failed")
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

        if self.transport == "unix":
            self._server = await asyncio.start_unix_server(
                on_client, sock=self.sock, limit=STREAM_LINE
            )
        else:
            self._server = await asyncio.start_server(on_client, sock=self.sock, limit=STREAM_LINE)

    async def _answer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler
    ) -> Reply:
        raw = writer.get_extra_info("socket")
        if self.transport == "unix" and raw is not None and not _peer_is_us(raw):
            return {"ok": False, "error": "forbidden"}
        try:
            line = await asyncio.wait_for(reader.readline(), _READ_TIMEOUT)
            if len(line) > MAX_LINE:
                return {"ok": False, "error": "bad_request"}
            message = json.loads(line)
        except (ValueError, asyncio.LimitOverrunError):
            return {"ok": False, "error": "bad_request"}
        if not isinstance(message, dict) or not isinstance(message.get("cmd"), str):
            return {"ok": False, "error": "bad_request"}
        if self.transport == "tcp":
            given = message.pop("secret", "")
            if not isinstance(given, str) or not hmac.compare_digest(given, self.secret):
                return {"ok": False, "error": "forbidden"}
        reply = handler(message)
        if asyncio.iscoroutine(reply) or isinstance(reply, Awaitable):
            reply = await reply
        assert isinstance(reply, dict | Stream)
        return reply

    def close(self) -> None:
        """Stop listening, remove the socket file, release the lock."""
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(OSError):
            self.sock.close()
        name = SOCKET_NAME if self.transport == "unix" else TCP_NAME
        with contextlib.suppress(OSError):
            (self.dir / name).unlink()
        with contextlib.suppress(OSError):
            self.lock_file.close()


@dataclass(frozen=True)
class Running:
    """Another daemon holds the endpoint: talk to it with :func:`request`."""

    dir: Path


def daemon_running(directory: Path | None = None) -> bool:
    """Whether a daemon holds the endpoint (it may still be starting, or be slow to
    answer): whoever would start one must not start a second."""
    directory = control_dir() if directory is None else directory
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDWR)
    except OSError:
        return False  # no lock file: nobody ever claimed this directory
    with os.fdopen(fd, "r+b", buffering=0) as lock_file:
        return not _try_lock(lock_file)  # closing the file drops a lock we got


def claim(directory: Path | None = None, *, transport: str | None = None) -> Claim | Running:
    """Become the daemon (a :class:`Claim`), or learn that one runs (:class:`Running`)."""
    directory = control_dir() if directory is None else directory
    transport = transport or ("unix" if has_unix_sockets() else "tcp")
    _prepare_dir(directory)
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise DaemonUnavailable(detail=f"{directory / LOCK_NAME}: {exc.strerror}") from None
    lock_file = os.fdopen(fd, "r+b", buffering=0)
    if not _try_lock(lock_file):
        lock_file.close()
        return Running(directory)
    try:
        if transport == "unix":
            return _bind_unix(directory, lock_file)
        return _bind_tcp(directory, lock_file)
    except BaseException:
        lock_file.close()
        raise


def _bind_unix(directory: Path, lock_file: IO[bytes]) -> Claim:
    path = directory / SOCKET_NAME
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # we hold the lock: whatever is there is stale
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise DaemonUnavailable(detail=f"{path}: {exc.strerror or exc}") from None
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(16)
    sock.setblocking(False)
    return Claim(directory, sock, lock_file, "unix")


def _bind_tcp(directory: Path, lock_file: IO[bytes]) -> Claim:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    secret = secrets.token_hex(32)
    info = {"port": sock.getsockname()[1], "secret": secret, "pid": os.getpid()}
    path = directory / TCP_NAME
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(info, f)
    tmp.replace(path)
    return Claim(directory, sock, lock_file, "tcp", secret)


# --- the client's side -------------------------------------------------------------


def _connect(directory: Path, transport: str) -> tuple[socket.socket, str]:
    if transport == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(directory / SOCKET_NAME))
        except OSError:
            s.close()
            raise
        return s, ""
    info = json.loads((directory / TCP_NAME).read_text("utf-8"))
    s = socket.create_connection(("127.0.0.1", int(info["port"])), timeout=2)
    return s, str(info["secret"])


def _send_command(
    message: dict[str, Any], directory: Path | None, timeout: float, transport: str | None
) -> socket.socket:
    """Connect (waiting up to ``timeout`` for a daemon still binding) and send one
    command line; the socket's timeout is what is left of ``timeout``."""
    directory = control_dir() if directory is None else directory
    transport = transport or ("unix" if has_unix_sockets() else "tcp")
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock, secret = _connect(directory, transport)
            break
        except (OSError, ValueError, KeyError) as exc:
            if time.monotonic() >= deadline:
                raise DaemonUnavailable(detail=f"{directory}: {exc}") from None
            time.sleep(0.1)
    sock.settimeout(max(0.5, deadline - time.monotonic()))
    payload = dict(message, secret=secret) if secret else message
    try:
        sock.sendall(json.dumps(payload, ensure_ascii=False).encode("utf-8") + b"\n")
    except OSError as exc:
        sock.close()
        raise DaemonUnavailable(detail=str(exc)) from None
    return sock


def request(
    message: dict[str, Any],
    directory: Path | None = None,
    *,
    timeout: float = CLIENT_TIMEOUT,
    transport: str | None = None,
) -> dict[str, Any]:
    """Send one command to the running daemon and return its reply. A daemon
    that holds the lock but has not bound yet is waited for up to ``timeout``."""
    sock = _send_command(message, directory, timeout, transport)
    with sock:
        try:
            data = b""
            while not data.endswith(b"\n") and len(data) < MAX_LINE:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise DaemonUnavailable(detail=str(exc)) from None
    try:
        reply = json.loads(data)
    except ValueError:
        raise DaemonUnavailable(detail="the daemon gave no answer") from None
    if not isinstance(reply, dict):
        raise DaemonUnavailable(detail="the daemon answered something unexpected")
    return reply


def open_stream(
    message: dict[str, Any],
    directory: Path | None = None,
    *,
    timeout: float = CLIENT_TIMEOUT,
    transport: str | None = None,
) -> tuple[socket.socket, IO[bytes]]:
    """Send a streaming command (e.g. ``extension``); on ``{"ok": true}`` return
    the connected socket and a buffered reader for the JSON lines that follow."""
    sock = _send_command(message, directory, timeout, transport)
    try:
        stream = sock.makefile("rb")
        line = stream.readline(MAX_LINE)
        sock.settimeout(None)
        reply = json.loads(line)
    except (OSError, ValueError) as exc:
        sock.close()
        raise DaemonUnavailable(detail=f"the daemon gave no answer: {exc}") from None
    if not isinstance(reply, dict) or reply.get("ok") is not True:
        sock.close()
        error = reply.get("error") if isinstance(reply, dict) else "unexpected"
        raise DaemonUnavailable(detail=f"the daemon refused: {error}")
    return sock, stream
