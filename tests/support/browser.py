"""Debian's Chromium driven by Playwright, the event loop the bridge and hall run on
in browser tests, and the prompter double those tests use."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from drivers.types import Pin
from helper.daemon.compose import RunningBridge
from helper.errors import UserCancelled
from helper.services.prompts import CertChoice, ConsentChoice, ConsentRequest, PinRequest
from tests.support.tokens import USER_PIN, Fixtures

CHROMIUM = "/usr/bin/chromium"


COMPANY = "沧州市测试科技有限公司"


ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


T = TypeVar("T")


class LoopThread:
    """An event loop in a daemon thread, for the bridge and the hall."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class PrompterDouble:
    """Answers the bridge's dialogs: PIN 123456 (or cancel), consent once, the company
    certificate in the picker. Records every question."""

    def __init__(self, cert_id: str, *, cancel_pin: bool = False) -> None:
        self.cert_id = cert_id
        self.cancel_pin = cancel_pin
        self.pins: list[PinRequest] = []
        self.consents: list[ConsentRequest] = []
        self.picks: list[tuple[str, list[CertChoice]]] = []

    async def ask_pin(self, request: PinRequest) -> Pin:
        self.pins.append(request)
        if self.cancel_pin:
            raise UserCancelled()
        return Pin(USER_PIN)

    async def ask_consent(self, request: ConsentRequest) -> ConsentChoice:
        self.consents.append(request)
        return ConsentChoice.ONCE

    async def pick_certificate(
        self, origin: str, insecure_origin: bool, choices: list[CertChoice]
    ) -> str:
        self.picks.append((origin, choices))
        assert any(c.id == self.cert_id for c in choices)
        return self.cert_id


@dataclass
class Stack:
    hall_origin: str
    bridge: RunningBridge
    state_dir: Path
    home: Path
    prompter: PrompterDouble
    loop: LoopThread
    running: list[web.AppRunner | RunningBridge]

    def stop_bridge(self) -> None:
        self.running.remove(self.bridge)
        self.loop.run(self.bridge.stop())

    def audit(self) -> list[dict[str, Any]]:
        text = (self.state_dir / "audit.jsonl").read_text("utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def trust_ca(home: Path, ca_pem: Path) -> None:
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    certutil = ["certutil", "-d", f"sql:{db}"]
    subprocess.run([*certutil, "-N", "--empty-password"], check=True, capture_output=True)
    subprocess.run(
        [*certutil, "-A", "-t", "C,,", "-n", "certhelper local CA", "-i", str(ca_pem)],
        check=True,
        capture_output=True,
    )


def skf_cert_id(serial: str, container: str) -> str:
    """The certificate id of an SKF container's signing certificate."""
    return f"{serial}:{(container + '/sign').encode().hex()}"


def company_cert_id(fixtures: Fixtures) -> str:
    c = fixtures.cert("company_sign")
    return f"{c['token_serial']}:{c['key_id']}"


@dataclass
class LegacyStack:
    stack: Stack
    hebca_port: int

    @property
    def hall_origin(self) -> str:
        return self.stack.hall_origin


def open_legacy_page(page: Any, ls: LegacyStack, errors: list[str]) -> list[dict[str, str]]:
    """Open /ish/legacy and wait for the certificate list; return its options."""
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{ls.hall_origin}/ish/legacy")
    assert page.title().startswith("旧版助手登录")
    assert page.get_attribute("#legacy", "data-hebca-port") == str(ls.hebca_port)
    page.wait_for_selector("#cert-select:not([disabled])", timeout=20_000)
    return page.eval_on_selector_all(
        "#cert-select option",
        "os => os.map(o => ({value: o.value, text: o.textContent, cn: o.dataset.cn || ''}))",
    )


class RenewalPrompter(PrompterDouble):
    """PIN 123456, every confirmation once; the certificate picker takes the one with
    serial ``pick_serial`` (the renewed certificate, known only after the renewal)."""

    def __init__(self) -> None:
        super().__init__(cert_id="")
        self.pick_serial: str | None = None
        self.deny_installs = 0  # refuse this many renewal.install confirmations

    async def ask_consent(self, request: ConsentRequest) -> ConsentChoice:
        if request.operation == "renewal.install" and self.deny_installs > 0:
            self.deny_installs -= 1
            self.consents.append(request)
            return ConsentChoice.DENY
        return await super().ask_consent(request)

    async def pick_certificate(
        self, origin: str, insecure_origin: bool, choices: list[CertChoice]
    ) -> str:
        self.picks.append((origin, choices))
        chosen = [c for c in choices if c.serial_hex == self.pick_serial]
        assert len(chosen) == 1, [c.serial_hex for c in choices]
        return chosen[0].id
