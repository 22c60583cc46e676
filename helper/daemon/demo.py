"""``certhelper --demo demo``: the bridge (with the HEBCA-compatible endpoint), the
demo hall and the demo CA in one process, so `make demo` shows both logins with one
command (the modern one, /ish/, and the legacy one, /ish/legacy) and the online
renewal of the demo token's expiring certificate (http://127.0.0.1:9020/)."""

from __future__ import annotations

import asyncio
import os
import webbrowser

from aiohttp import web

from helper.config import DEMO_CA_ORIGIN, DEMO_HALL_ORIGIN, Config
from helper.daemon import trust
from helper.daemon.compose import RunningBridge, start_bridge, wait_for_signal
from helper.daemon.ports import port_in_use
from helper.demo.ca import DEFAULT_PORT as CA_PORT
from helper.demo.ca import demo_ca_app, demo_ca_files
from helper.demo.hall import BASE, create_hall_app, demo_token_ca_files, split_ca_certificates
from helper.services.prompts import Prompter
from helper.services.tokens import TokenService

HALL_HOST = "127.0.0.1"
HALL_PORT = 9010


def prepare_demo_config(config: Config) -> None:
    """Demo mode: the demo hall (with its page PIN) and the demo CA are trusted, and the
    demo CA's roots (RSA and SM2) anchor renewals. A plain serve or run trusts only the
    real hall and CA."""
    config.enable_demo()
    for root in demo_ca_files().roots:
        if str(root) not in config.renewal_ca_roots:
            config.renewal_ca_roots.append(str(root))


async def start_demo_sites(
    config: Config, bridge: RunningBridge, *, open_browser: bool = True
) -> list[web.AppRunner]:
    """The demo hall (:9010) and the demo CA (:9020) beside a running bridge; announced,
    and the hall opened in the browser when there is a display."""
    hall_origin, ca_origin = DEMO_HALL_ORIGIN, DEMO_CA_ORIGIN
    helper_base = f"https://127.0.0.1:{bridge.port}"
    anchors, intermediates = split_ca_certificates([f.read_bytes() for f in demo_token_ca_files()])
    hall = create_hall_app(
        anchors,
        origin=hall_origin,
        helper_base=helper_base,
        intermediates=intermediates,
        hebca_port=bridge.hebca_port or config.hebca_port,  # the legacy login page's
    )
    ca = demo_ca_app(demo_ca_files(), origin=ca_origin, helper_base=helper_base)
    runners: list[web.AppRunner] = []
    try:
        for app, port in ((hall, HALL_PORT), (ca, CA_PORT)):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, HALL_HOST, port).start()
    except OSError as exc:
        for runner in reversed(runners):
            await runner.cleanup()
        raise port_in_use(exc, HALL_HOST, port) from None
    _announce(hall_origin, ca_origin, bridge)
    if open_browser and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        webbrowser.open(f"{hall_origin}{BASE}/")
    return runners


async def run_demo(
    config: Config,
    tokens: TokenService,
    prompter: Prompter,
    *,
    open_browser: bool = True,
    auto_trust: bool = False,
) -> None:
    """The headless demo: bridge, demo hall and demo CA, no tray (no display)."""
    prepare_demo_config(config)
    bridge = await start_bridge(
        config,
        tokens=tokens,
        prompter=prompter,
        hebca_port=config.hebca_port if config.hebca_enabled else None,
    )
    runners: list[web.AppRunner] = []
    try:
        if bridge.ca_path is not None:  # the user's browser trusts the helper right away
            notes = await asyncio.to_thread(
                trust.auto_trust, bridge.ca_path, created=bridge.tls_created, add=auto_trust
            )
            for note in notes:
                print(note, flush=True)
        runners = await start_demo_sites(config, bridge, open_browser=open_browser)
        await wait_for_signal()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        await bridge.stop()
        tokens.close()


def _announce(hall_origin: str, ca_origin: str, bridge: RunningBridge) -> None:
    url = f"{hall_origin}{BASE}/"
    print(f"证书助手 (helper):      https://127.0.0.1:{bridge.port}/v1/ping", flush=True)
    print(f"演示大厅 (demo hall):   {url}", flush=True)
    if bridge.hebca_port:
        print(f"旧版登录 (legacy login): {url}legacy", flush=True)
    print(f"演示CA 证书延期 (demo CA renewal): {ca_origin}/", flush=True)
    print("演示 Key 密码 (demo PIN): 123456", flush=True)
