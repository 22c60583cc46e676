"""The daemon behind ``certhelper run`` (docs/desktop.md).

Main thread: the tray (pystray wants it; macOS insists). Thread "bridge": one
asyncio loop with the native API, the HEBCA endpoint, the hot-plug poller, the
tray-state refresher and the control socket. The tray thread never touches a
token: menu actions open a window process or post work to the loop.

The tray state is recomputed at start, every ``state_interval`` seconds (the
token list is cheap; certificates are re-read when the set of keys changed, or
once a minute for the clock) and at once after an initial-PIN login or a PIN
change. SoftHSM shows added or removed token directories after the bridge's
hot-plug poller rescans (every few polls), and the refresher follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import threading
import time
import webbrowser
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from drivers.errors import CertHelperError
from drivers.types import TokenInfo
from helper import __version__
from helper.apps import Category, load_apps
from helper.bridge.native.app import BackgroundSettings
from helper.config import ENV_CONFIG, Config
from helper.services.alerts import AlertScheduler, default_state_path, notification_text
from helper.services.control import Claim, DaemonUnavailable, Reply, Stream
from helper.services.tokens import CertEntry, TokenService, TokenView
from helper.tray.menu import (
    QUIT,
    RENEW,
    SHOW_ABOUT,
    SHOW_DOCTOR,
    SHOW_SUPPORT,
    WINDOWS,
    parse_action,
)
from helper.tray.state import NO_KEY, TrayState, compute_state, needs_pin_change
from helper.ui.launch import Window, Windows

log = logging.getLogger(__name__)

#: seconds between tray-state refreshes
STATE_INTERVAL = 2.0
#: certificates are re-read at least this often (seconds), for the clock's sake
ENTRIES_MAX_AGE = 60.0


class TrayLike(Protocol):
    def run(self, on_ready: Callable[[], None] | None = None) -> None: ...
    def stop(self) -> None: ...
    def set_state(self, state: TrayState) -> None: ...


#: how long the tray may take to leave its event loop once everything else stopped
TRAY_STOP_GRACE = 5.0
#: notices that never interrupt a flow of dialogs (the ones the person asked for do)
DEFERRED_NOTICES = ("initial_pin", "expiry")
#: how long after the last dialog closed a held notice may appear
NOTICE_QUIET_SECONDS = 8.0

SiteStarter = Callable[[Any], Awaitable[list[Any]]]  # RunningBridge -> web.AppRunners


class TrayFactory(Protocol):
    def __call__(
        self, *, on_action: Callable[[str], None], apps: Sequence[Category], state: TrayState
    ) -> TrayLike: ...


def default_tray_factory(
    *, on_action: Callable[[str], None], apps: Sequence[Category], state: TrayState
) -> TrayLike:
    from helper.tray.tray import Tray

    return Tray(on_action=on_action, apps=apps, state=state)


class Daemon:
    def __init__(
        self,
        config: Config,
        claim: Claim,
        *,
        tray_factory: TrayFactory = default_tray_factory,
        prompter: Any = None,
        service_factory: Callable[[Config], TokenService] | None = None,
        apps: Sequence[Category] | None = None,
        windows: Windows | None = None,
        open_url: Callable[[str], object] = webbrowser.open,
        state_interval: float = STATE_INTERVAL,
        hotplug_interval: float = 1.0,
        bridge_options: dict[str, Any] | None = None,
        alerts_path: Path | None = None,
        auto_trust: bool = False,
        sites: SiteStarter | None = None,
    ) -> None:
        self.config = config
        self._alerts_path = alerts_path  # tests: somewhere in tmp; else the data dir
        self.auto_trust = auto_trust  # `certhelper run`: browsers trust the local CA
        self._sites = sites  # more web apps hosted beside the bridge (the demo's)
        # notices held while the person is in a flow of dialogs (one window at a time)
        self._deferred: list[tuple[str, dict[str, Any] | None, tuple[str, ...]]] = []
        self._deferred_lock = threading.Lock()
        self._tray_left = threading.Event()  # the tray's run() returned
        self._site_runners: list[Any] = []
        self.claim = claim
        self._tray_factory = tray_factory
        self._prompter = prompter
        self._service_factory = service_factory or TokenService.from_config
        self.apps = list(load_apps().categories if apps is None else apps)
        self.windows = windows or Windows()
        self.windows.on_exit = self._on_window_exit
        self._open_url_fn = open_url
        self._state_interval = state_interval
        self._hotplug_interval = hotplug_interval
        #: more keyword arguments for start_bridge (tests: state_dir, keyring_backend, port)
        self._bridge_options = dict(bridge_options or {})
        self._window_env = {ENV_CONFIG: str(config.path)} if config.path else {}

        self.state: TrayState = NO_KEY
        self.tray: TrayLike | None = None
        self.tokens: TokenService | None = None
        self.bridge: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self._stop_event: asyncio.Event | None = None
        self._kick_event: asyncio.Event | None = None
        self._error: BaseException | None = None
        # tray-state inputs
        self._initial_pin: set[str] = set()
        self._initial_pin_told: set[str] = set()
        self._entries: list[CertEntry] | None = None
        # expiry alerts (created once the tokens' clock is known)
        self._alerts: AlertScheduler | None = None
        self._alert_keys: frozenset[tuple[str, str]] = frozenset()
        self._alerts_checked = 0.0
        self._entries_at = 0.0
        self._token_key: frozenset[tuple[str, str]] | None = None

    # --- main thread -----------------------------------------------------------

    def run(self) -> int:
        """Start the loop thread, then run the tray here until quit; 0 on a clean exit."""
        self._thread = threading.Thread(target=self._thread_main, name="bridge", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join(timeout=10)
            if isinstance(self._error, CertHelperError):
                raise self._error
            raise DaemonUnavailable(detail=str(self._error) or type(self._error).__name__)
        self._announce()
        previous = self._install_sigterm()
        try:
            self._run_tray()
        except KeyboardInterrupt:
            pass
        finally:
            self.request_stop()
            self._thread.join(timeout=30)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return 0

    def _announce(self) -> None:
        bridge = self.bridge
        print(
            f"证书助手已启动 (certhelper running): https://127.0.0.1:{bridge.port}"
            + (f", ws://localhost:{bridge.hebca_port}/test" if bridge.hebca_port else ""),
            flush=True,
        )

    def _install_sigterm(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None
        return signal.signal(signal.SIGTERM, lambda *_: self.request_stop())

    def _run_tray(self) -> None:
        if self._finished.is_set():
            return
        try:
            tray = self._tray_factory(on_action=self.on_action, apps=self.apps, state=self.state)
        except Exception as exc:  # no display, no tray libraries: keep serving without
            log.warning("no tray icon (%s); running without one", exc)
            self._wait_finished()
            return
        self.tray = tray
        tray.set_state(self.state)  # whatever changed while it was being built

        def ready() -> None:
            if self._finished.is_set():  # quit came before the tray was up
                tray.stop()

        try:
            tray.run(on_ready=ready)
        except Exception:
            log.exception("the tray failed; running without one")
            self.tray = None
            self._wait_finished()
        finally:
            self._tray_left.set()

    def _wait_finished(self) -> None:
        while not self._finished.wait(0.5):  # a timeout keeps signals deliverable
            pass

    def request_stop(self) -> None:
        """Stop the daemon (any thread)."""
        self._stopping.set()
        loop, event = self.loop, self._stop_event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(event.set)

    # --- the loop thread ---------------------------------------------------------

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:
            log.exception("the daemon's loop failed")
            if not self._ready.is_set():
                self._error = exc
        finally:
            with contextlib.suppress(Exception):
                _cancel_leftovers(loop)
                loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            self._finished.set()
            self._ready.set()
            if self.tray is not None:
                self.tray.stop()
                _exit_if_the_tray_hangs(self._tray_left, TRAY_STOP_GRACE)

    async def _main(self) -> None:
        from helper.daemon.compose import start_bridge
        from helper.daemon.trust import auto_trust

        self._stop_event = asyncio.Event()
        self._kick_event = asyncio.Event()
        if self._stopping.is_set():
            self._stop_event.set()
        try:
            self.tokens = await asyncio.to_thread(self._service_factory, self.config)
            if self._prompter is None:
                from helper.ui.prompter import TkPrompter

                self._prompter = TkPrompter(timeout=self.config.dialog_timeout)
            self.bridge = await start_bridge(
                self.config,
                tokens=self.tokens,
                prompter=self._prompter,
                hebca_port=self.config.hebca_port if self.config.hebca_enabled else None,
                background=BackgroundSettings(hotplug_interval=self._hotplug_interval),
                **self._bridge_options,
            )
            if self._sites is not None:
                self._site_runners = await self._sites(self.bridge)
        except Exception as exc:
            if isinstance(exc, OSError):
                from helper.daemon.ports import busy_port, port_in_use

                ports = [self.config.bridge_port, self.config.hebca_port]
                exc = port_in_use(exc, "127.0.0.1", busy_port(ports) or ports[0])
            self._error = exc
            if self.bridge is not None:
                await self.bridge.stop()
            if self.tokens is not None:
                self.tokens.close()
            self.claim.close()
            self._ready.set()
            return
        self.bridge.gate.on_initial_pin = self._on_initial_pin
        if self.bridge.ca_path is not None:
            notes = await asyncio.to_thread(
                auto_trust,
                self.bridge.ca_path,
                created=self.bridge.tls_created,
                add=self.auto_trust,
            )
            for note in notes:
                print(note, flush=True)
        self._alerts = AlertScheduler(self._alerts_path or default_state_path(), self.tokens.clock)
        self.bridge.renewal.on_renewed = self._on_renewed
        refresher: asyncio.Task[None] | None = None
        flusher: asyncio.Task[None] | None = None
        try:
            try:
                await self._refresh_state()
            except Exception:
                log.exception("first tray state refresh failed")
            # requests that came in meanwhile waited in the socket's backlog
            await self.claim.serve(self._command)
            refresher = asyncio.create_task(self._refresh_loop())
            flusher = asyncio.create_task(self._deferred_loop())
            self._ready.set()
            await self._stop_event.wait()
        finally:
            log.info("stopping")
            for task in (refresher, flusher):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            self.claim.close()
            for runner in reversed(self._site_runners):
                await runner.cleanup()
            await self.bridge.stop()
            await asyncio.to_thread(self.tokens.close)
            self.windows.close_all()

    def _kick(self) -> None:
        """Refresh the tray state now (on the loop)."""
        if self._kick_event is not None:
            self._kick_event.set()

    def _on_loop(self, fn: Callable[..., object], *args: object) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, *args)

    async def _deferred_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._flush_deferred()

    async def _refresh_loop(self) -> None:
        assert self._kick_event is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick_event.wait(), self._state_interval)
            self._kick_event.clear()
            try:
                await self._refresh_state()
            except Exception:
                log.exception("tray state refresh failed")

    async def _refresh_state(self) -> None:
        assert self.tokens is not None
        infos = [t for _, t in await self.tokens.tokens_async()]
        key = frozenset((t.module_path, t.serial) for t in infos)
        stale = time.monotonic() - self._entries_at > ENTRIES_MAX_AGE
        if self._entries is None or key != self._token_key or stale:
            if key != self._token_key:
                self.bridge.gate.certificates.invalidate()
            self._entries = await self.bridge.gate.certificates.entries() if infos else []
            self._entries_at = time.monotonic()
            self._token_key = key
        views = [
            TokenView(
                token=t,
                certificates=[
                    e
                    for e in self._entries
                    if e.token.serial == t.serial and e.token.module_path == t.module_path
                ],
            )
            for t in infos
        ]
        for t in infos:
            if needs_pin_change(t):  # SKF: the key's default-PIN flag
                self._tell_initial_pin(t)
        self._check_alerts(key)
        self._publish(compute_state(views, self.tokens.clock(), initial_pin=self._initial_pin))

    def _publish(self, state: TrayState) -> None:
        if state == self.state:
            return
        self.state = state
        log.info("tray state: %s (%s)", state.status.value, state.tooltip)
        tray = self.tray
        if tray is not None:
            tray.set_state(state)

    # --- expiry alerts ---------------------------------------------------------------

    def _check_alerts(self, key: frozenset[tuple[str, str]]) -> None:
        """At start, when a key is inserted, and every CHECK_INTERVAL: announce each
        threshold (30/7/1 days, expired) once per certificate (docs/desktop.md)."""
        if self._alerts is None or self._entries is None:
            return
        inserted = bool(key - self._alert_keys)
        self._alert_keys = key
        interval = AlertScheduler.CHECK_INTERVAL.total_seconds()
        if not inserted and time.monotonic() - self._alerts_checked < interval:
            return
        self._alerts_checked = time.monotonic()
        due = self._alerts.due(self._entries)
        if not due:
            return
        from helper.ui.notice.content import expiry_request  # (Tk-free, but keep the daemon lean)

        self.open_window("notice", expiry_request(due, self.config.renewal_url))
        title, message = notification_text(due)
        tray = self.tray
        if tray is not None and hasattr(tray, "notify"):
            with contextlib.suppress(Exception):  # not every backend notifies
                tray.notify(title, message)
        self._alerts.mark(due)  # announced once, even if the window is closed unread

    # --- initial PIN -----------------------------------------------------------------

    def _on_renewed(self, old_sha256: str, new_sha256: str) -> None:
        """RenewalService hook (on the loop): a certificate was renewed. Its alerts
        start over, and the tray looks again (the attention state may clear)."""
        if self._alerts is not None:
            self._alerts.reset(old_sha256, new_sha256)
        self._alerts_checked = 0.0
        self._kick()

    def _on_initial_pin(self, info: TokenInfo) -> None:
        """Gate hook (on the loop): a login used the initial PIN 123456."""
        if info.pin_is_default is not None:
            return  # the key tells by its own flag (SKF): the refresher follows it
        self._initial_pin.add(info.serial)
        self._tell_initial_pin(info)
        self._kick()

    def _tell_initial_pin(self, info: TokenInfo) -> None:
        if info.serial in self._initial_pin_told:
            return  # once per key per daemon run
        self._initial_pin_told.add(info.serial)
        self.open_window(
            "notice",
            {"kind": "initial_pin", "token_label": info.label, "token_serial": info.serial},
        )

    def _pin_changed(self, serial: str | None) -> None:
        """A change-PIN window changed a PIN: that key (when the window was opened
        for one, or when it is the only one inserted) is off the initial PIN."""
        if serial:
            self._initial_pin.discard(serial)
        elif len(self._token_key or ()) <= 1:
            self._initial_pin.clear()
        self._kick()

    # --- actions (tray thread, loop thread, window watchers) --------------------------

    def on_action(self, action: str) -> None:
        verb, arg = parse_action(action)
        if action == QUIT:
            self.request_stop()
        elif action == RENEW:
            self.open_url(self.config.renewal_url)
        elif verb == "open" and arg:
            self.open_url(arg)
        elif action == SHOW_DOCTOR:
            if not self.windows.running("notice", {"kind": "doctor"}):
                self._submit(self._show_doctor())
        elif action == SHOW_SUPPORT:
            self.open_window("notice", {"kind": "support"})
        elif action == SHOW_ABOUT:
            self.open_window("notice", {"kind": "about", "version": __version__})
        elif verb == "show" and arg in ("mycerts", "changepin"):
            self.open_window(arg)  # the change-PIN window asks which key when there are several
        else:
            log.warning("unknown tray action %r", action)

    def open_url(self, url: str) -> None:
        threading.Thread(target=self._open_url_fn, args=(url,), daemon=True).start()

    def open_window(
        self, name: str, request: dict[str, Any] | None = None, args: Sequence[str] = ()
    ) -> None:
        kind = (request or {}).get("kind")
        if name == "notice" and kind in DEFERRED_NOTICES and self._dialogs_recent():
            with self._deferred_lock:
                self._deferred.append((name, request, tuple(args)))
            log.info("notice %s waits for the dialogs to end", kind)
            return
        self._open_now(name, request, args)

    def _dialogs_recent(self) -> bool:
        idle_for = getattr(self._prompter, "idle_for", None)
        return idle_for is not None and idle_for() < NOTICE_QUIET_SECONDS

    def _flush_deferred(self) -> None:
        """Open the notices that waited, once no dialog has been open for a while."""
        if not self._deferred or self._dialogs_recent():
            return
        with self._deferred_lock:
            waiting, self._deferred = self._deferred, []
        for name, request, args in waiting:
            self._open_now(name, request, args)

    def _open_now(
        self, name: str, request: dict[str, Any] | None = None, args: Sequence[str] = ()
    ) -> None:
        try:
            self.windows.open(name, request, env=self._window_env, args=args)
        except OSError:
            log.exception("cannot open window %s", name)

    def _submit(self, coro: Any) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            coro.close()
            return
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        future.add_done_callback(_log_failure)

    async def _show_doctor(self) -> None:
        from helper.doctor import run_doctor

        assert self.tokens is not None  # the loop runs only after the tokens were loaded
        findings = await asyncio.to_thread(run_doctor, self.config, self.tokens)
        self.open_window("notice", {"kind": "doctor", "findings": [f.to_dict() for f in findings]})

    def _on_window_exit(self, window: Window, replies: list[dict[str, Any]], code: int) -> None:
        """A window closed (its watcher thread): act on the button it reported."""
        request = window.request or {}
        results = [r.get("result") for r in replies]
        if window.name == "changepin":
            if code == 0:  # the PIN was changed
                serial = window.args[1] if window.args[:1] == ("--token",) else None
                self._on_loop(self._pin_changed, serial)
            return
        if "renew" in results:
            self.open_url(self.config.renewal_url)
        elif "changepin" in results:
            serial = request.get("token_serial")
            self.open_window("changepin", args=("--token", serial) if serial else ())
        elif ("rerun" in results or "recheck" in results) and request.get("kind") == "doctor":
            self._submit(self._show_doctor())

    # --- control socket (on the loop) ---------------------------------------------------

    def _command(self, message: dict[str, Any]) -> Reply:
        cmd = message.get("cmd")
        if cmd == "ping":
            return {"ok": True, "app": "certhelper", "version": __version__, "pid": os.getpid()}
        if cmd == "state":
            return {
                "ok": True,
                "state": self.state.status.value,
                "tooltip": self.state.tooltip,
                "reasons": list(self.state.reasons),
            }
        if cmd == "show":
            window = message.get("window", "mycerts")
            if window not in WINDOWS:
                return {"ok": False, "error": "bad_window"}
            self.on_action(f"show:{window}")
            return {"ok": True}
        if cmd == "quit":
            self.request_stop()
            return {"ok": True}
        if cmd == "extension":  # the native host: the connection becomes a frame stream
            if self.bridge is None or self.bridge.extension is None:
                return {"ok": False, "error": "not_ready"}
            return Stream(functools.partial(self.bridge.extension.serve, message))
        if cmd == "pin_changed":  # a change-PIN window (any, for any key) succeeded
            serial = message.get("serial")
            if not isinstance(serial, str) or not serial or len(serial) > 64:
                return {"ok": False, "error": "bad_serial"}
            self._pin_changed(serial)
            return {"ok": True}
        return {"ok": False, "error": "unknown_command"}


def _exit_if_the_tray_hangs(left: threading.Event, grace: float) -> None:
    """Everything is stopped and closed; only the tray's event loop may still hold the
    process. pystray's Xorg backend can miss its own stop (seen without a tray host:
    the main thread stays in Xlib's next_event after SIGTERM), so when the tray has not
    left its loop (``left``) after ``grace`` seconds, the process leaves anyway."""

    def leave() -> None:
        if left.is_set():
            return
        log.warning("the tray did not stop within %.0f s: exiting", grace)
        logging.shutdown()
        os._exit(0)

    timer = threading.Timer(grace, leave)
    timer.daemon = True
    timer.start()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still pending (as asyncio.run does): e.g. the bridge's
    background jobs when it failed to listen after starting them."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def _log_failure(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("daemon task failed", exc_info=future.exception())


def run_daemon(
    config: Config,
    *,
    claim: Claim | None = None,
    tray_factory: TrayFactory = default_tray_factory,
    prompter: Any = None,
    service_factory: Callable[[Config], TokenService] | None = None,
    **options: Any,
) -> int:
    """Run the daemon until quit. ``claim``: the control endpoint already won
    (``certhelper run`` claims it before loading anything); without one it is
    claimed here, and another daemon already running is an error."""
    from helper.services import control

    if claim is None:
        got = control.claim()
        if isinstance(got, control.Running):
            raise DaemonUnavailable(detail="证书助手已在运行 (already running)")
        claim = got
    daemon = Daemon(
        config,
        claim,
        tray_factory=tray_factory,
        prompter=prompter,
        service_factory=service_factory,
        **options,
    )
    try:
        return daemon.run()
    finally:
        claim.close()
