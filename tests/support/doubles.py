"""Doubles for what the tests stand in for: the person at the dialogs, a token
service that outlives the apps built on it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.types import Pin
from helper.services.prompts import CertChoice, ConsentChoice, ConsentRequest, PinRequest
from helper.services.tokens import TokenService
from tests.support.tokens import USER_PIN


class SharedTokens(TokenService):
    """The session driver outlives every app."""

    def close(self) -> None:
        pass


@dataclass
class ScriptedPrompter:
    """Answers dialogs from scripts and records every request it got."""

    pins: list[str | BaseException] = field(default_factory=lambda: [USER_PIN] * 100)
    consents: list[ConsentChoice | BaseException] = field(
        default_factory=lambda: [ConsentChoice.ONCE] * 100
    )
    pick: Callable[[list[CertChoice]], str] | None = None
    delay: float = 0.0
    calls: list[tuple[str, Any]] = field(default_factory=list)

    async def _answer(self, queue: list[Any]) -> Any:
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = queue.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def ask_pin(self, request: PinRequest) -> Pin:
        self.calls.append(("pin", request))
        return Pin(await self._answer(self.pins))

    async def ask_consent(self, request: ConsentRequest) -> ConsentChoice:
        self.calls.append(("consent", request))
        return await self._answer(self.consents)

    async def pick_certificate(self, origin: str, insecure: bool, choices: list[CertChoice]):
        self.calls.append(("pick", choices))
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.pick(choices) if self.pick else choices[0].id

    def kinds(self) -> list[str]:
        return [k for k, _ in self.calls]


#: the audit log's MAC key in tests (the daemon keeps a random one in the keyring)
AUDIT_KEY = bytes(range(32))


def audit_entries(state: Path) -> list[dict[str, Any]]:
    """The audit log a test bridge wrote under ``state`` (empty if none)."""
    path = state / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text("utf-8").splitlines() if x.strip()]
