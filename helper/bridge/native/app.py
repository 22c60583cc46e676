"""The native API's aiohttp application: factory, routes and background jobs.

Everything the app needs comes in through :func:`create_app` — the gate (with
its token service, prompter, sessions and audit log), the origin policy, the
consent store, renewal — so tests build the same app the daemon runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from drivers.hotplug import HotplugPoller, TokenEvent
from helper.bridge.alive import add_alive_route
from helper.bridge.origins import OriginPolicy
from helper.bridge.security import MAX_BODY, body_guard, host_guard
from helper.bridge.ws import GATE_KEY, HUB_KEY, add_socket_app_keys
from helper.services.consent import ConsentStore
from helper.services.gate import Gate
from helper.services.renewal import RenewalService

from . import api

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackgroundSettings:
    hotplug_interval: float = 1.0  # seconds between token polls (0 = no polling)
    session_sweep: float = 5.0  # seconds between idle-session sweeps


SETTINGS_KEY: web.AppKey[BackgroundSettings] = web.AppKey("bg_settings", BackgroundSettings)


def create_app(
    gate: Gate,
    policy: OriginPolicy,
    consent: ConsentStore,
    background: BackgroundSettings | None = None,
    *,
    renewal: RenewalService | None = None,
) -> web.Application:
    app = web.Application(middlewares=[host_guard, body_guard], client_max_size=MAX_BODY)
    add_socket_app_keys(app, gate, consent, policy)
    app[api.RENEWAL_KEY] = renewal
    app[SETTINGS_KEY] = background or BackgroundSettings()
    app.router.add_get("/v1/ping", api.ping)
    app.router.add_route("OPTIONS", "/v1/ping", api.preflight)
    app.router.add_get("/v1/certhelper.js", api.client_js)
    app.router.add_get("/v1/ws", api.websocket)
    add_alive_route(app)
    app.cleanup_ctx.append(_background_jobs)
    return app


async def _background_jobs(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    tasks = [asyncio.create_task(_sweep_sessions(app[GATE_KEY], settings.session_sweep))]
    if settings.hotplug_interval > 0:
        tasks.append(asyncio.create_task(_hotplug(app, settings.hotplug_interval)))
    yield
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await t


async def _sweep_sessions(gate: Gate, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await gate.expire_sessions()
        except Exception:
            log.exception("session sweep failed")


async def _hotplug(app: web.Application, interval: float) -> None:
    gate = app[GATE_KEY]
    hub = app[HUB_KEY]
    poller = HotplugPoller(gate.tokens.drivers)
    await poller.poll_async()  # the tokens present at start are not news

    async def on_event(ev: TokenEvent) -> None:
        data = {"label": ev.token.label, "serial": ev.token.serial}
        if ev.kind == "removed":
            await gate.token_removed(ev.token.serial)
            await hub.broadcast("token.removed", data)
            return
        await gate.token_inserted(ev.token.serial)
        await hub.broadcast("token.inserted", data)
        for item in await gate.certificates.expiring(ev.token.serial):
            await hub.broadcast("certificate.expiring", item)

    await poller.run(on_event, interval=interval)
