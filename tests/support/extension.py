"""A browser with the certhelper extension, a demo hall on a *public* address and a
real bridge reachable only through the extension (issue 15).

Debian's Chromium, headless, persistent context with the unpacked extension; the
hall served as ``http://hall.test:PORT`` (``--host-resolver-rules``) with
``--ip-address-space-overrides=127.0.0.1:PORT=public``; no LNA policy; the local CA
not trusted. The native host is the real ``certhelper native-host`` subprocess that
Chromium starts from the host manifest in the profile (with ``--user-data-dir``
Chromium looks in ``<user-data-dir>/NativeMessagingHosts``, not ``~/.config``); it
reaches a real bridge's extension transport behind a real control listener.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keyring.backends.fail
from aiohttp import web
from playwright import sync_api

from helper.config import Config
from helper.daemon.compose import RunningBridge, start_bridge
from helper.demo.hall import create_hall_app, split_ca_certificates
from helper.services import control
from helper.services.prompts import Prompter
from helper.services.tls import ensure_identity, ssl_context
from helper.services.tokens import ModuleStatus
from tests.support.browser import ARGS, CHROMIUM, LoopThread
from tests.support.doubles import SharedTokens
from tests.support.procs import alive
from tests.support.tokens import Fixtures

ROOT = Path(__file__).resolve().parents[2]
EXT = ROOT / "extension"
EXT_ID = (EXT / "EXTENSION_ID").read_text().strip()
#: names the manifest's content scripts match (hall.test) and one they do not
HOSTS = "MAP hall.test 127.0.0.1,MAP other.test 127.0.0.1"


def host_manifest(home: Path, runtime: Path, profile: Path) -> None:
    """The host manifest and a launcher for the real ``certhelper native-host``."""
    launcher = home / "certhelper-native-host"
    launcher.write_text(
        "#!/bin/sh\n"
        f"export XDG_RUNTIME_DIR='{runtime}' PYTHONPATH='{ROOT}'\n"
        f"exec '{sys.executable}' -c 'from helper.cli.main import main; "
        f"raise SystemExit(main())' native-host \"$@\" 2>>'{home}/host.log'\n"
    )
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    d = profile / "NativeMessagingHosts"
    d.mkdir(parents=True)
    (d / "org.certhelper.host.json").write_text(
        json.dumps(
            {
                "name": "org.certhelper.host",
                "description": "certhelper",
                "path": str(launcher),
                "type": "stdio",
                "allowed_origins": [f"chrome-extension://{EXT_ID}/"],
            }
        )
    )


def _hosts_of(home: Path) -> list[int]:
    """The native hosts running for this rig (their HOME is the rig's)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (b"native-host" in cmd or b"extension.host" in cmd) and (
            b"HOME=" + str(home).encode() in env
        ):
            found.append(int(proc.name))
    return found


def wait_hosts(home: Path, timeout: float = 15) -> None:
    """Every native host the browser started has exited (before the control listener
    closes: a host still reading its last ``open`` would otherwise find no daemon and
    start a real ``certhelper run`` on the default ports)."""
    end = time.monotonic() + timeout
    for pid in _hosts_of(home):
        while alive(pid):
            if time.monotonic() > end:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"native host {pid} did not exit")
            time.sleep(0.05)


def install_for_real(home: Path, origin: str, ext_dir: Path, browser: str = "chromium") -> Path:
    """What a user's machine has after `certhelper install` and `certhelper extension
    build`: the installer's own launcher and host manifests under this HOME, and the
    extension generated for the configured hall. Returns Chromium's user data dir
    (``$XDG_CONFIG_HOME/chromium``, where the installer put the host manifest)."""
    from helper.webext.build import build_extension
    from helper.webext.host import native_host_spec
    from installer import native_host
    from installer.manifest import Manifest

    saved = {k: os.environ.get(k) for k in ("HOME", "XDG_CONFIG_HOME")}
    os.environ.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    try:
        native_host.install(
            native_host_spec(), home / "data" / "certhelper-native-host", Manifest()
        )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    build_extension(EXT, ext_dir, [origin], browser)
    return home / ".config" / "chromium"


@dataclass
class ExtensionRig:
    tmp: Path
    origin: str
    port: int
    bridge: RunningBridge
    context: Any
    home: Path
    loop: LoopThread

    @property
    def state_dir(self) -> Path:
        return self.tmp / "state"

    def audit(self) -> list[tuple[str, str, str]]:
        path = self.state_dir / "audit.jsonl"
        if not path.exists():
            return []
        entries = [json.loads(x) for x in path.read_text("utf-8").splitlines()]
        return [(e["origin"], e["operation"], e["outcome"]) for e in entries]

    def page(self) -> Any:
        page = self.context.new_page()
        errors: list[str] = []
        # the handler must not hold the page: a page in a reference cycle is freed by
        # the cyclic GC in whatever thread runs it, and Playwright's sync objects
        # (greenlets) abort the process when freed outside their own thread
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        return page

    def host_log(self) -> str:
        log = self.home / "host.log"
        return log.read_text() if log.exists() else "(no host log)"


