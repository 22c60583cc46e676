"""Starting the bridge: TLS identity, app, and one listening site per loopback
address (127.0.0.1 and ::1; never 0.0.0.0)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from helper.bridge.app import BackgroundSettings, create_app
from helper.bridge.origins import OriginPolicy, normalize_origin
from helper.config import Config, data_dir
from helper.domain.renewal import RenewalWindow
from helper.services.audit import AuditLog
from helper.services.bridge_service import BridgeService, BridgeSettings
from helper.services.consent import ConsentStore
from helper.services.prompts import Prompter
from helper.services.renewal import RenewalService, RenewalSettings
from helper.services.sessions import SessionTable
from helper.services.tokens import TokenService

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "::1")


@dataclass
class RunningBridge:
    runner: web.AppRunner
    port: int
    hosts: list[str]
    ca_path: Path | None
    service: BridgeService
    hebca_runner: web.AppRunner | None = None
    hebca_port: int | None = None
    #: the local CA was (re)made at this start: browsers must be told to trust it again
    tls_created: bool = False

    async def stop(self) -> None:
        if self.hebca_runner is not None:
            await self.hebca_runner.cleanup()
        await self.runner.cleanup()


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def build_service(
    config: Config, tokens: TokenService, prompter: Prompter, state_dir: Path
) -> tuple[BridgeService, OriginPolicy, ConsentStore]:
    consent = ConsentStore(state_dir / "consent.json")
    service = BridgeService(
        tokens,
        prompter,
        SessionTable(config.session_idle_timeout),
        AuditLog(state_dir / "audit.jsonl"),
        BridgeSettings(
            dialog_timeout=config.dialog_timeout, dialogs_per_minute=config.dialogs_per_minute
        ),
    )
    ca_origins = [
        o for o in (normalize_origin(c, strict=False) for c in config.renewal_ca_origins) if o
    ]
    service.renewal = RenewalService(
        service,
        RenewalSettings.build(
            ca_origins,
            config.renewal_ca_roots,
            window=RenewalWindow(
                config.renewal_window_before_days, config.renewal_window_after_days
            ),
            old_certificate=config.renewal_old_certificate,
            renewal_url=config.renewal_url,
        ),
    )
    return service, OriginPolicy([*config.origins, *ca_origins], consent), consent


async def start_bridge(
    config: Config,
    *,
    tokens: TokenService,
    prompter: Prompter,
    state_dir: Path | None = None,
    ssl_ctx: ssl.SSLContext | None = None,
    port: int | None = None,
    background: BackgroundSettings | None = None,
    keyring_backend: Any = None,
    hebca_port: int | None = None,
) -> RunningBridge:
    """Listen on every loopback address; ``port=0`` picks a free port (tests).
    ``hebca_port``: also serve the HEBCA endpoint there (0 = a free port,
    None = not at all); the daemon passes the config's."""
    state_dir = state_dir or data_dir()
    ca_path = None
    renew = None
    created = False
    if ssl_ctx is None:
        from helper.bridge.tls import ensure_identity, ssl_context

        identity = await asyncio.to_thread(
            ensure_identity, state_dir / "tls", keyring_backend=keyring_backend
        )
        ssl_ctx = ssl_context(identity)
        ca_path = identity.paths.ca_cert
        created = identity.created
        renew = _renewal_job(state_dir / "tls", ssl_ctx, keyring_backend)
    service, policy, consent = build_service(config, tokens, prompter, state_dir)
    app = create_app(service, policy, consent, background)
    if renew is not None:
        app.cleanup_ctx.append(renew)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    hosts = [h for h in LOOPBACK if h != "::1" or ipv6_loopback_available()]
    bridge = RunningBridge(runner, 0, hosts, ca_path, service, tls_created=created)
    try:
        bridge.port = await _listen(
            runner, hosts, config.bridge_port if port is None else port, ssl_ctx
        )
        if hebca_port is not None:
            from helper.bridge.hebca.endpoint import create_hebca_app
            from helper.bridge.hebca.settings import settings_from_config

            hebca_app = create_hebca_app(service, policy, consent, settings_from_config(config))
            bridge.hebca_runner = web.AppRunner(hebca_app, access_log=None, shutdown_timeout=2.0)
            await bridge.hebca_runner.setup()
            bridge.hebca_port = await _listen(bridge.hebca_runner, hosts, hebca_port, None)
    except BaseException:
        await bridge.stop()  # a port in use must not leave sites and background jobs behind
        raise
    return bridge


async def _listen(
    runner: web.AppRunner, hosts: list[str], port: int, ssl_ctx: ssl.SSLContext | None
) -> int:
    """Start one site per host on ``port`` (0: the first site picks, the rest follow)."""
    bound = port
    for host in hosts:
        site = web.TCPSite(runner, host, bound, ssl_context=ssl_ctx, reuse_address=True)
        await site.start()
        if bound == 0:
            server = site._server  # aiohttp exposes no public getter
            bound = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return bound


RENEW_CHECK_SECONDS = 6 * 3600


def _renewal_job(tls_dir: Path, ctx: ssl.SSLContext, keyring_backend: Any):  # type: ignore[no-untyped-def]
    """Re-check the TLS identity every few hours; a renewed leaf is swapped into
    the running context (same CA, so browsers keep trusting it)."""

    async def job(_app: web.Application):  # type: ignore[no-untyped-def]
        from helper.bridge.tls import ensure_identity, reload_ssl_context

        async def loop() -> None:
            while True:
                await asyncio.sleep(RENEW_CHECK_SECONDS)
                try:
                    identity = await asyncio.to_thread(
                        ensure_identity, tls_dir, keyring_backend=keyring_backend
                    )
                except Exception:
                    log.exception("TLS identity check failed")
                    continue
                if identity.renewed or identity.created:
                    reload_ssl_context(ctx, identity)
                    log.info("TLS leaf renewed (CA new: %s)", identity.created)

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return job


async def serve_forever(config: Config, tokens: TokenService, prompter: Prompter) -> None:
    bridge = await start_bridge(
        config,
        tokens=tokens,
        prompter=prompter,
        hebca_port=config.hebca_port if config.hebca_enabled else None,
    )
    addresses = ", ".join(
        f"https://{h if ':' not in h else f'[{h}]'}:{bridge.port}" for h in bridge.hosts
    )
    print(f"证书助手已启动 (certhelper bridge listening): {addresses}", flush=True)
    if bridge.hebca_port:
        print(f"兼容接口 (HEBCA endpoint): ws://localhost:{bridge.hebca_port}/test", flush=True)
    if bridge.ca_path:
        print(f"本机 CA 证书 (local CA to trust in browsers): {bridge.ca_path}", flush=True)
    try:
        await wait_for_signal()
    finally:
        await bridge.stop()
        tokens.close()


async def wait_for_signal() -> None:
    """Until SIGINT or SIGTERM (Ctrl+C, or the session ending)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
