"""Finding 1 (security.md, requirement 19): a page makes a dialog appear while the
person is typing; keys that land in the window at once must grant nothing. Real Tk
windows under Xvfb, real key events from xdotool: Return (and Space, keypad Enter)
at once, and again after a second, never allow; a PIN typed at once is dropped; a
window that regains the focus ignores input again for a moment."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time

from drivers.types import PinState
from helper.errors import UserCancelled
from helper.services.prompts import ConsentChoice
from tests.support.desktop import Desktop
from tests.support.dialogs import consent_request, pin_request

SITE = "https://unknown-site.example.cn"


def test_return_at_once_and_after_a_second_never_connects(desk: Desktop) -> None:
    def steps() -> None:
        desk.wait_window(settle=0)
        desk.key("Return", "space", "KP_Enter")  # within the first moments: ignored
        time.sleep(0.3)
        assert desk.windows(), "a key pressed at once closed the window"
        time.sleep(1.0)
        desk.key("Return")  # after a second: the default button, which refuses

    request = consent_request(origin=SITE, operation="connect")
    assert desk.drive(desk.prompter().ask_consent(request), steps) is ConsentChoice.DENY


def test_return_at_once_never_signs(desk: Desktop) -> None:
    data = "汇缴 12,345.00 元".encode()

    def steps() -> None:
        desk.wait_window(settle=0)
        desk.key("Return")
        time.sleep(1.0)
        desk.key("Return")

    request = consent_request(
        origin=SITE,
        operation="sign.data",
        text=data.decode(),
        data_size=len(data),
        data_sha256=hashlib.sha256(data).hexdigest(),
        allow_always=False,
    )
    assert desk.drive(desk.prompter().ask_consent(request), steps) is ConsentChoice.DENY


def test_return_at_once_never_confirms_a_certificate_write(desk: Desktop) -> None:
    def steps() -> None:
        desk.wait_window(settle=0)
        desk.key("Return")
        time.sleep(1.0)
        desk.key("Return")

    request = consent_request(
        origin="https://www.hebca.com", operation="renewal.install", allow_always=False
    )
    assert desk.drive(desk.prompter().ask_consent(request), steps) is ConsentChoice.DENY


def test_a_pin_typed_at_once_is_dropped(desk: Desktop) -> None:
    """Keys meant for the page (a password field there) must not reach our PIN field."""

    def steps() -> None:
        desk.wait_window(settle=0)
        desk.type("111111")
        desk.key("Return")
        time.sleep(1.0)
        assert desk.windows(), "the PIN typed at once was submitted"
        desk.type("123456")
        desk.key("Return")

    pin = desk.drive(desk.prompter().ask_pin(pin_request(state=PinState.OK)), steps)
    assert pin.equals("123456")


def test_regaining_the_focus_starts_the_delay_again(desk: Desktop) -> None:
    other = subprocess.Popen(
        [sys.executable, "-c", "import tkinter as tk; r = tk.Tk(className='elsewhere'); "
         "r.geometry('200x100+0+0'); r.mainloop()"],
        env={**desk._env},
    )  # fmt: skip
    try:

        def steps() -> None:
            wid = desk.wait_window()  # armed
            desk.key("shift+Tab", "shift+Tab")  # onto 允许一次
            elsewhere = desk.xdo("search", "--sync", "--onlyvisible", "--class", "elsewhere")
            desk.xdo("windowfocus", "--sync", elsewhere.split()[0])
            time.sleep(0.3)
            desk.xdo("windowfocus", "--sync", wid)  # back: the page made it pop up again
            desk.key("Return")  # at once: ignored
            time.sleep(0.3)
            assert desk.windows(), "Return right after the focus came back was taken"
            time.sleep(1.0)
            desk.key("Escape")

        request = consent_request(origin=SITE, operation="connect")
        try:
            desk.drive(desk.prompter().ask_consent(request), steps)
        except UserCancelled:
            pass
        else:
            raise AssertionError("the dialog gave an answer other than Escape's")
    finally:
        other.terminate()
        other.wait(10)
