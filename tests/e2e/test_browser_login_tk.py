"""The same browser login, with the helper's real Tk PIN dialog on an Xvfb screen,
typed with xdotool like a person would (the picker is answered by the double so the
test does not depend on the order of certificates)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.types import Pin
from helper.services.prompts import CertChoice, ConsentChoice, ConsentRequest, PinRequest
from tests.support.browser import COMPANY, PrompterDouble, Stack, company_cert_id
from tests.support.tokens import USER_PIN, Fixtures


class TkPinPrompter(PrompterDouble):
    """Real PIN dialog (helper.ui.prompter.TkPrompter); the rest from the double."""

    def __init__(self, cert_id: str, tk: Any) -> None:
        super().__init__(cert_id)
        self.tk = tk

    async def ask_pin(self, request: PinRequest) -> Pin:
        self.pins.append(request)
        return await self.tk.ask_pin(request)

    async def ask_consent(self, request: ConsentRequest) -> ConsentChoice:
        return await super().ask_consent(request)

    async def pick_certificate(self, origin: str, insecure: bool, choices: list[CertChoice]):
        return await super().pick_certificate(origin, insecure, choices)


def test_browser_login_with_the_real_pin_dialog(
    start_stack: Callable[[PrompterDouble], Stack],
    browser_page: Callable[[Path], Any],
    fixtures: Fixtures,
    desk: Any,
) -> None:
    prompter = TkPinPrompter(company_cert_id(fixtures), desk.prompter(timeout=60))
    stack = start_stack(prompter)
    page = browser_page(stack.home)
    page.goto(f"{stack.hall_origin}/ish/")
    page.wait_for_function("() => window.CertHelper !== undefined", timeout=10_000)
    page.click("#ca-login")
    page.wait_for_selector("#ca-hebca", state="visible")
    page.click("#ca-hebca")

    desk.wait_window(timeout=30)  # the helper's own window, not the page, asks for the PIN
    desk.screenshot("e2e-pin-dialog")
    desk.type(USER_PIN)
    desk.key("Return")
    desk.wait_gone()

    page.wait_for_url("**/ish/home", timeout=30_000)
    assert page.text_content("#company") == COMPANY
    assert len(prompter.pins) == 1 and prompter.pins[0].origin == stack.hall_origin
    raw = (stack.state_dir / "audit.jsonl").read_text("utf-8")
    assert '"auth.authenticate"' in raw and USER_PIN not in raw
