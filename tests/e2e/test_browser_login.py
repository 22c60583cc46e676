"""End to end: headless Chromium logs in to the demo hall through the real bridge.

The bridge runs in-process (its own event loop in a thread) over the session's
SoftHSM driver, with its per-install TLS identity; Chromium trusts that CA through an
NSS database in a temporary HOME (no --ignore-certificate-errors). A prompter double
stands in for the native dialogs. Needs Debian's chromium, certutil (libnss3-tools),
fonts-noto-cjk and the pip package playwright, which `make test` installs; a missing one
fails the tests (they are never skipped).
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from helper.demo.hall import create_hall_app
from tests.support.browser import COMPANY, LoopThread, PrompterDouble, Stack, company_cert_id
from tests.support.tokens import USER_PIN, Fixtures


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
    signed = page.evaluate("() => CertHelper.signText('缴存核定单 demo payload', {format: 'raw'})")
    assert len(prompter.pins) == 1 and prompter.consents[-1].text == "缴存核定单 demo payload"
    # a text that is not the data is refused before any dialog
    refused = page.evaluate(
        "() => CertHelper.signData(btoa('other bytes'), {text: '缴存核定单'})"
        ".then(() => 'signed', (e) => e.code)"
    )
    assert refused == "bad_params" and len(prompter.consents) == 1
    cert = x509.load_der_x509_certificate(base64.b64decode(signed["certificate"]))
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(
        base64.b64decode(signed["signature"]),
        "缴存核定单 demo payload".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
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
        assert (page.text_content("#status") or "").startswith(
            "未检测到证书助手，请确认已安装并启动证书助手 (certhelper)"
        )
        assert page.get_attribute("#status", "data-code") == "helper_unreachable"
        assert page.get_attribute("#status-action", "href") == "certhelper://start"
    finally:
        loop.run(runner.cleanup())
        loop.stop()
