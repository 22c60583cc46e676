"""After ``certhelper install`` in a temporary HOME, headless Chromium with that HOME
opens the bridge's https://127.0.0.1:PORT/v1/ping with no certificate error; with a
fresh empty HOME the same page fails with one. No --ignore-certificate-errors."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest
from playwright import sync_api

from helper.config import Config
from helper.daemon.compose import RunningBridge, start_bridge
from helper.services.tokens import TokenService
from tests.support.browser import ARGS, CHROMIUM, LoopThread
from tests.support.installer import Home


class NoPrompts:
    async def ask_pin(self, request: Any) -> Any:
        raise AssertionError("no dialog expected")

    async def ask_consent(self, request: Any) -> Any:
        raise AssertionError("no dialog expected")

    async def pick_certificate(self, origin: str, insecure: bool, choices: list[Any]) -> str:
        raise AssertionError("no dialog expected")


@pytest.fixture
def bridge(home: Home) -> Iterator[RunningBridge]:
    """The bridge over the HOME's data dir: it serves the identity install trusted."""
    if not Path(CHROMIUM).exists():
        pytest.fail("missing chromium: run `make test`, which installs it")
    home.run("install")
    loop = LoopThread()
    running = loop.run(
        start_bridge(
            Config(),
            tokens=TokenService([]),
            prompter=NoPrompts(),  # type: ignore[arg-type]
            state_dir=home.data,
            port=0,
            keyring_backend=keyring.backends.fail.Keyring(),
        )
    )
    yield running
    loop.run(running.stop())
    loop.stop()


def open_ping(home_dir: Path, url: str) -> tuple[Any, str | None]:
    """(the JSON body or None, the navigation error or None)."""
    env = {
        "HOME": str(home_dir),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": str(home_dir / ".config"),
        "XDG_CACHE_HOME": str(home_dir / ".cache"),
    }
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS, env=env)
        try:
            page = browser.new_page()
            try:
                page.goto(url, timeout=20_000)
            except sync_api.Error as exc:
                return None, str(exc)
            return json.loads(page.inner_text("body")), None
        finally:
            browser.close()


def test_chromium_trusts_the_installed_ca(home: Home, bridge: RunningBridge) -> None:
    url = f"https://127.0.0.1:{bridge.port}/v1/ping"
    body, error = open_ping(home.home, url)
    assert error is None, error
    assert body["app"] == "certhelper"


def test_chromium_without_install_sees_a_certificate_error(
    home: Home, bridge: RunningBridge, tmp_path: Path
) -> None:
    empty = tmp_path / "empty-home"
    empty.mkdir()
    body, error = open_ping(empty, f"https://127.0.0.1:{bridge.port}/v1/ping")
    assert body is None
    assert error is not None and "ERR_CERT_AUTHORITY_INVALID" in error, error
