"""Token insertion and removal by polling every driver (python-pkcs11 0.10 has no
slot events; families that have them still answer ``list_tokens``).

SoftHSM shows new tokens only after ``reinitialize()``, which ends every
session of the module; the poller therefore asks for a rescan only every
``rescan_every`` polls, and the driver skips it while a token is logged in.
A real reader reports an emptied slot without any of this.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from drivers.aio import AsyncDriver
from drivers.errors import CertHelperError
from drivers.protocol import TokenDriver
from drivers.types import TokenInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenEvent:
    kind: Literal["inserted", "removed"]
    token: TokenInfo


class HotplugPoller:
    """Diff successive token snapshots across modules. The first poll reports
    every present token as inserted."""

    def __init__(self, drivers: Sequence[TokenDriver], *, rescan_every: int = 5) -> None:
        self.drivers = list(drivers)
        self.rescan_every = max(1, rescan_every)
        self._known: dict[tuple[str, str], TokenInfo] = {}
        self._polls = 0

    @property
    def present(self) -> list[TokenInfo]:
        return list(self._known.values())

    def poll(self) -> list[TokenEvent]:
        """One blocking round over every driver (tests, tools)."""
        rescan = self._next_rescan()
        listings: dict[str, list[TokenInfo] | None] = {}
        for drv in self.drivers:
            try:
                listings[drv.module_path] = drv.list_tokens(rescan=rescan)
            except CertHelperError as exc:
                log.warning("polling %s failed: %s", drv.module_path, exc.code)
                listings[drv.module_path] = None
        return self._diff(listings)

    def _next_rescan(self) -> bool:
        rescan = self._polls % self.rescan_every == self.rescan_every - 1
        self._polls += 1
        return rescan

    def _diff(self, listings: dict[str, list[TokenInfo] | None]) -> list[TokenEvent]:
        now: dict[tuple[str, str], TokenInfo] = {}
        for path, tokens in listings.items():
            if tokens is None:
                # keep what we knew of this module rather than report false removals
                now.update({k: v for k, v in self._known.items() if k[0] == path})
                continue
            for t in tokens:
                now[(t.module_path, t.serial)] = t
        events = [TokenEvent("removed", t) for k, t in self._known.items() if k not in now]
        events += [TokenEvent("inserted", t) for k, t in now.items() if k not in self._known]
        self._known = now
        return events

    async def poll_async(self) -> list[TokenEvent]:
        """:meth:`poll` with each driver's listing awaited on its own worker."""
        rescan = self._next_rescan()
        listings: dict[str, list[TokenInfo] | None] = {}
        for drv in self.drivers:
            try:
                listings[drv.module_path] = await AsyncDriver(drv).list_tokens(rescan=rescan)
            except CertHelperError as exc:
                log.warning("polling %s failed: %s", drv.module_path, exc.code)
                listings[drv.module_path] = None
        return self._diff(listings)

    async def run(
        self, on_event: Callable[[TokenEvent], Awaitable[None]], *, interval: float = 1.0
    ) -> None:
        """Poll forever (cancel the task to stop); the listings run on the drivers' workers."""
        while True:
            events = await self.poll_async()
            for ev in events:
                try:
                    await on_event(ev)
                except Exception:  # a bad listener must not stop hot-plug
                    log.exception("hot-plug listener failed")
            await asyncio.sleep(interval)
