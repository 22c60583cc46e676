"""A real native-API app (aiohttp test server on loopback) over the session's SoftHSM
tokens, and the client side of its WebSocket."""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientWebSocketResponse
from aiohttp.test_utils import TestServer

from drivers.protocol import TokenDriver
from helper.bridge.native.app import BackgroundSettings, create_app
from helper.bridge.origins import OriginPolicy
from helper.config import Config
from helper.services.audit import AuditLog
from helper.services.consent import ConsentStore
from helper.services.gate import Gate
from helper.services.limits import GateSettings
from helper.services.renewal import RenewalService, RenewalSettings
from helper.services.sessions import SessionTable
from helper.services.tokens import ModuleStatus
from tests.support.doubles import AUDIT_KEY, ScriptedPrompter, SharedTokens, audit_entries
from tests.support.tokens import Fixtures

HALL = "http://127.0.0.1:9010"


@dataclass
class Bridge:
    server: TestServer
    http: ClientSession
    prompter: ScriptedPrompter
    gate: Gate
    consent: ConsentStore
    state: Path
    fx: Fixtures
    renewal: RenewalService | None = None

    @property
    def port(self) -> int:
        return self.server.port  # type: ignore[return-value]

    def audit(self) -> list[dict[str, Any]]:
        return audit_entries(self.state)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def ws(self, origin: str | None = HALL, **kw: Any) -> ClientWebSocketResponse:
        headers = {"Origin": origin} if origin is not None else {}
        return await self.http.ws_connect(self.url("/v1/ws"), headers=headers, **kw)


async def call(ws: ClientWebSocketResponse, method: str, params: Any = None, rid: Any = 1):
    """Send one request and return its reply, skipping server events."""
    msg: dict[str, Any] = {"id": rid, "method": method}
    if params is not None:
        msg["params"] = params
    await ws.send_str(json.dumps(msg))
    return await reply(ws, rid)


async def reply(ws: ClientWebSocketResponse, rid: Any, timeout: float = 30) -> dict[str, Any]:
    while True:
        data = await ws.receive_json(timeout=timeout)
        if "event" not in data and data.get("id") == rid:
            return data


def challenge(n: int = 32) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(n)).rstrip(b"=").decode()


@contextlib.asynccontextmanager
async def running_bridge(
    driver: TokenDriver,
    fx: Fixtures,
    state: Path,
    prompter: ScriptedPrompter | None = None,
    *,
    origins: list[str] | None = None,
    idle_timeout: float = 300.0,
    settings: GateSettings | None = None,
    background: BackgroundSettings | None = None,
    renewal: RenewalSettings | None = None,
) -> AsyncIterator[Bridge]:
    """``renewal``: the CA origins and roots renewal accepts (default: no renewal)."""
    prompter = prompter or ScriptedPrompter()
    config = Config(origins=origins or [HALL])
    tokens = SharedTokens(
        [ModuleStatus(driver.module_path, "config", driver=driver, family=driver.family)]
    )
    consent = ConsentStore(state / "consent.json")
    gate = Gate(
        tokens,
        prompter,
        SessionTable(idle_timeout),
        AuditLog(state / "audit.jsonl", AUDIT_KEY),
        settings or GateSettings(dialogs_per_minute=1000),  # rate limits: own test
    )
    renewal_service = RenewalService(gate, renewal) if renewal is not None else None
    app = create_app(
        gate,
        OriginPolicy(config.origins, consent),
        consent,
        background or BackgroundSettings(hotplug_interval=0, session_sweep=0.1),
        renewal=renewal_service,
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with ClientSession() as http:
            yield Bridge(server, http, prompter, gate, consent, state, fx, renewal_service)
    finally:
        for serial in list(gate.sessions._by_token):  # leave no token logged in
            await gate.end_session(serial)
        await server.close()
