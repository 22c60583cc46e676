"""The end-to-end stack (bridge + demo hall on loopback) and the headless browser;
the Xvfb desktop comes from the tests.support.desktop plugin."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest
from aiohttp import web
from playwright import sync_api

from helper.config import Config
from helper.daemon.compose import RunningBridge, start_bridge
from helper.demo.hall import create_hall_app
from helper.services.tls import ensure_identity, ssl_context
from helper.services.tokens import ModuleStatus
from tests.support.browser import ARGS, CHROMIUM, LoopThread, PrompterDouble, Stack, trust_ca
from tests.support.doubles import SharedTokens
from tests.support.tokens import Fixtures


@pytest.fixture(autouse=True, scope="module")
def _browser_tools() -> None:
    missing = [
        n
        for n, ok in (
            ("chromium", Path(CHROMIUM).exists()),
            ("certutil (libnss3-tools)", shutil.which("certutil") is not None),
        )
        if not ok
    ]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run `make test`, which installs them")


@pytest.fixture
def start_stack(
    tmp_path: Path, driver: Any, fixtures: Fixtures
) -> Iterator[Callable[[PrompterDouble], Stack]]:
    loop = LoopThread()
    runners: list[web.AppRunner | RunningBridge] = []
    serial = fixtures.cert("company_sign")["token_serial"]

    def start(prompter: PrompterDouble) -> Stack:
        # the hall's socket first: its origin goes into the bridge's configuration
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        hall_origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
        state = tmp_path / "state"
        # a keyring that is never there: the test's TLS keys stay out of the user's keyring
        identity = ensure_identity(state / "tls", keyring_backend=keyring.backends.fail.Keyring())
        tokens = SharedTokens([ModuleStatus(driver.module_path, "config", driver=driver)])
        bridge = loop.run(
            start_bridge(
                Config(origins=[hall_origin]),
                tokens=tokens,
                prompter=prompter,
                state_dir=state,
                ssl_ctx=ssl_context(identity),
                port=0,
            )
        )
        runners.append(bridge)
        ca = fixtures.manifest["ca"]
        app = create_hall_app(
            [Path(ca["root"]).read_bytes()],
            intermediates=[Path(ca["issuing"]).read_bytes()],
            origin=hall_origin,
            helper_base=f"https://127.0.0.1:{bridge.port}",
        )

        async def serve() -> web.AppRunner:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            return runner

        runners.append(loop.run(serve()))
        home = tmp_path / "home"
        trust_ca(home, identity.paths.ca_cert)
        return Stack(hall_origin, bridge, state, home, prompter, loop, runners)

    yield start
    for r in reversed(runners):
        loop.run(r.stop() if isinstance(r, RunningBridge) else r.cleanup())
    loop.stop()
    driver.logout(serial)


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Callable[[Path], Any]]:
    """A function HOME -> a new Chromium page (Chinese locale), closed after the test."""
    pw = sync_api.sync_playwright().start()
    browsers: list[Any] = []
    console: list[str] = []

    def open_page(home: Path) -> Any:
        env = {
            "HOME": str(home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
        }
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS, env=env)
        browsers.append(browser)
        context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        return page

    yield open_page
    for b in browsers:
        b.close()
    pw.stop()
    if console:
        print("browser console:\n" + "\n".join(console))
