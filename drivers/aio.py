"""The one async way to reach a key: await the library's worker thread.

:class:`AsyncDriver` wraps any :class:`~drivers.protocol.TokenDriver`; each
call is handed to the driver's worker with :meth:`~TokenDriver.submit` and
awaited with the driver's timeout, so the event loop never blocks on a token
and no other thread sits in between (ARCHITECTURE.md, "Threads and processes").
Several steps that belong together (e.g. building a CMS structure around
signatures) run as one job with :meth:`AsyncDriver.run`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from drivers import errors as E
from drivers.protocol import TokenDriver
from drivers.sm2 import DEFAULT_ID
from drivers.types import (
    CertObject,
    KeyPairSpec,
    NewCertificate,
    Pin,
    PublicKeyObject,
    SignAlgorithm,
    TokenContents,
    TokenInfo,
)

T = TypeVar("T")


class AsyncDriver:
    def __init__(self, driver: TokenDriver) -> None:
        self.driver = driver

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the driver's worker thread; the driver's own calls inside
        it run directly (they see they are on the worker)."""
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
        # cancellation that races with the result, and a cancelled caller (a
        # hot-plug task being stopped) would then run on forever
        worker = self.driver.worker
        try:
            async with asyncio.timeout(worker.timeout):
                return await asyncio.wrap_future(worker.submit(fn, *args))
        except TimeoutError:
            raise E.OperationTimeout(detail=f"{worker.timeout:.0f}s") from None

    async def list_tokens(self, *, rescan: bool = False) -> list[TokenInfo]:
        return await self.run(lambda: self.driver.list_tokens(rescan=rescan))

    async def token_info(self, serial: str) -> TokenInfo:
        return await self.run(self.driver.token_info, serial)

    async def read_objects(self, serial: str) -> TokenContents:
        return await self.run(self.driver.read_objects, serial)

    async def login(self, serial: str, pin: Pin | None) -> None:
        await self.run(self.driver.login, serial, pin)

    async def logout(self, serial: str) -> None:
        await self.run(self.driver.logout, serial)

    def is_logged_in(self, serial: str) -> bool:
        """The driver's bookkeeping: answered here, without a trip to the worker."""
        return self.driver.is_logged_in(serial)

    async def sign(
        self,
        serial: str,
        key_id: bytes,
        data: bytes,
        algorithm: SignAlgorithm,
        *,
        sm2_id: bytes = DEFAULT_ID,
    ) -> bytes:
        return await self.run(
            lambda: self.driver.sign(serial, key_id, data, algorithm, sm2_id=sm2_id)
        )

    async def change_pin(self, serial: str, old: Pin, new: Pin) -> None:
        await self.run(self.driver.change_pin, serial, old, new)

    async def public_keys(self, serial: str) -> list[PublicKeyObject]:
        return await self.run(self.driver.public_keys, serial)

    async def generate_key_pair(
        self, serial: str, spec: KeyPairSpec, label: str
    ) -> PublicKeyObject:
        return await self.run(self.driver.generate_key_pair, serial, spec, label)

    async def write_certificate(
        self,
        serial: str,
        new: NewCertificate,
        *,
        replace: CertObject | None = None,
        archive_label: str | None = None,
    ) -> None:
        await self.run(
            lambda: self.driver.write_certificate(
                serial, new, replace=replace, archive_label=archive_label
            )
        )
