"""The hall page says why the helper is out of reach, and recovers by itself.

Headless Chromium on the demo hall, with the helper's ports fixed in advance so that
the helper (or a squatter) can come and go under the page:

- helper not running → 「未检测到证书助手」 with a certhelper://start link; the helper
  starts → the page logs in without a reload (native page and legacy page);
- helper running, its local CA not trusted by this browser → 「浏览器不信任它的本机证书」
  (the plain-http /v1/alive answers while the https ping cannot); the CA is trusted →
  the daemon's trust watcher issues a new leaf → the page logs in without a reload;
- another program holds the helper's plain port → 「端口被其他程序占用」; it goes away and
  the helper starts → the page logs in without a reload;
- the page is a plain-http page on a public address (Local Network Access) →
  「浏览器阻止了本网页连接证书助手」; docs/lna.md has what the policy changes.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest
from aiohttp import web
from playwright import sync_api

from helper.config import Config
from helper.daemon.compose import RunningBridge, start_bridge
from helper.daemon.trust import TrustWatch
from helper.demo.hall import create_hall_app, split_ca_certificates
from helper.services.tls import TlsIdentity, ensure_identity, ssl_context
from helper.services.tokens import ModuleStatus
from tests.support.browser import (
    ARGS,
    CHROMIUM,
    COMPANY,
    LoopThread,
    PrompterDouble,
    company_cert_id,
    trust_ca,
)
from tests.support.doubles import SharedTokens
from tests.support.tokens import USER_PIN, Fixtures

RECOVER_MS = 45_000  # whenReachable polls at most every 10 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Reach:
    """A hall on a free port, and the helper's two ports reserved for later."""

    loop: LoopThread
    driver: Any
    fixtures: Fixtures
    tmp: Path
    hall_port: int
    helper_port: int
    legacy_port: int
    identity: TlsIdentity
    hall_origin: str
    running: list[Any] = field(default_factory=list)
    bridge: RunningBridge | None = None

    def start_helper(self, prompter: PrompterDouble, *, watch_home: Path | None = None) -> None:
        config = Config(
            origins=[self.hall_origin], hebca_origins={self.hall_origin: {"page_pin": True}}
        )
        watch = None
        if watch_home is not None:
            db = watch_home / ".pki" / "nssdb"
            watch = TrustWatch(self.identity.paths.dir, lambda: [db], interval=0.5)
        tokens = SharedTokens([ModuleStatus(self.driver.module_path, "config", driver=self.driver)])
        self.bridge = self.loop.run(
            start_bridge(
                config,
                tokens=tokens,
                prompter=prompter,
                state_dir=self.tmp / "state",
                ssl_ctx=ssl_context(self.identity),
                port=self.helper_port,
                hebca_port=self.legacy_port,
                trust_watch=watch,
            )
        )
        self.running.append(self.bridge)

    def squat(self, port: int) -> web.AppRunner:
        """Another program on ``port``: answers every request with its own page."""

        async def other(_request: web.Request) -> web.Response:
            return web.Response(text="HEBCA Client 7.0", status=404)

        async def serve() -> web.AppRunner:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", other)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            return runner

        runner = self.loop.run(serve())
        self.running.append(runner)
        return runner

    def stop(self, what: Any) -> None:
        self.running.remove(what)
        self.loop.run(what.stop() if isinstance(what, RunningBridge) else what.cleanup())

    def home(self, *, trusted: bool) -> Path:
        home = self.tmp / ("home-trusted" if trusted else "home-untrusted")
        if trusted:
            trust_ca(home, self.identity.paths.ca_cert)
        else:
            db = home / ".pki" / "nssdb"
            db.mkdir(parents=True)
            subprocess.run(
                ["certutil", "-d", f"sql:{db}", "-N", "--empty-password"],
                check=True,
                capture_output=True,
            )
        return home


@pytest.fixture
def reach(tmp_path: Path, driver: Any, fixtures: Fixtures) -> Iterator[Reach]:
    loop = LoopThread()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    hall_port = sock.getsockname()[1]
    hall_origin = f"http://127.0.0.1:{hall_port}"
    identity = ensure_identity(
        tmp_path / "state" / "tls", keyring_backend=keyring.backends.fail.Keyring()
    )
    r = Reach(
        loop,
        driver,
        fixtures,
        tmp_path,
        hall_port,
        free_port(),
        free_port(),
        identity,
        hall_origin,
    )
    ca = fixtures.manifest["ca"]
    anchors, intermediates = split_ca_certificates(
        [Path(ca["root"]).read_bytes(), Path(ca["issuing"]).read_bytes()]
    )
    app = create_hall_app(
        anchors,
        intermediates=intermediates,
        origin=hall_origin,
        helper_base=f"https://127.0.0.1:{r.helper_port}",
        hebca_port=r.legacy_port,
    )

    async def serve() -> web.AppRunner:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        return runner

    r.running.append(loop.run(serve()))
    yield r
    for what in reversed(r.running):
        loop.run(what.stop() if isinstance(what, RunningBridge) else what.cleanup())
    loop.stop()
    driver.logout(fixtures.cert("company_sign")["token_serial"])


def click_login(page: Any, origin: str) -> None:
    page.goto(f"{origin}/ish/")
    page.wait_for_function("() => window.CertHelper !== undefined", timeout=10_000)
    page.click("#ca-login")
    page.click("#ca-hebca")


