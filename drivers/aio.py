"""asyncio face of :class:`drivers.pkcs11_driver.Pkcs11Driver`.

Each call is handed to the module's worker thread and awaited, so the event
loop never blocks on a token (ARCHITECTURE.md, "Threads and processes").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from drivers import errors as E
from drivers.pkcs11_driver import Pkcs11Driver
from drivers.types import Pin, SignAlgorithm, TokenContents, TokenInfo

T = TypeVar("T")


class AsyncDriver:
    def __init__(self, driver: Pkcs11Driver) -> None:
        self.driver = driver

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        fut = asyncio.wrap_future(self.driver.submit(fn, *args))
        try:
            return await asyncio.wait_for(fut, self.driver.timeout)
        except TimeoutError:
            raise E.OperationTimeout(detail=f"{self.driver.timeout:.0f}s") from None

    async def list_tokens(self, *, rescan: bool = False) -> list[TokenInfo]:
        return await self._run(lambda: self.driver.list_tokens(rescan=rescan))

    async def token_info(self, serial: str) -> TokenInfo:
        return await self._run(self.driver.token_info, serial)

    async def read_objects(self, serial: str) -> TokenContents:
        return await self._run(self.driver.read_objects, serial)

    async def login(self, serial: str, pin: Pin | None) -> None:
        await self._run(self.driver.login, serial, pin)

    async def logout(self, serial: str) -> None:
        await self._run(self.driver.logout, serial)

    async def is_logged_in(self, serial: str) -> bool:
        return await self._run(self.driver.is_logged_in, serial)

    async def sign(
        self, serial: str, key_id: bytes, data: bytes, algorithm: SignAlgorithm
    ) -> bytes:
        return await self._run(self.driver.sign, serial, key_id, data, algorithm)

    async def change_pin(self, serial: str, old: Pin, new: Pin) -> None:
        await self._run(self.driver.change_pin, serial, old, new)
