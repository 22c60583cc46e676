"""The bridge, composed: services built from the configuration, the native API
and the HEBCA endpoint listening on loopback, and the jobs around them.

``certhelper serve``, ``run`` (through :mod:`helper.daemon.run`) and ``demo``
(:mod:`helper.daemon.demo`) all start the bridge here; tests do the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from helper.bridge.extension.relay import ExtensionTransport
from helper.bridge.guard import ConnectionLimits, GuardedSites
from helper.bridge.hebca.endpoint import HebcaSocket, create_hebca_app
from helper.bridge.hebca.settings import settings_from_config
from helper.bridge.native.api import NativeApi, NativeSocket
from helper.bridge.native.app import BackgroundSettings, create_app
from helper.bridge.origins import OriginPolicy, normalize_origin
from helper.bridge.server import listen, loopback_hosts, raise_fd_limit
from helper.bridge.ws import HUB_KEY, Hub
from helper.config import Config, data_dir
from helper.daemon.trust import TrustWatch, default_watch, trust_watch_job
from helper.domain.renewal import RenewalWindow
from helper.services.audit import AuditLog, audit_key
from helper.services.consent import ConsentStore
from helper.services.gate import Gate
from helper.services.limits import GateSettings
from helper.services.prompts import Prompter
from helper.services.renewal import RenewalService, RenewalSettings
from helper.services.sessions import SessionTable
from helper.services.tokens import TokenService

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What the transports share: the gate and its neighbours."""

    gate: Gate
    renewal: RenewalService
    policy: OriginPolicy
    consent: ConsentStore


