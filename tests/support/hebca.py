"""A real HEBCA-compatible endpoint app over the session's tokens, and the legacy
client's wire protocol (shared/docs/hebca-p11-protocol.md, sections 1 and 2)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestServer

from drivers.pkcs11.driver import Pkcs11Driver
from drivers.protocol import TokenDriver
from helper.bridge.hebca.endpoint import create_hebca_app
from helper.bridge.hebca.settings import HebcaOriginOptions, HebcaSettings
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

HALL = "http://127.0.0.1:9010"  # the demo hall: page_pin = true by default
CANGZHOU = "http://111.62.46.105:9010"  # the Cangzhou hall: page_pin = true by default
OTHER = "http://127.0.0.1:9020"  # a configured bridge origin the tests give own options
# documented error codes (docs/hebca-compat.md, "Framing")
NO_CERT = -536145917  # 0xE00B1003: no key, no such certificate, out of range, nothing selected
FAILED = -536145887  # 0xE00B1021: wrong PIN, locked, cancelled, unreadable parameters, token error
REFUSED = 1007  # not supported or refused for web pages
COMPANY = "沧州市测试科技有限公司"
TRADE = "沧州市测试贸易有限公司"
KEY1 = "河北CA测试Key1"
KEY2 = "河北CA测试Key2"
SIGN_CERTS = ["company_sign", "trade_ec", "expiring", "expired"]  # in index order
CRYPT_CERTS = ["company_enc"]
HEBCA_UID = "HB130900000000001"


@dataclass
class Hebca:
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

    def url(self, path: str = "/test") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def ws(
        self, origin: str | None = HALL, *, shake: bool = True, **kw: Any
    ) -> ClientWebSocketResponse:
        """A connection as the client opens it: Origin header, then the handshake."""
        headers = {"Origin": origin} if origin is not None else {}
        ws = await self.http.ws_connect(self.url("/test"), headers=headers, **kw)
        if shake:
            await handshake(ws)
        return ws

    def audit(self) -> list[dict[str, Any]]:
        return audit_entries(self.state)

    def hebca_audit(self) -> list[dict[str, Any]]:
        return [e for e in self.audit() if str(e.get("operation", "")).startswith("hebca:")]


@contextlib.asynccontextmanager
async def running_hebca(
    driver: TokenDriver,
    fx: Fixtures,
    state: Path,
    prompter: ScriptedPrompter | None = None,
    *,
    origins: list[str] | None = None,
    hebca_origins: dict[str, HebcaOriginOptions] | None = None,
    assistor_version: str | None = None,
    idle_timeout: float = 300.0,
    settings: GateSettings | None = None,
    renewal: RenewalSettings | None = None,
) -> AsyncIterator[Hebca]:
    """``origins``: the bridge's configured origins (default: the demo hall);
    ``hebca_origins``: the per-origin HEBCA options (default: HebcaSettings');
    ``renewal``: the CA origins and roots renewal accepts (default: none)."""
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
    kw: dict[str, Any] = {}
    # the endpoint as demo mode configures it: the demo hall (HALL) collects the PIN in
    # its page, like the Cangzhou hall
    kw["origins"] = (
        hebca_origins
        if hebca_origins is not None
        else {o: HebcaOriginOptions(page_pin=True) for o in (HALL, CANGZHOU)}
    )
    if assistor_version is not None:
        kw["assistor_version"] = assistor_version
    app = create_hebca_app(
        gate,
        OriginPolicy(config.origins, consent),
        consent,
        HebcaSettings(**kw),
        renewal=renewal_service,
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with ClientSession() as http:
            yield Hebca(server, http, prompter, gate, consent, state, fx, renewal_service)
    finally:
        for serial in list(gate.sessions._by_token):  # leave no token logged in
            await gate.end_session(serial)
        await server.close()


async def recv_text(ws: ClientWebSocketResponse, timeout: float = 30) -> str:
    msg = await ws.receive(timeout=timeout)
    assert msg.type is WSMsgType.TEXT, (msg.type, msg.data, ws.close_code)
    return msg.data


async def handshake(ws: ClientWebSocketResponse) -> str:
    """What the client sends as soon as the socket opens (§1.3)."""
    await ws.send_str(f"0|{int(time.time() * 1000)}")
    text = await recv_text(ws)
    fields = text.split("|")
    assert fields[0] == "0" and len(fields) > 1 and "Welcome" in fields[1], text
    return text


def parse_reply(text: str, func: str | None = None) -> tuple[str, str, dict[str, Any]]:
    """Split on the first two ``|`` only; the JSON must survive the client's
    split-on-every-``|`` and ``eval``: no literal ``|``, ASCII only, integer ret."""
    parts = text.split("|", 2)
    assert len(parts) == 3, text
    tag, name, body = parts
    assert tag == "1", text
    if func is not None:
        assert name == func, (func, text)
    assert "|" not in body, text
    assert body.isascii(), text
    data = json.loads(body)
    assert isinstance(data, dict), text
    ret = data.get("ret")
    assert isinstance(ret, int) and not isinstance(ret, bool), text
    if ret != 0:
        assert isinstance(data.get("msg"), str) and data["msg"], text
    return tag, name, data


def frame(func: str, param: str | None = None) -> str:
    return f"1|{func}" if param is None else f"1|{func}|{param}"


async def req(
    ws: ClientWebSocketResponse, func: str, param: str | None = None, timeout: float = 30
) -> tuple[str, str, dict[str, Any]]:
    """Send ``1|func`` or ``1|func|param`` and read its one reply."""
    await ws.send_str(frame(func, param))
    return parse_reply(await recv_text(ws, timeout), func)


async def call(ws: ClientWebSocketResponse, func: str, param: str | None = None) -> dict[str, Any]:
    """The reply's JSON."""
    return (await req(ws, func, param))[2]


async def ok(ws: ClientWebSocketResponse, func: str, param: str | None = None) -> dict[str, Any]:
    """The reply's JSON, which must be a success."""
    data = await call(ws, func, param)
    assert data["ret"] == 0, (func, param, data)
    return data


def js(**fields: Any) -> str:
    """A parameter as the client concatenates it for ordinary values."""
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def idx(value: object) -> str:
    """``{"index":N}`` as the client writes it: the value inserted raw."""
    return '{"index":' + str(value) + "}"


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def sign_order(fx: Fixtures) -> list[str]:
    """The documented order: key label, key serial, subject CN, serial number."""
    certs = [fx.cert(n) for n in SIGN_CERTS]
    certs.sort(
        key=lambda c: (
            c["token_label"],
            c["token_serial"],
            c["subject_cn"],
            int(c["serial_hex"], 16),
        )
    )
    return [c["name"] for c in certs]


def der_of(driver: Pkcs11Driver, fx: Fixtures, name: str) -> bytes:
    """The DER of a fixture certificate, read from its token."""
    entry = fx.cert(name)
    for obj in driver.read_objects(entry["token_serial"]).certificates:
        if hashlib.sha256(obj.value).hexdigest() == entry["sha256"]:
            return obj.value
    raise AssertionError(f"{name} not on its token")


def cst(iso_utc: str) -> str:
    """ISO 8601 UTC (manifest) → ``YYYY-MM-DD HH:MM:SS`` in China Standard Time."""
    moment = datetime.strptime(iso_utc, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return (moment + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")


def slot_of(driver: Pkcs11Driver, serial: str) -> int:
    return next(t.slot_id for t in driver.list_tokens() if t.serial == serial)
