"""End to end: headless Chromium renews a certificate at the demo CA through the real
bridge, then logs in to the demo hall with the renewed certificate.

The stack is test_browser_login's (bridge in-process over the session's SoftHSM driver
with its own TLS identity, trusted through an NSS db in a temporary HOME; a prompter
double answering the dialogs), plus the demo CA app signing with the renewal tests'
own CA (tests/renewal/spec.toml) and the renewal test token plugged in: its
certificate "renew_rsa" expires in 5 days. The bridge's configuration names the CA's
origin as a renewal CA and the renewal root as the renewal trust anchor.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest
from aiohttp import web
from cryptography import x509

from helper.config import Config
from helper.daemon.compose import RunningBridge, start_bridge
from helper.demo.ca import create_ca_app
from helper.demo.hall import create_hall_app
from helper.services.tls import ensure_identity, ssl_context
from helper.services.tokens import ModuleStatus
from helper.verify import new_challenge, verify_auth_token
from tests.support.browser import LoopThread, RenewalPrompter, trust_ca
from tests.support.cli import Cli
from tests.support.doubles import SharedTokens
from tests.support.renewal import PluggedToken, RenewalPki
from tests.support.tokens import USER_PIN, Fixtures

COMPANY = "沧州市续期测试有限公司"
UNIQUE_ID = "HB130900000000099"


@dataclass
class RenewalStack:
    ca_origin: str
    hall_origin: str
    bridge: RunningBridge
    home: Path
    state_dir: Path
    prompter: RenewalPrompter


def _bound() -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def renewal_stack(
    tmp_path: Path,
    driver: Any,
    renewal_pki: RenewalPki,
    renewal_token: PluggedToken,
) -> Iterator[RenewalStack]:
    loop = LoopThread()
    runners: list[web.AppRunner | RunningBridge] = []
    try:
        # the sites' sockets first: their origins go into the bridge's configuration
        ca_sock, ca_origin = _bound()
        hall_sock, hall_origin = _bound()
        state = tmp_path / "state"
        identity = ensure_identity(state / "tls", keyring_backend=keyring.backends.fail.Keyring())
        config = Config(origins=[hall_origin])
        config.renewal_ca_origins = [ca_origin]
        config.renewal_ca_roots = [str(renewal_pki.root_pem)]
        prompter = RenewalPrompter()
        tokens = SharedTokens([ModuleStatus(driver.module_path, "config", driver=driver)])
        bridge = loop.run(
            start_bridge(
                config,
                tokens=tokens,
                prompter=prompter,
                state_dir=state,
                ssl_ctx=ssl_context(identity),
                port=0,
            )
        )
        runners.append(bridge)
        helper_base = f"https://127.0.0.1:{bridge.port}"
        issuing = renewal_pki.issuing_cert()
        ca_app = create_ca_app(
            issuing,
            renewal_pki.issuing_key(),
            chain=[issuing],
            origin=ca_origin,
            helper_base=helper_base,
        )
        hall_app = create_hall_app(
            [renewal_pki.root_pem.read_bytes()],
            intermediates=[renewal_pki.issuing_pem.read_bytes()],
            origin=hall_origin,
            helper_base=helper_base,
        )

        async def serve(app: web.Application, sock: socket.socket) -> web.AppRunner:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            return runner

        runners.append(loop.run(serve(ca_app, ca_sock)))
        runners.append(loop.run(serve(hall_app, hall_sock)))
        home = tmp_path / "home"
        trust_ca(home, identity.paths.ca_cert)
        yield RenewalStack(ca_origin, hall_origin, bridge, home, state, prompter)
    finally:
        for r in reversed(runners):
            loop.run(r.stop() if isinstance(r, RunningBridge) else r.cleanup())
        loop.stop()
        driver.logout(renewal_token.serial)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("new_key", [False, True], ids=["same-key", "new-key"])
def test_renew_at_the_demo_ca_then_log_in(
    renewal_stack: RenewalStack,
    browser_page: Callable[[Path], Any],
    renewal_pki: RenewalPki,
    renewal_token: PluggedToken,
    fixtures: Fixtures,
    module_path: str,
    tmp_path: Path,
    new_key: bool,
) -> None:
    stack = renewal_stack
    old = renewal_pki.cert("renew_rsa")
    page = browser_page(stack.home)

    # 1. the CA's page lists the inserted certificates through renewal.status
    page.goto(f"{stack.ca_origin}/")
    assert page.title().startswith("老用户延期 - 河北CA 数字证书在线服务（演示）")
    page.wait_for_selector("#cert-table[data-loaded=true]", timeout=30_000)
    status = page.evaluate("() => CertHelper.renewal.status()")
    mine = next(c for c in status["certificates"] if c["sha256"] == old["sha256"])
    assert mine["in_window"] is True and mine["days_left"] in (4, 5)
    row = f"#cert-rows tr[data-sha256='{old['sha256']}']"
    assert page.text_content(f"{row} .subject") == COMPANY + "（签名）"  # 双证书: which one
    assert page.text_content(f"{row} .serial") == old["serial_hex"]
    assert page.text_content(f"{row} .days") == f"{mine['days_left']} 天"
    assert page.text_content(f"{row} .window-yes") == "是"
    # the session's other keys hold certificates of the fixture CA: not renewable here
    foreign = fixtures.cert("expiring")["sha256"]
    assert page.text_content(f"#cert-rows tr[data-sha256='{foreign}'] .action") == "非本CA签发"
    fresh = renewal_pki.cert("fresh")["sha256"]
    assert page.is_disabled(f"#cert-rows tr[data-sha256='{fresh}'] button.renew")
    page.screenshot(path=str(tmp_path / "ca-certificates.png"), full_page=True)

    # 2. 老用户延期 -> the order, the demo payment, 点此延长有效期
    page.click(f"{row} button.renew")
    page.wait_for_selector("#pay", state="visible")
    order_id = page.text_content("#order-id") or ""
    assert order_id.startswith("YQ") and page.text_content("#order-amount") == "100.00"
    page.screenshot(path=str(tmp_path / "ca-order.png"), full_page=True)
    page.click("#pay")
    page.wait_for_selector("#extend", state="visible")
    assert page.is_checked("#key-same")
    if new_key:
        page.check("#key-new")
    page.click("#extend")
    page.wait_for_url(f"**/orders/{order_id}", timeout=90_000)

    # 3. the receipt
    assert page.text_content("#receipt-order") == order_id
    assert page.text_content("#receipt-amount") == "100.00 元（演示，未实际扣款）"
    assert page.text_content("#receipt-subject") == COMPANY
    assert page.text_content("#receipt-key") == ("新密钥对" if new_key else "沿用原密钥")
    new_serial = page.text_content("#receipt-serial") or ""
    assert new_serial not in ("", "—", old["serial_hex"])
    expected_not_after = _utc(old["not_after"]) + timedelta(days=365)
    receipt_iso = page.get_attribute("#receipt-not-after", "data-iso") or ""
    assert _utc(receipt_iso) == expected_not_after
    page.screenshot(path=str(tmp_path / "ca-receipt.png"), full_page=True)

    # the helper asked: confirm the request, the PIN, confirm the write
    renewal_consents = [c.operation for c in stack.prompter.consents]
    assert renewal_consents == ["renewal.request", "renewal.install"]
    assert all(c.origin == stack.ca_origin for c in stack.prompter.consents)
    assert all(c.cert_subject == COMPANY for c in stack.prompter.consents)
    assert [(p.operation, p.origin) for p in stack.prompter.pins] == [
        ("renewal.request", stack.ca_origin)
    ]
    raw_audit = (stack.state_dir / "audit.jsonl").read_text("utf-8")
    assert USER_PIN not in raw_audit

    # 4. `certhelper list --json` (a child process on the same tokens) shows it
    cli_home = tmp_path / "cli-home"
    cli_home.mkdir()
    listing = Cli(fixtures, cli_home, module_path)("list", "--json")
    assert listing.returncode == 0, listing.stderr
    on_token = [
        c for c in listing.json()["certificates"] if c["token_serial"] == renewal_token.serial
    ]
    renewed = next(c for c in on_token if c.get("serial_hex") == new_serial)
    assert renewed["subject"]["cn"] == COMPANY and renewed["hebca_unique_id"] == UNIQUE_ID
    assert _utc(renewed["not_after"]) == expected_not_after
    assert renewed["has_private_key"] is True and not renewed.get("archived")
    assert renewed["issuer"]["cn"] == "续期测试二级证书 Renewal Test Issuing CA"
    old_key_id = old["key_id"]
    assert (renewed["key_id"] == old_key_id) is (not new_key)
    previous = [c for c in on_token if c.get("sha256") == old["sha256"]]
    assert all(c.get("archived") for c in previous)  # kept, archived, or gone

    # 5. the demo hall (trusting the renewal root) logs in with the renewed certificate
    stack.prompter.pick_serial = new_serial
    page.goto(f"{stack.hall_origin}/ish/")
    page.wait_for_function("() => window.CertHelper !== undefined", timeout=10_000)
    page.click("#ca-login")
    page.click("#ca-hebca")
    page.wait_for_url("**/ish/home", timeout=30_000)
    assert page.text_content("#company") == COMPANY
    assert page.text_content("#cert-serial") == new_serial
    assert page.text_content("#unique-id") == UNIQUE_ID
    page.screenshot(path=str(tmp_path / "hall-home.png"), full_page=True)
    origin, choices = stack.prompter.picks[-1]
    assert origin == stack.hall_origin
    assert old["serial_hex"] not in [c.serial_hex for c in choices]  # no longer offered

    # and a login token made in this browser verifies against the renewal root
    challenge = new_challenge()
    token = page.evaluate(
        "([c, s]) => CertHelper.authenticate(c, {certificate: s})",
        [challenge, renewed["sha256"]],
    )
    identity = verify_auth_token(
        token,
        challenge,
        stack.hall_origin,
        [renewal_pki.root_pem.read_bytes()],
        intermediates=[renewal_pki.issuing_pem.read_bytes()],
    )
    assert identity.serial_hex == new_serial and identity.hebca_unique_id == UNIQUE_ID
    cert = x509.load_der_x509_certificate(base64.b64decode(token["certificate"]))
    assert cert.not_valid_after_utc == expected_not_after
    print(f"screenshots in {tmp_path}")


def test_refused_write_shows_why_and_the_order_can_be_retried(
    renewal_stack: RenewalStack,
    browser_page: Callable[[Path], Any],
    renewal_pki: RenewalPki,
    tmp_path: Path,
) -> None:
    stack = renewal_stack
    stack.prompter.deny_installs = 1
    old = renewal_pki.cert("renew_rsa")
    page = browser_page(stack.home)
    page.goto(f"{stack.ca_origin}/")
    page.wait_for_selector("#cert-table[data-loaded=true]", timeout=30_000)
    page.click(f"#cert-rows tr[data-sha256='{old['sha256']}'] button.renew")
    page.click("#pay")
    page.click("#extend")
    page.wait_for_selector("#status.error", timeout=60_000)
    assert page.text_content("#status") == "用户拒绝了该网站的请求"
    assert page.get_attribute("#status", "data-code") == "consent_denied"
    page.screenshot(path=str(tmp_path / "ca-refused.png"), full_page=True)
    # nothing was written: the old certificate is still the one to renew
    status = page.evaluate("() => CertHelper.renewal.status()")
    assert old["sha256"] in [c["sha256"] for c in status["certificates"]]

    # the same paid order, again: a new request, a new certificate, this time written
    assert page.is_enabled("#extend")
    page.click("#extend")
    page.wait_for_url("**/orders/*", timeout=60_000)
    assert page.text_content("#receipt-status") == "办理完成"
    assert [c.operation for c in stack.prompter.consents] == [
        "renewal.request",
        "renewal.install",
        "renewal.request",
        "renewal.install",
    ]


def test_demo_ca_says_so_when_no_helper_runs(
    browser_page: Callable[[Path], Any],
    renewal_pki: RenewalPki,
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sock, origin = _bound()
    issuing = renewal_pki.issuing_cert()
    app = create_ca_app(
        issuing,
        renewal_pki.issuing_key(),
        chain=[issuing],
        origin=origin,
        helper_base=f"https://127.0.0.1:{closed_port}",
    )
    loop = LoopThread()

    async def serve() -> web.AppRunner:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        return runner

    runner = loop.run(serve())
    try:
        home = tmp_path / "home"
        home.mkdir()
        page = browser_page(home)
        page.goto(f"{origin}/")
        page.wait_for_selector("#status.error", timeout=15_000)
        assert page.text_content("#status") == (
            "未检测到证书助手，请确认已安装并启动证书助手 (certhelper)"
        )
    finally:
        loop.run(runner.cleanup())
        loop.stop()
