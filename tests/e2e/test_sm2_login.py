"""End to end with an SM2 key (国密, the soft SKF library beside SoftHSM): headless
Chromium logs in to the demo hall through the native API (an SM2SM3 login token the
hall checks with helper.verify, SM2 chain included) and through the legacy page
(HEBCA SignText with SM3-with-SM2, checked by verify_legacy_signature)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.browser import (
    LegacyStack,
    PrompterDouble,
    Stack,
    open_legacy_page,
    skf_cert_id,
)
from tests.support.skf import GmKeys
from tests.support.tokens import USER_PIN

GM_COMPANY = "沧州市国密测试有限公司"


def _home(page: Any, gm_keys: GmKeys) -> None:
    page.wait_for_url("**/ish/home", timeout=30_000)
    page.wait_for_selector("#company")
    assert page.text_content("#company") == GM_COMPANY
    assert page.text_content("#unique-id") == "HB130900000000002"
    assert page.text_content("#cert-serial") == gm_keys.cert("gm2_sign")["serial_hex"]


def test_native_login_with_an_sm2_key(
    skf_driver: Any,  # first: set up before the stack, so closed after it
    gm_keys: GmKeys,
    start_stack: Callable[..., Stack],
    browser_page: Callable[[Path], Any],
    tmp_path: Path,
) -> None:
    prompter = PrompterDouble(skf_cert_id(gm_keys.serial("gm2"), GM_COMPANY))
    stack = start_stack(prompter, skf=skf_driver, sm2_chain=gm_keys.sm2_chain)
    page = browser_page(stack.home)
    page.goto(f"{stack.hall_origin}/ish/")
    page.wait_for_function("() => window.CertHelper !== undefined", timeout=10_000)
    page.click("#ca-login")
    page.wait_for_selector("#ca-hebca", state="visible")
    page.click("#ca-hebca")
    _home(page, gm_keys)
    page.screenshot(path=str(tmp_path / "sm2-home.png"), full_page=True)
    # the picker offered the SM2 signing certificate, never its encryption twin
    (_, choices), *_ = prompter.picks
    assert sum(c.subject_cn == GM_COMPANY for c in choices) == 1
    assert [p.token_label for p in prompter.pins] == ["河北CA测试国密Key2"]
    sha = gm_keys.cert("gm2_sign")["sha256"]
    assert any(
        e["operation"] == "auth.authenticate" and e["outcome"] == "ok" and e["certificate"] == sha
        for e in stack.audit()
    )


def test_legacy_login_with_an_sm2_key(
    skf_driver: Any,
    gm_keys: GmKeys,
    start_legacy_stack: Callable[..., LegacyStack],
    browser_page: Callable[[Path], Any],
    tmp_path: Path,
) -> None:
    prompter = PrompterDouble(skf_cert_id(gm_keys.serial("gm2"), GM_COMPANY))
    ls = start_legacy_stack(prompter, skf=skf_driver, sm2_chain=gm_keys.sm2_chain)
    page = browser_page(ls.stack.home)
    errors: list[str] = []
    options = open_legacy_page(page, ls, errors)
    mine = [o for o in options if o["cn"] == GM_COMPANY]
    assert len(mine) == 1, options  # the signing certificate only
    page.select_option("#cert-select", value=mine[0]["value"])
    page.fill("#cert-pin", USER_PIN)
    page.click("#legacy-login")
    _home(page, gm_keys)
    page.screenshot(path=str(tmp_path / "sm2-legacy-home.png"), full_page=True)
    sha = gm_keys.cert("gm2_sign")["sha256"]
    ops = [(e["operation"], e["outcome"], e.get("certificate")) for e in ls.stack.audit()]
    assert ("hebca:SignText", "ok", sha) in ops
    assert prompter.pins == [] and errors == []