@contextlib.contextmanager
def extension_rig(
    tmp: Path,
    driver: Any,
    fixtures: Fixtures,
    prompter: Prompter,
    *,
    hebca_port: int | None = None,
    register_host: bool = True,
    extra_origins: tuple[str, ...] = (),
    installed: bool = False,
) -> Iterator[ExtensionRig]:
    """Everything up for the ``with`` block. ``installed``: the host registered by the
    installer's own code and the extension built for the hall by ``certhelper extension
    build`` (else a hand-written host manifest and extension/ as it is in the source).
    ``hebca_port=0`` also
    serves the HEBCA WebSocket endpoint on a free port (the control test's direct path)."""
    with contextlib.ExitStack() as stack:
        yield _start(
            stack,
            tmp,
            driver,
            fixtures,
            prompter,
            hebca_port,
            register_host,
            extra_origins,
            installed,
        )


@dataclass
class Hall:
    """The bridge behind its control listener, and the demo hall at ``origin``."""

    loop: LoopThread
    bridge: RunningBridge
    origin: str
    port: int
    runtime: Path
    home: Path


def serve_hall(
    stack: contextlib.ExitStack,
    tmp: Path,
    driver: Any,
    fixtures: Fixtures,
    prompter: Prompter,
    *,
    host: str = "hall.test",
    hebca_port: int | None = None,
    extra_origins: tuple[str, ...] = (),
    routes: list[web.RouteDef] | None = None,
) -> Hall:
    """Everything but the browser (cleaned up by ``stack``); ``routes``: more pages on
    the hall's origin."""
    stack.callback(gc.collect)  # last: whatever cycles the browser left, freed in this thread
    # the driver is the session's: leave its token logged out for the tests after this one
    stack.callback(driver.logout, fixtures.cert("company_sign")["token_serial"])
    loop = LoopThread()
    stack.callback(loop.stop)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    origin = f"http://{host}:{port}"
    identity = ensure_identity(
        tmp / "state" / "tls", keyring_backend=keyring.backends.fail.Keyring()
    )
    origins = [origin, *extra_origins]
    config = Config(origins=origins, hebca_origins={o: {"page_pin": True} for o in origins})
    tokens = SharedTokens([ModuleStatus(driver.module_path, "config", driver=driver)])
    bridge = loop.run(
        start_bridge(
            config,
            tokens=tokens,
            prompter=prompter,
            state_dir=tmp / "state",
            ssl_ctx=ssl_context(identity),
            port=0,
            hebca_port=hebca_port,
        )
    )
    stack.callback(lambda: loop.run(bridge.stop()))
    runtime = tmp / "rt"
    runtime.mkdir(mode=0o700)
    claim = control.claim(runtime / "certhelper")
    assert isinstance(claim, control.Claim)
    stack.callback(claim.close)

    def command(message: dict[str, Any]) -> control.Reply:
        assert bridge.extension is not None
        if message.get("cmd") == "extension":
            return control.Stream(functools.partial(bridge.extension.serve, message))
        return {"ok": False, "error": "unknown_command"}

    loop.run(claim.serve(command))
    ca = fixtures.manifest["ca"]
    anchors, intermediates = split_ca_certificates(
        [Path(ca["root"]).read_bytes(), Path(ca["issuing"]).read_bytes()]
    )
    hall = create_hall_app(
        anchors,
        intermediates=intermediates,
        origin=origin,
        helper_base="https://127.0.0.1:17213",
        hebca_port=17212,
    )
    hall.add_routes(routes or [])

    async def serve() -> web.AppRunner:
        runner = web.AppRunner(hall, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        return runner

    hall_runner = loop.run(serve())
    stack.callback(lambda: loop.run(hall_runner.cleanup()))
    home = tmp / "home"
    home.mkdir()
    return Hall(loop, bridge, origin, port, runtime, home)


def _start(
    stack: contextlib.ExitStack,
    tmp: Path,
    driver: Any,
    fixtures: Fixtures,
    prompter: Prompter,
    hebca_port: int | None,
    register_host: bool,
    extra_origins: tuple[str, ...],
    installed: bool,
) -> ExtensionRig:
    hall = serve_hall(
        stack, tmp, driver, fixtures, prompter, hebca_port=hebca_port, extra_origins=extra_origins
    )
    loop, bridge, origin, port = hall.loop, hall.bridge, hall.origin, hall.port
    runtime, home = hall.runtime, hall.home
    profile, ext = tmp / "profile", EXT
    if installed:
        ext = tmp / "built-extension"
        profile = install_for_real(home, origin, ext)
    elif register_host:
        host_manifest(home, runtime, profile)
    stack.callback(wait_hosts, home)
    pw = sync_api.sync_playwright().start()
    stack.callback(pw.stop)
    context = pw.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        locale="zh-CN",
        env={
            "HOME": str(home),
            "PATH": "/usr/bin:/bin",
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_RUNTIME_DIR": str(runtime),  # where the installed host finds the daemon
        },
        args=[
            *ARGS,
            f"--disable-extensions-except={ext}",
            f"--load-extension={ext}",
            f"--host-resolver-rules={HOSTS}",
            f"--ip-address-space-overrides=127.0.0.1:{port}=public",
        ],
    )
    stack.callback(context.close)
    return ExtensionRig(tmp, origin, port, bridge, context, home, loop)
