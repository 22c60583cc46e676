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

from drivers.protocol import TokenDriver
from helper.config import Config
from helper.daemon.compose import RunningBridge, start_bridge
from helper.demo.hall import create_hall_app, split_ca_certificates
from helper.services.tls import ensure_identity, ssl_context
from helper.services.tokens import ModuleStatus
from tests.support.browser import (
    ARGS,
    CHROMIUM,
    LegacyStack,
    LoopThread,
    PrompterDouble,
    Stack,
    trust_ca,
)
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
def start_stack(tmp_path: Path, driver: Any, fixtures: Fixtures) -> Iterator[Callable[..., Stack]]:
    loop = LoopThread()
    runners: list[web.AppRunner | RunningBridge] = []
    serial = fixtures.cert("company_sign")["token_serial"]

    def start(
        prompter: PrompterDouble,
        *,
        skf: TokenDriver | None = None,
        sm2_chain: Path | None = None,
        hebca: bool = False,
    ) -> Stack:
        """``skf``: a second library (the soft SKF key) beside the SoftHSM one;
        ``sm2_chain``: the SM2 CAs the hall trusts too (issuing, then root);
        ``hebca``: the HEBCA endpoint on a free port too, page PIN on for the hall
        (as demo mode configures it), its port in ``stack.bridge.hebca_port``."""
        # the hall's socket first: its origin goes into the bridge's configuration
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        hall_origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
        state = tmp_path / "state"
        # a keyring that is never there: the test's TLS keys stay out of the user's keyring
        identity = ensure_identity(state / "tls", keyring_backend=keyring.backends.fail.Keyring())
        modules = [ModuleStatus(driver.module_path, "config", driver=driver)]
        if skf is not None:
            modules.append(ModuleStatus(skf.module_path, "config", driver=skf, family=skf.family))
        tokens = SharedTokens(modules)
        config = Config(origins=[hall_origin])
        if hebca:
            config.hebca_origins = {hall_origin: {"page_pin": True}}
        bridge = loop.run(
            start_bridge(
                config,
                tokens=tokens,
                prompter=prompter,
                state_dir=state,
                ssl_ctx=ssl_context(identity),
                port=0,
                hebca_port=0 if hebca else None,
            )
        )
        runners.append(bridge)
        assert not hebca or bridge.hebca_port, "start_bridge(hebca_port=0) started no endpoint"
        ca = fixtures.manifest["ca"]
        pems = [Path(ca["root"]).read_bytes(), Path(ca["issuing"]).read_bytes()]
        if sm2_chain is not None:
            pems.append(sm2_chain.read_bytes())
        anchors, intermediates = split_ca_certificates(pems)
        app = create_hall_app(
            anchors,
            intermediates=intermediates,
            origin=hall_origin,
            helper_base=f"https://127.0.0.1:{bridge.port}",
            **({"hebca_port": bridge.hebca_port} if bridge.hebca_port else {}),
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


@pytest.fixture
def start_legacy_stack(
    start_stack: Callable[..., Stack],
) -> Callable[..., LegacyStack]:
    """start_stack with the HEBCA endpoint on a free port (page PIN on for the hall)."""

    def start(prompter: PrompterDouble, **kw: Any) -> LegacyStack:
        stack = start_stack(prompter, hebca=True, **kw)
        assert stack.bridge.hebca_port is not None
        return LegacyStack(stack, stack.bridge.hebca_port)

    return start