def wait_cause(page: Any, code: str) -> str:
    page.wait_for_selector(f"#status.error[data-code='{code}']", timeout=20_000)
    return page.text_content("#status") or ""


def logged_in(page: Any) -> None:
    page.wait_for_url("**/ish/home", timeout=RECOVER_MS)
    page.wait_for_selector("#company")
    assert page.text_content("#company") == COMPANY


def test_not_running_then_started(
    reach: Reach, browser_page: Callable[[Path], Any], tmp_path: Path
) -> None:
    prompter = PrompterDouble(company_cert_id(reach.fixtures))
    page = browser_page(reach.home(trusted=True))
    click_login(page, reach.hall_origin)
    text = wait_cause(page, "helper_unreachable")
    assert text.startswith("未检测到证书助手") and "无需刷新" in text
    assert page.get_attribute("#status-action", "href") == "certhelper://start"
    page.screenshot(path=str(tmp_path / "not-running.png"), full_page=True)
    loads = page.evaluate("performance.getEntriesByType('navigation').length")
    reach.start_helper(prompter)
    logged_in(page)  # the page's own poll found the helper and finished the login
    assert len(prompter.pins) == 1
    page.screenshot(path=str(tmp_path / "recovered.png"), full_page=True)
    assert loads == 1


def test_untrusted_certificate_then_trusted(
    reach: Reach, browser_page: Callable[[Path], Any], tmp_path: Path
) -> None:
    prompter = PrompterDouble(company_cert_id(reach.fixtures))
    home = reach.home(trusted=False)
    reach.start_helper(prompter, watch_home=home)
    page = browser_page(home)
    click_login(page, reach.hall_origin)
    text = wait_cause(page, "helper_untrusted")
    assert "浏览器不信任它的本机证书" in text and "检测修复" in text
    assert page.get_attribute("#status-action", "href") == "certhelper://doctor"
    page.screenshot(path=str(tmp_path / "untrusted.png"), full_page=True)
    # what `certhelper install` (or 检测修复's 修复) does, while the page stays open
    db = home / ".pki" / "nssdb"
    subprocess.run(
        ["certutil", "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "certhelper local CA",
         "-i", str(reach.identity.paths.ca_cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    logged_in(page)  # a new leaf (the trust watcher) made the cached failure go away
    assert len(prompter.pins) == 1


def test_port_taken_then_freed(
    reach: Reach, browser_page: Callable[[Path], Any], tmp_path: Path
) -> None:
    prompter = PrompterDouble(company_cert_id(reach.fixtures))
    squatter = reach.squat(reach.legacy_port)  # e.g. the original HEBCA helper
    page = browser_page(reach.home(trusted=True))
    click_login(page, reach.hall_origin)
    text = wait_cause(page, "port_taken")
    assert "端口被其他程序占用" in text
    page.screenshot(path=str(tmp_path / "port-taken.png"), full_page=True)
    reach.stop(squatter)
    reach.start_helper(prompter)
    logged_in(page)


def test_legacy_page_not_running_then_started(
    reach: Reach, browser_page: Callable[[Path], Any], tmp_path: Path
) -> None:
    prompter = PrompterDouble(company_cert_id(reach.fixtures))
    page = browser_page(reach.home(trusted=True))
    page.goto(f"{reach.hall_origin}/ish/legacy")
    text = wait_cause(page, "helper_unreachable")
    assert text.startswith("未检测到证书助手")
    reach.start_helper(prompter)
    # the certificate list fills by itself; then the usual login
    page.wait_for_selector("#cert-select:not([disabled])", timeout=RECOVER_MS)
    options = page.eval_on_selector_all(
        "#cert-select option", "os => os.map(o => ({value: o.value, cn: o.dataset.cn || ''}))"
    )
    mine = next(o for o in options if o["cn"] == COMPANY)
    page.select_option("#cert-select", value=mine["value"])
    page.fill("#cert-pin", USER_PIN)
    page.click("#legacy-login")
    logged_in(page)


def test_public_http_page_is_blocked_by_the_browser(reach: Reach, tmp_path: Path) -> None:
    """A plain-http page on a public address (the Cangzhou hall's situation) cannot reach
    loopback in Chromium >= 142 without the policy: the page says so and points to 检测修复."""
    prompter = PrompterDouble(company_cert_id(reach.fixtures))
    reach.start_helper(prompter)
    home = reach.home(trusted=True)
    args = [
        *ARGS,
        "--host-resolver-rules=MAP hall.test 127.0.0.1",
        f"--ip-address-space-overrides=127.0.0.1:{reach.hall_port}=public",
    ]
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args, env=env)
        try:
            page = browser.new_page()
            # the hall checks its own origin on login only; the page itself loads anywhere
            click_login(page, f"http://hall.test:{reach.hall_port}")
            assert page.evaluate("window.isSecureContext") is False
            text = wait_cause(page, "lna_blocked")
            assert "浏览器阻止了本网页连接证书助手" in text and "检测修复" in text
            assert page.get_attribute("#status-action", "href") == "certhelper://doctor"
            page.screenshot(path=str(tmp_path / "lna-blocked.png"), full_page=True)
        finally:
            browser.close()
    assert prompter.pins == []  # nothing reached the helper
