"""In-process daemons: a token service over fixed views, a tray double and a window
double that record what they were asked, and the harness that drives them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helper.apps import App, Category
from helper.config import Config
from helper.daemon.run import Daemon
from helper.services import control
from helper.services.tokens import TokenService, TokenView
from helper.tray.state import TrayState
from helper.ui.launch import Windows
from tests.support.tray import NOW

APPS = [Category("公积金", (App("沧州公积金", "http://111.62.46.105:9010/ish/"),))]


class FakeTokens(TokenService):
    """Keys that tests plug and unplug by editing ``views``."""

    def __init__(self, views: list[TokenView]) -> None:
        super().__init__([], clock=lambda: NOW)
        self.views = views
        self.closed = False

    def tokens(self):  # type: ignore[no-untyped-def]
        return [(None, v.token) for v in self.views]

    def snapshot(self) -> list[TokenView]:
        return list(self.views)

    async def tokens_async(self):  # type: ignore[no-untyped-def]
        return self.tokens()

    async def snapshot_async(self) -> list[TokenView]:
        return self.snapshot()

    def close(self) -> None:
        self.closed = True


class FakeTray:
    def __init__(
        self, *, on_action: Callable[[str], None], apps: Sequence[Category], state: TrayState
    ):
        self.on_action = on_action
        self.apps = list(apps)
        self.states = [state]
        self.started = threading.Event()
        self.stopped = threading.Event()

    def set_state(self, state: TrayState) -> None:
        self.states.append(state)

    def run(self, on_ready: Callable[[], None] | None = None) -> None:
        self.started.set()
        if on_ready is not None:
            on_ready()
        self.stopped.wait()

    def stop(self) -> None:
        self.stopped.set()


@dataclass
class Opened:
    name: str
    request: dict[str, Any] | None
    args: tuple[str, ...]
    env: dict[str, str]


class FakeWindows(Windows):
    def __init__(self) -> None:
        super().__init__()
        self.opened: list[Opened] = []
        self.closed_all = False

    def open(self, name, request=None, *, env=None, args=()):  # type: ignore[no-untyped-def,override]
        self.opened.append(Opened(name, request, tuple(args), dict(env or {})))
        return None  # type: ignore[return-value]

    def running(self, name, request=None):  # type: ignore[no-untyped-def]
        return False

    def close_all(self) -> None:
        self.closed_all = True


@dataclass
class Harness:
    daemon: Daemon
    tokens: FakeTokens
    windows: FakeWindows
    urls: list[str]
    cdir: Path
    thread: threading.Thread
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def tray(self) -> FakeTray:
        assert isinstance(self.daemon.tray, FakeTray)
        return self.daemon.tray

    def call(self, message: dict[str, Any]) -> dict[str, Any]:
        return control.request(message, self.cdir, timeout=5)

    def wait_state(self, status: str, timeout: float = 10) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            reply = self.call({"cmd": "state"})
            if reply["state"] == status or time.monotonic() > end:
                assert reply["state"] == status, reply
                return reply
            time.sleep(0.1)

    def wait_opened(self, count: int, timeout: float = 10) -> list[Opened]:
        end = time.monotonic() + timeout
        while len(self.windows.opened) < count and time.monotonic() < end:
            time.sleep(0.05)
        assert len(self.windows.opened) >= count, self.windows.opened
        return self.windows.opened

    def on_loop(self, fn: Callable[[], Any]) -> Any:
        import asyncio

        async def call() -> Any:
            return fn()

        assert self.daemon.loop is not None
        return asyncio.run_coroutine_threadsafe(call(), self.daemon.loop).result(5)

    def stop(self) -> int:
        if self.thread.is_alive():
            self.call({"cmd": "quit"})
            self.thread.join(20)
        assert not self.thread.is_alive()
        return self.result["code"]


def make_config(**changes: Any) -> Config:
    cfg = Config(use_catalog=False, bridge_port=0, hebca_port=0, log_to_file=False)
    for k, v in changes.items():
        setattr(cfg, k, v)
    return cfg
