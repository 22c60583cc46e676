"""One dedicated thread per loaded key library.

PKCS#11 modules (initialised without OS locking) and SKF libraries are not safe
to call from several threads, so every call for one library runs on its own
worker thread. Blocking callers use :meth:`Worker.call`; async callers await
:meth:`Worker.submit`'s future (:mod:`drivers.aio`). Errors raised on the worker
are translated once, at this boundary, by the family's ``map_error``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from drivers import errors as E

T = TypeVar("T")

#: a family's translation of its library's exceptions (None: not one of ours)
ErrorMap = Callable[[BaseException], "E.CertHelperError | None"]


class Worker:
    """A single-thread executor with timeouts and error mapping."""

    def __init__(self, name: str, *, timeout: float, map_error: ErrorMap) -> None:
        self.timeout = timeout
        self._map_error = map_error
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._label = name

    @property
    def closed(self) -> bool:
        return self._closed

    def on_worker(self) -> bool:
        return threading.current_thread() is self._thread

    def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._thread is None:
            self._thread = threading.current_thread()
        try:
            return fn(*args)
        except E.CertHelperError:
            raise
        except Exception as exc:
            mapped = self._map_error(exc)
            if mapped is None:
                raise
            raise mapped from None

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on the worker thread; errors arrive already mapped."""
        if self._closed:
            raise E.DeviceError(detail=f"{self._label} is closed")
        return self._executor.submit(self._run, fn, *args)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """Run ``fn(*args)`` on the worker and wait; on the worker itself, run it now."""
        if self.on_worker():
            return self._run(fn, *args)
        fut = self.submit(fn, *args)
        try:
            return fut.result(timeout=self.timeout if timeout is None else timeout)
        except FutureTimeout:
            raise E.OperationTimeout(detail=f"{self.timeout:.0f}s") from None

    def close(self) -> None:
        """Stop the thread after the work already queued."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True)

    def abandon(self) -> None:
        """Stop without waiting (a library that failed to load)."""
        self._closed = True
        self._executor.shutdown(wait=False)
