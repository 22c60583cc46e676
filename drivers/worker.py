"""One dedicated thread per loaded key library.

PKCS#11 modules (initialised without OS locking) and SKF libraries are not safe
to call from several threads, so every call for one library runs on its own
worker thread. Blocking callers use :meth:`Worker.call`; async callers await
:meth:`Worker.submit`'s future (:mod:`drivers.aio`). Errors raised on the worker
are translated once, at this boundary, by the family's ``map_error``.
"""

from __future__ import annotations

import _thread
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from drivers import errors as E

T = TypeVar("T")

#: a family's translation of its library's exceptions (None: not one of ours)
ErrorMap = Callable[[BaseException], "E.CertHelperError | None"]


class _Call:
    """A blocking caller's slot: the worker fills it and releases the lock (cheaper than
    a Future and its Condition: this hand-off is on every signature's path)."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = _thread.allocate_lock()
        self.done.acquire()
        self.value: Any = None
        self.error: BaseException | None = None


class Worker:
    """A single thread that runs one library's calls in order, with timeouts and error
    mapping. The thread starts with the first call and stops on :meth:`close`."""

    def __init__(self, name: str, *, timeout: float, map_error: ErrorMap) -> None:
        self.timeout = timeout
        self._map_error = map_error
        self._jobs: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], Any] | None]
        self._jobs = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._closed = False
        self._label = name

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start:
            if self._thread is None:
                thread = threading.Thread(target=self._loop, name=f"{self._label}_0", daemon=True)
                self._thread = thread
                thread.start()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, args, sink = job
            if isinstance(sink, Future):
                if not sink.set_running_or_notify_cancel():
                    continue
                try:
                    sink.set_result(self._run(fn, *args))
                except BaseException as exc:  # handed to the waiting caller
                    sink.set_exception(exc)
            else:
                try:
                    sink.value = self._run(fn, *args)
                except BaseException as exc:  # handed to the waiting caller
                    sink.error = exc
                sink.done.release()

    @property
    def closed(self) -> bool:
        return self._closed

    def on_worker(self) -> bool:
        return threading.current_thread() is self._thread

    def _run(self, fn: Callable[..., T], *args: Any) -> T:
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
        self._ensure_thread()
        fut: Future[T] = Future()
        self._jobs.put((fn, args, fut))
        return fut

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """Run ``fn(*args)`` on the worker and wait; on the worker itself, run it now."""
        if self.on_worker():
            return self._run(fn, *args)
        if self._closed:
            raise E.DeviceError(detail=f"{self._label} is closed")
        self._ensure_thread()
        slot = _Call()
        self._jobs.put((fn, args, slot))
        if not slot.done.acquire(timeout=self.timeout if timeout is None else timeout):
            raise E.OperationTimeout(detail=f"{self.timeout:.0f}s")
        if slot.error is not None:
            raise slot.error
        return slot.value

    def close(self) -> None:
        """Stop the thread after the work already queued."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def abandon(self) -> None:
        """Stop without waiting (a library that failed to load)."""
        self._closed = True
        self._jobs.put(None)
