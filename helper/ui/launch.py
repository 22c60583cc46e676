"""Opening the desktop windows (我的证书, 修改密码, notices) as child processes.

``open_window("mycerts")`` runs ``python -m helper.ui.mycerts [args]``. The
child gets the daemon's config file through ``CERTHELPER_CONFIG`` (in ``env``)
and, when there is a request (notices), that request as one JSON line on
stdin. Stdin is a pipe that stays open while the window lives: its end tells
the window that the daemon is gone. When the window exits, ``on_exit`` gets
the JSON objects it printed on stdout (one per line, e.g. ``{"result":
"renew"}``) and its exit code. Stdout is never logged (a window could, in
principle, echo something private); stderr goes to the debug log.

At most one window of each kind runs at a time: a kind is the module name,
plus the request's ``kind`` for notices (one 技术支持, one 关于 …). Asking for
a window that is already open returns the running process; a window in
another process cannot be raised from here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: on_exit(window, request, replies, exit code), on the window's watcher thread
OnExit = Callable[["Window", list[dict[str, Any]], int], None]
_STDERR_LINE_MAX = 500
_REPLY_MAX = 64 * 1024


def window_kind(name: str, request: Mapping[str, Any] | None) -> str:
    kind = (request or {}).get("kind")
    return f"{name}:{kind}" if isinstance(kind, str) and kind else name


@dataclass(frozen=True)
class Window:
    name: str
    request: dict[str, Any] | None
    args: tuple[str, ...]


class Windows:
    """The window processes one daemon opened."""

    def __init__(self, *, python: str = sys.executable, on_exit: OnExit | None = None) -> None:
        self.python = python
        self.on_exit = on_exit
        self._lock = threading.Lock()
        self._open: dict[str, subprocess.Popen[bytes]] = {}

    def running(self, name: str, request: Mapping[str, Any] | None = None) -> bool:
        with self._lock:
            proc = self._open.get(window_kind(name, request))
            return proc is not None and proc.poll() is None

    def open(
        self,
        name: str,
        request: Mapping[str, Any] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> subprocess.Popen[bytes]:
        if not name.isidentifier():
            raise ValueError(f"not a window name: {name!r}")
        kind = window_kind(name, request)
        window = Window(name, dict(request) if request is not None else None, tuple(args))
        with self._lock:
            existing = self._open.get(kind)
            if existing is not None and existing.poll() is None:
                log.info("window %s already open (pid %d)", kind, existing.pid)
                return existing
            proc = subprocess.Popen(
                [self.python, "-m", f"helper.ui.{name}", *window.args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, **(env or {})},
            )
            self._open[kind] = proc
        log.info("window %s opened (pid %d)", kind, proc.pid)
        assert proc.stdin is not None
        if window.request is not None:
            line = json.dumps(window.request, ensure_ascii=False).encode("utf-8") + b"\n"
            with contextlib.suppress(OSError):  # it died at once; the watcher logs how
                proc.stdin.write(line)
                proc.stdin.flush()
        threading.Thread(
            target=self._watch, args=(window, proc), name=f"window-{name}", daemon=True
        ).start()
        threading.Thread(target=_drain_stderr, args=(proc,), daemon=True).start()
        return proc

    def _watch(self, window: Window, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        replies: list[dict[str, Any]] = []
        for line in proc.stdout:
            if len(line) > _REPLY_MAX:
                continue
            with contextlib.suppress(ValueError):
                reply = json.loads(line)
                if isinstance(reply, dict):
                    replies.append(reply)
        code = proc.wait()
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        log.info("window %s (pid %d) exited: %d", window.name, proc.pid, code)
        if self.on_exit is not None:
            try:
                self.on_exit(window, replies, code)
            except Exception:
                log.exception("handling the end of window %s failed", window.name)

    def close_all(self) -> None:
        """Close every window's stdin (windows take that as 'the daemon left')."""
        with self._lock:
            procs = list(self._open.values())
        for proc in procs:
            with contextlib.suppress(OSError, ValueError):
                if proc.stdin is not None:
                    proc.stdin.close()


def _drain_stderr(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        text = line.decode("utf-8", "replace").rstrip()
        if text:
            log.debug("window[%d]: %s", proc.pid, text[:_STDERR_LINE_MAX])


_default = Windows()


def open_window(
    name: str,
    request: dict[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """Open ``helper.ui.<name>`` (see the module docstring) with this process's
    shared window registry; the daemon keeps its own :class:`Windows`."""
    return _default.open(name, request, env=env, args=args)
