"""The one async door to a key (drivers.aio) and the worker thread behind it."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from drivers import errors as E
from drivers.aio import AsyncDriver
from drivers.worker import Worker


class WorkerOnly:
    """The part of a TokenDriver that AsyncDriver.run uses: its worker."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.worker = Worker("test-worker", timeout=timeout, map_error=self._map)
        self.mapped: list[BaseException] = []

    def _map(self, exc: BaseException) -> E.CertHelperError | None:
        self.mapped.append(exc)
        return E.DeviceError(detail=type(exc).__name__) if isinstance(exc, OSError) else None


def test_work_runs_on_the_worker_thread() -> None:
    d = WorkerOnly()
    try:
        name = asyncio.run(AsyncDriver(d).run(lambda: threading.current_thread().name))  # type: ignore[arg-type]
        assert name.startswith("test-worker")
        # the blocking face runs on the same thread, and directly when already on it
        assert d.worker.call(lambda: threading.current_thread().name) == name
        assert d.worker.call(lambda: d.worker.call(lambda: 42)) == 42
    finally:
        d.worker.close()


def test_errors_are_mapped_once_at_the_boundary() -> None:
    d = WorkerOnly()

    def fails() -> None:
        raise OSError("device gone")

    try:
        with pytest.raises(E.DeviceError):
            asyncio.run(AsyncDriver(d).run(fails))  # type: ignore[arg-type]
        with pytest.raises(ValueError):  # not the library's: a bug, surfaced as is
            asyncio.run(AsyncDriver(d).run(int, "x"))  # type: ignore[arg-type]
    finally:
        d.worker.close()


def test_a_slow_key_is_a_timeout_not_a_hang() -> None:
    d = WorkerOnly(timeout=0.2)
    try:
        t0 = time.monotonic()
        with pytest.raises(E.OperationTimeout):
            asyncio.run(AsyncDriver(d).run(time.sleep, 1.0))  # type: ignore[arg-type]
        assert time.monotonic() - t0 < 0.9
    finally:
        d.worker.close()


def test_cancelling_a_caller_always_cancels_it() -> None:
    """A caller cancelled while its job finishes must end cancelled (Python 3.11's
    wait_for could return the result instead, and a cancelled hot-plug poll then ran
    on forever). Cancel at many points around the job's completion; a caller that
    survives its cancellation is counted, then stopped by a flag."""
    d = WorkerOnly()

    async def caller(stop: asyncio.Event) -> None:
        while not stop.is_set():  # like the hot-plug loop
            await AsyncDriver(d).run(time.sleep, 0.002)  # type: ignore[arg-type]

    async def main() -> int:
        survived = 0
        for i in range(60):
            stop = asyncio.Event()
            task = asyncio.create_task(caller(stop))
            await asyncio.sleep(0.002 + (i % 6) * 0.0007)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=1)
            if not done:
                survived += 1
                stop.set()
                await asyncio.wait({task}, timeout=1)
        return survived

    try:
        assert asyncio.run(main()) == 0
    finally:
        d.worker.close()


def test_a_closed_worker_refuses_work() -> None:
    d = WorkerOnly()
    d.worker.close()
    with pytest.raises(E.DeviceError):
        d.worker.submit(lambda: None)
