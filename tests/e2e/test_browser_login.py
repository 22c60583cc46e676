"""End to end: headless Chromium logs in to the demo hall through the real bridge.

The bridge runs in-process (its own event loop in a thread) over the session's
SoftHSM driver, with its per-install TLS identity; Chromium trusts that CA through an
NSS database in a temporary HOME (no --ignore-certificate-errors). A prompter double
stands in for the native dialogs. Needs Debian's chromium, certutil (libnss3-tools),
fonts-noto-cjk and the pip package playwright, which `make test` installs; a missing one
fails the tests (they are never skipped).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import keyring.backends.fail
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from playwright import sync_api

from drivers.types import Pin
from helper.config import Config
from helper.daemon.compose import RunningBridge, start_bridge
from helper.demo.hall import create_hall_app
from helper.errors import UserCancelled
from helper.services.prompts import CertChoice, ConsentChoice, ConsentRequest, PinRequest
from helper.services.tls import ensure_identity, ssl_context
from helper.services.tokens import ModuleStatus, TokenService
from tests.conftest import USER_PIN, Fixtures

CHROMIUM = "/usr/bin/chromium"
COMPANY = "沧州市测试科技有限公司"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(autouse=True, scope="module")
def _browser_tools() -> None:
    missing = [
        n
        for n, ok in (
            ("chromium", Path(CHROMIUM).exists()),
            ("certutil (libnss3-tools)", shutil.which("certutil") is not None),
        )
        if not ok
    ]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run `make test`, which installs them")


T = TypeVar("T")


class LoopThread:
    """An event loop in a daemon thread, for the bridge and the hall."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class SharedTokens(TokenService):
    """Wraps the session's driver; the session fixture closes it, not the bridge."""

    def close(self) -> None:
        pass


class PrompterDouble:
    """Answers the bridge's dialogs: PIN 123456 (or cancel), consent once, the company
    certificate in the picker. Records every question."""

    def __init__(self, cert_id: str, *, cancel_pin: bool = False) -> None:
        self.cert_id = cert_id
        self.cancel_pin = cancel_pin
        self.pins: list[PinRequest] = []
        self.consents: list[ConsentRequest] = []
        self.picks: list[tuple[str, list[CertChoice]]] = []

    async def ask_pin(self, request: PinRequest) -> Pin:
        self.pins.append(request)
        if self.cancel_pin:
            raise UserCancelled()
        return Pin(USER_PIN)

    async def ask_consent(self, request: ConsentRequest) -> ConsentChoice:
        self.consents.append(request)
        return ConsentChoice.ONCE

    async def pick_certificate(
        self, origin: str, insecure_origin: bool, choices: list[CertChoice]
    ) -> str:
        self.picks.append((origin, choices))
        assert any(c.id == self.cert_id for c in choices)
        return self.cert_id


