"""End to end: headless Chromium logs in to the demo hall through its legacy login page
(/ish/legacy), which speaks the HEBCA protocol to the bridge's HEBCA-compatible endpoint
(ws://localhost:<port>/test) with the hall's own small client (hebca-legacy-client.js).

The stack is test_browser_login's (bridge in-process over the session's SoftHSM driver,
prompter double, Chromium trusting the bridge's CA through NSS) plus the HEBCA endpoint on
a free port, with page_pin on for the hall's origin as docs/hebca-compat.md says for the
demo hall. The page learns the port from the hall (data-hebca-port).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.browser import (
    COMPANY,
    LegacyStack,
    PrompterDouble,
    company_cert_id,
    open_legacy_page,
)
from tests.support.tokens import USER_PIN, Fixtures

ERR_FAILED = -536145887  # 0xE00B1021, docs/hebca-compat.md


def choose_company(page: Any, options: list[dict[str, str]]) -> None:
    mine = [o for o in options if o["cn"] == COMPANY]
    assert len(mine) == 1, options
    page.select_option("#cert-select", value=mine[0]["value"])


def audit_ops(ls: LegacyStack) -> list[tuple[str, str, str | None]]:
    return [(e["operation"], e["outcome"], e.get("certificate")) for e in ls.stack.audit()]


def test_legacy_page_logs_in_with_the_pin_typed_in_the_page(
    start_legacy_stack: Callable[[PrompterDouble], LegacyStack],
    browser_page: Callable[[Path], Any],
    fixtures: Fixtures,
    driver: Any,
    tmp_path: Path,
) -> None:
    company = fixtures.cert("company_sign")
    prompter = PrompterDouble(company_cert_id(fixtures))
    ls = start_legacy_stack(prompter)
    page = browser_page(ls.stack.home)
    errors: list[str] = []

    # the modern login page links to the legacy one
    page.goto(f"{ls.hall_origin}/ish/")
    assert page.text_content("#legacy-link") == "旧版助手登录 (HEBCA 兼容接口)"
    page.screenshot(path=str(tmp_path / "login-with-legacy-link.png"), full_page=True)
    page.click("#legacy-link")
    page.wait_for_url("**/ish/legacy")

    options = open_legacy_page(page, ls, errors)
    # every sign certificate with a private key, each with its expiry date (CST)
    cns = [o["cn"] for o in options if o["value"] != ""]
    assert COMPANY in cns and "沧州市测试贸易有限公司" in cns
    assert "沧州市测试科技有限公司" in cns and cns.count(COMPANY) == 1  # not the crypt cert
    expired = next(o for o in options if o["cn"] == "沧州市已过期测试有限公司")
    assert expired["text"] == "沧州市已过期测试有限公司（已过期）"
    mine = next(o for o in options if o["cn"] == COMPANY)
    assert mine["text"] == COMPANY
    # GetSignCertNotAfter in China Standard Time, shown for the chosen certificate
    not_after = datetime.fromisoformat(company["not_after"].replace("Z", "+00:00"))
    cst = (not_after + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
    page.select_option("#cert-select", value=expired["value"])
    assert page.text_content("#cert-info").startswith("证书已过期：")
    assert "旧版接口不绑定网站地址，建议使用新版登录" in page.text_content("#legacy-warning")
    page.screenshot(path=str(tmp_path / "legacy.png"), full_page=True)

    choose_company(page, options)
    assert page.text_content("#cert-info") == f"证书有效期至：{cst}"
    # the PIN is masked but is no password field: Chrome offers to save only those
    assert page.eval_on_selector_all("input[type=password]", "els => els.length") == 0
    masked = page.eval_on_selector(
        "#cert-pin", "e => getComputedStyle(e).getPropertyValue('-webkit-text-security')"
    )
    assert masked == "disc" and page.get_attribute("#cert-pin", "autocomplete") == "off"
    page.fill("#cert-pin", USER_PIN)
    page.screenshot(path=str(tmp_path / "legacy-filled.png"), full_page=True)
    page.click("#legacy-login")
    page.wait_for_url("**/ish/home", timeout=30_000)
    page.wait_for_selector("#company")
    assert page.text_content("#company") == COMPANY
    assert page.text_content("#unique-id") == "HB130900000000001"
    assert page.text_content("#cert-serial") == company["serial_hex"]
    page.screenshot(path=str(tmp_path / "legacy-home.png"), full_page=True)

    # the PIN came from the page: no dialog; the login's own signature needs no consent
    assert prompter.pins == [] and prompter.consents == [] and prompter.picks == []
    ops = audit_ops(ls)
    for op in ("hebca:GetSignCertCount", "hebca:Login", "hebca:SignText", "hebca:GetCertB64"):
        assert (op, "ok") in [(o, r) for o, r, _ in ops], ops
    assert ("hebca:SignText", "ok", company["sha256"]) in ops
    raw = (ls.stack.state_dir / "audit.jsonl").read_text("utf-8")
    assert USER_PIN not in raw and '"pin"' not in raw.lower()

    # 退出: the hall's logout ends the key's login too (one login session per origin and
    # token, shared by the native API and the HEBCA endpoint)
    page.click("#logout")
    page.wait_for_url("**/ish/", timeout=10_000)
    assert not driver.is_logged_in(company["token_serial"])
    assert errors == []


def test_legacy_page_logs_in_with_the_helpers_pin_dialog(
    start_legacy_stack: Callable[[PrompterDouble], LegacyStack],
    browser_page: Callable[[Path], Any],
    fixtures: Fixtures,
    tmp_path: Path,
) -> None:
    prompter = PrompterDouble(company_cert_id(fixtures))
    ls = start_legacy_stack(prompter)
    page = browser_page(ls.stack.home)
    errors: list[str] = []
    choose_company(page, open_legacy_page(page, ls, errors))
    page.click("#legacy-uilogin")  # no PIN typed in the page
    page.wait_for_url("**/ish/home", timeout=30_000)
    assert page.text_content("#company") == COMPANY
    page.screenshot(path=str(tmp_path / "legacy-uilogin-home.png"), full_page=True)

    assert len(prompter.pins) == 1
    asked = prompter.pins[0]
    assert asked.origin == ls.hall_origin and asked.cert_subject == COMPANY
    assert asked.insecure_origin is True
    assert prompter.consents == [] and prompter.picks == []
    ops = audit_ops(ls)
    assert ("hebca:UILogin", "ok") in [(o, r) for o, r, _ in ops], ops
    assert "hebca:Login" not in [o for o, _, _ in ops]
    assert errors == []


def test_legacy_page_shows_the_helpers_errors_in_chinese(
    start_legacy_stack: Callable[[PrompterDouble], LegacyStack],
    browser_page: Callable[[Path], Any],
    fixtures: Fixtures,
    tmp_path: Path,
) -> None:
    prompter = PrompterDouble(company_cert_id(fixtures), cancel_pin=True)
    ls = start_legacy_stack(prompter)
    page = browser_page(ls.stack.home)
    errors: list[str] = []
    options = open_legacy_page(page, ls, errors)

    page.click("#legacy-login")  # nothing chosen yet (several certificates)
    assert page.text_content("#status.error") == "请选择证书"
    choose_company(page, options)
    page.click("#legacy-login")  # no PIN
    assert page.text_content("#status.error") == "请输入证书密码"

    page.click("#legacy-uilogin")  # the dialog is cancelled
    page.wait_for_selector("#status.error[data-ret]", timeout=30_000)
    assert page.get_attribute("#status", "data-ret") == str(ERR_FAILED)
    text = page.text_content("#status")
    assert "取消" in text and "&" not in text and "<" not in text, text
    page.screenshot(path=str(tmp_path / "legacy-cancelled.png"), full_page=True)
    assert page.url.endswith("/ish/legacy") and len(prompter.pins) == 1
    assert page.is_enabled("#legacy-login") and page.is_enabled("#legacy-uilogin")

    # the endpoint goes away: the page says so in Chinese
    ls.stack.stop_bridge()
    page.click("#cert-refresh")
    page.wait_for_selector("#status.error[data-code='helper_unreachable']", timeout=15_000)
    assert (page.text_content("#status") or "").startswith(
        "未检测到证书助手，请确认已安装并启动证书助手 (certhelper)"
    )
    assert page.get_attribute("#status-action", "href") == "certhelper://start"
    assert errors == []
