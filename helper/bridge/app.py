"""The bridge's aiohttp application: factory, routes and background jobs.

Everything the app needs comes in through :func:`create_app` — the token
service, the prompter (real dialogs or a test double), consent store, audit
log — so tests build the same app the daemon runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from drivers.hotplug import HotplugPoller, TokenEvent
from helper.bridge import api
from helper.bridge.origins import OriginPolicy
from helper.bridge.security import MAX_BODY, POLICY_KEY, body_guard, host_guard
from helper.services.bridge_service import BridgeService
from helper.services.consent import ConsentStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackgroundSettings:
    hotplug_interval: float = 1.0  # seconds between token polls (0 = no polling)
    session_sweep: float = 5.0  # seconds between idle-session sweeps


SETTINGS_KEY: web.AppKey[BackgroundSettings] = web.AppKey("bg_settings", BackgroundSettings)


def create_app(
    service: BridgeService,
    policy: OriginPolicy,
    consent: ConsentStore,
    background: BackgroundSettings | None = None,
) -> web.Application:
    app = web.Application(middlewares=[host_guard, body_guard], client_max_size=MAX_BODY)
    app[api.SERVICE_KEY] = service
    app[POLICY_KEY] = policy
    app[api.CONSENT_KEY] = consent
    app[api.HUB_KEY] = api.Hub()
    app[SETTINGS_KEY] = background or BackgroundSettings()
    app.router.add_get("/v1/ping", api.ping)
    app.router.add_route("OPTIONS", "/v1/ping", api.preflight)
    app.router.add_get("/v1/certhelper.js", api.client_js)
    app.router.add_get("/v1/ws", api.websocket)
    app.cleanup_ctx.append(_background_jobs)
    app.on_shutdown.append(_close_sockets)
    return app


async def _background_jobs(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    tasks = [asyncio.create_task(_sweep_sessions(app, settings.session_sweep))]
    if settings.hotplug_interval > 0:
        tasks.append(asyncio.create_task(_hotplug(app, settings.hotplug_interval)))
    yield
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await t


async def _sweep_sessions(app: web.Application, interval: float) -> None:
    service = app[api.SERVICE_KEY]
    while True:
        await asyncio.sleep(interval)
        try:
            await service.expire_sessions()
        except Exception:
            log.exception("session sweep failed")


async def _hotplug(app: web.Application, interval: float) -> None:
    service = app[api.SERVICE_KEY]
    hub = app[api.HUB_KEY]
    poller = HotplugPoller(service.tokens.drivers)  # type: ignore[arg-type]
    await asyncio.to_thread(poller.poll)  # the tokens present at start are not news

    async def on_event(ev: TokenEvent) -> None:
        data = {"label": ev.token.label, "serial": ev.token.serial}
        if ev.kind == "removed":
            await service.token_removed(ev.token.serial)
            await hub.broadcast("token.removed", data)
            return
        await service.token_inserted(ev.token.serial)
        await hub.broadcast("token.inserted", data)
        for item in await service.expiring(ev.token.serial):
            await hub.broadcast("certificate.expiring", item)

    await poller.run(on_event, interval=interval)


async def _close_sockets(app: web.Application) -> None:
    for conn in list(app[api.HUB_KEY].connections):
        await conn.ws.close(code=1001, message=b"server shutdown")