@dataclass
class Stack:
    hall_origin: str
    bridge: RunningBridge
    state_dir: Path
    home: Path
    prompter: PrompterDouble
    loop: LoopThread
    running: list[web.AppRunner | RunningBridge]

    def stop_bridge(self) -> None:
        self.running.remove(self.bridge)
        self.loop.run(self.bridge.stop())

    def audit(self) -> list[dict[str, Any]]:
        text = (self.state_dir / "audit.jsonl").read_text("utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def trust_ca(home: Path, ca_pem: Path) -> None:
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    certutil = ["certutil", "-d", f"sql:{db}"]
    subprocess.run([*certutil, "-N", "--empty-password"], check=True, capture_output=True)
    subprocess.run(
        [*certutil, "-A", "-t", "C,,", "-n", "certhelper local CA", "-i", str(ca_pem)],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def start_stack(
    tmp_path: Path, driver: Any, fixtures: Fixtures
) -> Iterator[Callable[[PrompterDouble], Stack]]:
    loop = LoopThread()
    runners: list[web.AppRunner | RunningBridge] = []
    serial = fixtures.cert("company_sign")["token_serial"]

    def start(prompter: PrompterDouble) -> Stack:
        # the hall's socket first: its origin goes into the bridge's configuration
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        hall_origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
        state = tmp_path / "state"
        # a keyring that is never there: the test's TLS keys stay out of the user's keyring
        identity = ensure_identity(state / "tls", keyring_backend=keyring.backends.fail.Keyring())
        tokens = SharedTokens([ModuleStatus(driver.module_path, "config", driver=driver)])
        bridge = loop.run(
            start_bridge(
                Config(origins=[hall_origin]),
                tokens=tokens,
                prompter=prompter,
                state_dir=state,
                ssl_ctx=ssl_context(identity),
                port=0,
            )
        )
        runners.append(bridge)
        ca = fixtures.manifest["ca"]
        app = create_hall_app(
            [Path(ca["root"]).read_bytes()],
            intermediates=[Path(ca["issuing"]).read_bytes()],
            origin=hall_origin,
            helper_base=f"https://127.0.0.1:{bridge.port}",
        )

        async def serve() -> web.AppRunner:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            return runner

        runners.append(loop.run(serve()))
        home = tmp_path / "home"
        trust_ca(home, identity.paths.ca_cert)
        return Stack(hall_origin, bridge, state, home, prompter, loop, runners)

    yield start
    for r in reversed(runners):
        loop.run(r.stop() if isinstance(r, RunningBridge) else r.cleanup())
    loop.stop()
    driver.logout(serial)


def company_cert_id(fixtures: Fixtures) -> str:
    c = fixtures.cert("company_sign")
    return f"{c['token_serial']}:{c['key_id']}"


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Callable[[Path], Any]]:
    """A function HOME -> a new Chromium page (Chinese locale), closed after the test."""
    pw = sync_api.sync_playwright().start()
    browsers: list[Any] = []
    console: list[str] = []

    def open_page(home: Path) -> Any:
        env = {
            "HOME": str(home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
        }
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS, env=env)
        browsers.append(browser)
        context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        return page

    yield open_page
    for b in browsers:
        b.close()
    pw.stop()
    if console:
        print("browser console:\n" + "\n".join(console))


def test_browser_logs_in_with_the_usb_key(
    start_stack: Callable[[PrompterDouble], Stack],
    browser_page: Callable[[Path], Any],
    fixtures: Fixtures,
    driver: Any,
    tmp_path: Path,
) -> None:
    prompter = PrompterDouble(company_cert_id(fixtures))
    stack = start_stack(prompter)
    page = browser_page(stack.home)

    page.goto(f"{stack.hall_origin}/ish/")
    page.wait_for_function("() => window.CertHelper !== undefined", timeout=10_000)
    assert page.title().startswith("单位登录")
    page.screenshot(path=str(tmp_path / "login.png"), full_page=True)

    page.click("#ca-login")
    page.wait_for_selector("#ca-hebca", state="visible")
    page.screenshot(path=str(tmp_path / "login-choice.png"), full_page=True)
    page.click("#ca-hebca")
    page.wait_for_url("**/ish/home", timeout=30_000)
    page.wait_for_selector("#company")
    assert page.text_content("#company") == COMPANY
    assert page.text_content("#unique-id") == "HB130900000000001"
    assert page.text_content("#cert-serial") == fixtures.cert("company_sign")["serial_hex"]
    page.screenshot(path=str(tmp_path / "home.png"), full_page=True)

    # the helper asked once, with the hall's origin, marked not secure (plain http)
    assert len(prompter.pins) == 1
    pin_request = prompter.pins[0]
    assert pin_request.origin == stack.hall_origin
    assert pin_request.operation == "auth.authenticate"
    assert pin_request.insecure_origin is True
    assert pin_request.cert_subject == COMPANY
    assert [origin for origin, _ in prompter.picks] == [stack.hall_origin]
    assert prompter.consents == []  # a configured origin needs no consent to log in

    sha256 = fixtures.cert("company_sign")["sha256"]
    entries = stack.audit()
    assert any(
        e["operation"] == "auth.authenticate"
        and e["outcome"] == "ok"
        and e["origin"] == stack.hall_origin
        and e["certificate"] == sha256
        for e in entries
    ), entries
    raw = (stack.state_dir / "audit.jsonl").read_text("utf-8")
    assert USER_PIN not in raw and '"pin"' not in raw.lower()

    # a business page, then 退出: the hall session ends and so does the key's login
    page.click("#menu-ygxx")
    page.wait_for_url("**/ish/ygxx")
    assert "演示数据" in page.text_content("main")
    page.screenshot(path=str(tmp_path / "employees.png"), full_page=True)
    page.click("#logout")
    page.wait_for_url("**/ish/", timeout=10_000)
    assert not driver.is_logged_in(fixtures.cert("company_sign")["token_serial"])
    assert any(e["operation"] == "auth.logout" and e["outcome"] == "ok" for e in stack.audit())
    page.goto(f"{stack.hall_origin}/ish/home")
    assert page.url.endswith("/ish/")
    print(f"screenshots in {tmp_path}")


def test_cancelled_pin_dialog_shows_chinese_message(
    start_stack: Callable[[PrompterDouble], Stack],
    browser_page: Callable[[Path], Any],
    fixtures: Fixtures,
    tmp_path: Path,
) -> None:
    prompter = PrompterDouble(company_cert_id(fixtures), cancel_pin=True)
    stack = start_stack(prompter)
    page = browser_page(stack.home)

    page.goto(f"{stack.hall_origin}/ish/")
    page.wait_for_function("() => window.CertHelper !== undefined", timeout=10_000)
    page.click("#ca-login")
    page.click("#ca-hebca")
    page.wait_for_selector("#status.error", timeout=30_000)
    assert page.text_content("#status") == "用户取消了操作"
    assert page.get_attribute("#status", "data-code") == "user_cancelled"
    assert page.url.endswith("/ish/")
    page.screenshot(path=str(tmp_path / "cancelled.png"), full_page=True)
    assert len(prompter.pins) == 1
    assert any(
        e["operation"] == "auth.authenticate" and e["outcome"] == "user_cancelled"
        for e in stack.audit()
    )
    # the page may try again at once: the button is usable and the helper still answers
    assert page.is_enabled("#ca-hebca")


def test_certhelper_js_api_in_the_browser(
    start_stack: Callable[[PrompterDouble], Stack],
    browser_page: Callable[[Path], Any],
    fixtures: Fixtures,
) -> None:
    company = fixtures.cert("company_sign")
    prompter = PrompterDouble(company_cert_id(fixtures))
    stack = start_stack(prompter)
    page = browser_page(stack.home)
    page.goto(f"{stack.hall_origin}/ish/")
    page.wait_for_function("() => window.CertHelper !== undefined", timeout=10_000)
    # what a rejected promise looks like from the page
    page.evaluate(
        """() => { window.outcome = (p) => p.then(
               (r) => ({ok: true, result: r}),
               (e) => ({ok: false, code: e.code, message: e.message, isError: e instanceof Error}));
               window.closes = 0; CertHelper.on("close", () => { window.closes += 1; }); }"""
    )

    info = page.evaluate("() => CertHelper.ping()")
    assert info["app"] == "certhelper" and info["protocol"] == 1 and info["allowed"] is True

    certs = page.evaluate("() => CertHelper.listCertificates()")
    mine = next(c for c in certs if c["sha256"] == company["sha256"])
    assert mine["subject"]["cn"] == COMPANY and mine["der"]

    # a PIN never leaves the page
    got = page.evaluate("() => outcome(CertHelper.authenticate('x'.repeat(43), {pin: '123456'}))")
    assert got == {
        "ok": False,
        "code": "pin_not_accepted",
        "message": "网页不能传递密码，请在证书助手的窗口中输入密码",
        "isError": True,
    }
    # no certificate matches the thumbprint asked for
    challenge_js = "(await (await fetch('/ish/api/challenge')).json()).challenge"
    got = page.evaluate(
        f"async () => outcome(CertHelper.authenticate({challenge_js}, "
        "{certificate: '00'.repeat(16)}))"
    )
    assert (got["code"], got["message"]) == ("no_certificate", "没有可用的证书，请插入 USB Key")
    got = page.evaluate("() => outcome(CertHelper.authenticate('too-short'))")
    assert got["code"] == "bad_params" and got["message"] == "请求参数无效"
    assert prompter.pins == []

    # named certificate: no picker; then data signing inside the login session: no PIN
    token = page.evaluate(
        f"async () => CertHelper.authenticate({challenge_js}, "
        f"{{certificate: '{company['sha256']}'}})"
    )
    assert token["origin"] == stack.hall_origin and token["algorithm"] == "RS256"
    assert prompter.picks == [] and len(prompter.pins) == 1
    signed = page.evaluate(
        "() => CertHelper.signData(btoa('demo payload'), {format: 'raw', text: '缴存核定单'})"
    )
    assert len(prompter.pins) == 1 and prompter.consents[-1].text == "缴存核定单"
    cert = x509.load_der_x509_certificate(base64.b64decode(signed["certificate"]))
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(
        base64.b64decode(signed["signature"]), b"demo payload", padding.PKCS1v15(), hashes.SHA256()
    )
    assert page.evaluate("() => CertHelper.logout()") == {"logged_out": True}

    # close, then the next call reconnects on its own
    page.evaluate("() => CertHelper.close()")
    assert page.evaluate("() => window.closes") == 1
    assert len(page.evaluate("() => CertHelper.listCertificates()")) == len(certs)

    # the helper goes away: the page learns it in Chinese
    stack.stop_bridge()
    page.wait_for_function("() => window.closes === 2", timeout=10_000)
    got = page.evaluate("() => outcome(CertHelper.listCertificates())")
    assert got["code"] == "helper_unreachable"
    assert got["message"] == "未检测到证书助手，请确认已安装并启动证书助手 (certhelper)"


def test_hall_says_so_when_no_helper_runs(
    browser_page: Callable[[Path], Any], fixtures: Fixtures, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    ca = fixtures.manifest["ca"]
    app = create_hall_app(
        [Path(ca["root"]).read_bytes()],
        origin="http://127.0.0.1",
        helper_base=f"https://127.0.0.1:{closed_port}",
    )
    loop = LoopThread()

    async def serve() -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    runner, port = loop.run(serve())
    try:
        home = tmp_path / "home"
        home.mkdir()
        page = browser_page(home)
        page.goto(f"http://127.0.0.1:{port}/ish/")
        page.click("#ca-login")
        page.click("#ca-hebca")
        page.wait_for_selector("#status.error", timeout=10_000)
        assert page.text_content("#status") == (
            "未检测到证书助手，请确认已安装并启动证书助手 (certhelper)"
        )
    finally:
        loop.run(runner.cleanup())
        loop.stop()