def build_services(
    config: Config,
    tokens: TokenService,
    prompter: Prompter,
    state_dir: Path,
    *,
    keyring_backend: Any = None,
) -> Services:
    consent = ConsentStore(state_dir / "consent.json")
    key, _where = audit_key(state_dir, keyring_backend)
    audit = AuditLog(
        state_dir / "audit.jsonl", key, max_bytes=config.audit_max_bytes, keep=config.audit_keep
    )
    gate = Gate(
        tokens,
        prompter,
        SessionTable(config.session_idle_timeout),
        audit,
        GateSettings(
            dialog_timeout=config.dialog_timeout, dialogs_per_minute=config.dialogs_per_minute
        ),
    )
    ca_origins = [
        o for o in (normalize_origin(c, strict=False) for c in config.renewal_ca_origins) if o
    ]
    renewal = RenewalService(
        gate,
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
    policy = OriginPolicy([*config.origins, *ca_origins], consent)
    return Services(gate, renewal, policy, consent)


#: aiohttp's server: idle kept-alive connections close after 15 s (they hold a slot)
RUNNER_OPTIONS: dict[str, Any] = {
    "access_log": None,
    "shutdown_timeout": 2.0,
    "keepalive_timeout": 15.0,
}
#: descriptors kept for everything but the listening ports (tokens, logs, windows)
FD_RESERVE = 128


def connection_limits(config: Config, *, ports: int) -> ConnectionLimits:
    """The configured caps, lowered when the process may not open that many files:
    a flood then meets a cap, never EMFILE."""
    room = max((raise_fd_limit() - FD_RESERVE) // max(ports, 1), 16)
    most = min(config.max_connections, room)
    return ConnectionLimits(
        max_connections=most,
        max_pending=min(config.max_pending_connections, most),
        header_timeout=config.header_timeout,
        tls_handshake_timeout=config.tls_handshake_timeout,
    )


@dataclass
class RunningBridge:
    runner: web.AppRunner
    port: int
    hosts: list[str]
    ca_path: Path | None
    services: Services
    hebca_runner: web.AppRunner | None = None
    hebca_port: int | None = None
    #: the local CA was (re)made at this start: browsers must be told to trust it again
    tls_created: bool = False
    #: the listening servers and their connection guards, per port
    sites: list[GuardedSites] = field(default_factory=list)
    #: the browser-extension transport (frames from ``certhelper native-host``)
    extension: ExtensionTransport | None = None

    @property
    def gate(self) -> Gate:
        return self.services.gate

    @property
    def renewal(self) -> RenewalService:
        return self.services.renewal

    async def stop(self) -> None:
        for sites in self.sites:  # stop accepting first
            await sites.close()
        if self.hebca_runner is not None:
            await self.hebca_runner.cleanup()
        await self.runner.cleanup()


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
    trust_watch: TrustWatch | None = None,
) -> RunningBridge:
    """Listen on every loopback address; ``port=0`` picks a free port (tests).
    ``hebca_port``: also serve the HEBCA endpoint there (0 = a free port,
    None = not at all); the daemon passes the config's. ``trust_watch``: the NSS
    databases whose changes get a new TLS leaf (default, when the identity is ours:
    the user's)."""
    state_dir = state_dir or data_dir()
    ca_path = None
    renew = None
    created = False
    if ssl_ctx is None:
        from helper.services.tls import ensure_identity, ssl_context

        identity = await asyncio.to_thread(
            ensure_identity, state_dir / "tls", keyring_backend=keyring_backend
        )
        ssl_ctx = ssl_context(identity)
        ca_path = identity.paths.ca_cert
        created = identity.created
        renew = _tls_renewal_job(state_dir / "tls", ssl_ctx, keyring_backend)
        trust_watch = trust_watch or default_watch(state_dir / "tls")
    services = build_services(config, tokens, prompter, state_dir, keyring_backend=keyring_backend)
    app = create_app(
        services.gate, services.policy, services.consent, background, renewal=services.renewal
    )
    if renew is not None:
        app.cleanup_ctx.append(renew)
    if trust_watch is not None:
        app.cleanup_ctx.append(trust_watch_job(trust_watch, ssl_ctx, keyring_backend))
    runner = web.AppRunner(app, **RUNNER_OPTIONS)
    await runner.setup()
    hosts = loopback_hosts()
    limits = connection_limits(config, ports=2 if hebca_port is not None else 1)
    bridge = RunningBridge(runner, 0, hosts, ca_path, services, tls_created=created)
    try:
        bridge.port, sites = await listen(
            runner, hosts, config.bridge_port if port is None else port, ssl_ctx, limits
        )
        bridge.sites.append(sites)
        hubs = {"native": app[HUB_KEY]}
        if hebca_port is not None:
            hebca_app = create_hebca_app(
                services.gate,
                services.policy,
                services.consent,
                settings_from_config(config),
                renewal=services.renewal,
            )
            bridge.hebca_runner = web.AppRunner(hebca_app, **RUNNER_OPTIONS)
            await bridge.hebca_runner.setup()
            bridge.hebca_port, sites = await listen(
                bridge.hebca_runner, hosts, hebca_port, None, limits
            )
            bridge.sites.append(sites)
            hubs["hebca"] = hebca_app[HUB_KEY]
        bridge.extension = extension_transport(services, config, hubs)
    except BaseException:
        await bridge.stop()  # a port in use must not leave sites and background jobs behind
        raise
    return bridge


def extension_transport(
    services: Services, config: Config, hubs: dict[str, Hub] | None = None
) -> ExtensionTransport:
    """The third transport, wired to the same gate, policy and protocol handlers
    as the two WebSocket transports (each protocol's own per-connection class)."""

    settings = settings_from_config(config)
    return ExtensionTransport(
        services.gate,
        services.policy,
        services.consent,
        {
            "hebca": lambda: HebcaSocket(settings, services.gate, services.renewal),
            "native": lambda: NativeSocket(NativeApi(services.gate), services.renewal),
        },
        hubs or {},
    )


TLS_CHECK_SECONDS = 6 * 3600


def _tls_renewal_job(
    tls_dir: Path, ctx: ssl.SSLContext, keyring_backend: Any
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Re-check the TLS identity every few hours; a renewed leaf is swapped into
    the running context (same CA, so browsers keep trusting it)."""

    async def job(_app: web.Application) -> AsyncIterator[None]:
        from helper.services.tls import ensure_identity, reload_ssl_context

        async def loop() -> None:
            while True:
                await asyncio.sleep(TLS_CHECK_SECONDS)
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
