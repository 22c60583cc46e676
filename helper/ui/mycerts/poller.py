"""The background reader: re-scans the keys every second in its own thread (never
the Tk thread) and hands snapshots to the window through a queue."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from drivers.errors import CertHelperError
from helper.services.tokens import ModuleStatus, TokenService, TokenView

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0


@dataclass
class Snapshot:
    views: list[TokenView]
    modules: list[ModuleStatus]
    taken: datetime


@dataclass
class Failure:
    error: BaseException
    fatal: bool = False


class Poller:
    """Runs in its own thread: builds the TokenService, then every ``interval``
    re-scans and snapshots; results go to ``results``. Closes the service when
    stopped."""

    def __init__(
        self,
        make_service: Callable[[], TokenService],
        interval: float = POLL_SECONDS,
    ) -> None:
        self.make_service = make_service
        self.interval = interval
        self.results: queue.Queue[Snapshot | Failure] = queue.Queue()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="mycerts-poll", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def refresh_now(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _run(self) -> None:
        try:
            service = self.make_service()
        except Exception as exc:  # config errors, a module crashing at load
            self.results.put(Failure(exc, fatal=True))
            return
        try:
            while not self._stop.is_set():
                self.results.put(self.take(service))
                self._wake.wait(self.interval)
                self._wake.clear()
        finally:
            service.close()

    @staticmethod
    def take(service: TokenService) -> Snapshot | Failure:
        try:
            for d in service.drivers:
                try:
                    d.list_tokens(rescan=True)  # SoftHSM: see new token directories
                except CertHelperError as exc:
                    log.debug("rescan of %s failed: %s", d.module_path, exc.code)
            views = service.snapshot()
            return Snapshot(views, list(service.modules), datetime.now(UTC))
        except Exception as exc:
            log.warning("snapshot failed: %s", type(exc).__name__)
            return Failure(exc)
