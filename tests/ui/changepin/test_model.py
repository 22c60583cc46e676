"""What 修改密码 decides without Tk: the PIN policy as typed, outcome texts, the test
hook, the window model's forms and transitions; and the window's
one-C_SetPIN-per-click rule with a driver double."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from drivers.errors import PinIncorrect, TokenAbsent
from drivers.types import Pin, PinState, TokenInfo
from helper.domain.presentation import PIN_STATE_TEXT
from helper.services.tokens import TokenService
from helper.ui.changepin.model import EXIT_CHANGED, EXIT_CLOSED, After, ChangePinModel, Form
from helper.ui.changepin.outcome import Outcome, outcome_message
from helper.ui.changepin.policy import (
    Check,
    evaluate,
    forced_pin_state,
    new_pin_hint,
    new_pin_range,
    old_pin_ok,
    with_test_state,
)
from helper.ui.changepin.view import ChangePinWindow
from tests.support.desktop import Desktop


def token(min_len: int | None = 4, max_len: int | None = 255, **kw: Any) -> TokenInfo:
    fields: dict[str, Any] = {
        "module_path": "/x/libsofthsm2.so",
        "slot_id": 1,
        "label": "测试Key",
        "serial": "0011223344556677",
        "manufacturer": "m",
        "model": "m",
        "flags": 0,
        "pin_state": PinState.OK,
        "pin_min_len": min_len,
        "pin_max_len": max_len,
    }
    fields.update(kw)
    return TokenInfo(**fields)


# --- change PIN: the policy as you type -------------------------------------------


def check(old: str, new: str, confirm: str, t: TokenInfo | None = None) -> Check:
    return evaluate(Pin(old), Pin(new), Pin(confirm), t or token())


def test_a_good_change_passes() -> None:
    c = check("123456", "582937", "582937")
    assert c.ok and not c.errors and not c.warnings and not c.mismatch


@pytest.mark.parametrize(
    ("old", "new", "confirm", "code"),
    [
        ("246810", "123456", "123456", "pin_initial"),
        ("582937", "582937", "582937", "pin_same_as_old"),
        ("123456", "58", "58", "pin_too_short"),
        ("123456", "５８２９３７", "５８２９３７", "pin_bad_chars"),
    ],
)
def test_policy_errors_block(old: str, new: str, confirm: str, code: str) -> None:
    c = check(old, new, confirm)
    assert not c.ok and code in [i.code for i in c.errors]


def test_weak_pin_warns_but_does_not_block() -> None:
    c = check("123456", "111111", "111111")
    assert c.ok and [i.code for i in c.warnings] == ["pin_weak"]


def test_hebca_range_when_the_token_reports_none() -> None:
    t = token(None, None)
    assert new_pin_range(t) == (6, 16)
    assert not check("123456", "58293", "58293", t).ok  # 5 < 6
    assert "6–16 位" in new_pin_hint(t)
    assert "至少 4 位" in new_pin_hint(token())


def test_confirmation_mismatch_only_once_it_cannot_be_a_prefix() -> None:
    assert not check("123456", "582937", "582").mismatch  # still typing
    assert check("123456", "582937", "589").mismatch
    assert check("123456", "582937", "5829371").mismatch
    assert not check("123456", "582937", "582").ok


def test_current_pin_outside_the_keys_range_is_not_sent() -> None:
    assert not check("12", "582937", "582937").ok  # SoftHSM: at least 4
    assert not check("", "582937", "582937").ok
    assert old_pin_ok(1, token(None, None))


def test_outcome_messages() -> None:
    text, style = outcome_message(Outcome("ok"))
    assert "密码修改成功" in text and style == "Ok.TLabel"
    text, _ = outcome_message(Outcome("pin_incorrect", PinState.OK))
    assert text.startswith("当前密码错误")
    text, style = outcome_message(Outcome("pin_incorrect", PinState.FINAL_TRY))
    assert "最后一次机会" in text and style == "FinalTry.TLabel"
    text, _ = outcome_message(Outcome("pin_incorrect", PinState.COUNT_LOW))
    assert "剩余次数不多" in text
    text, _ = outcome_message(Outcome("pin_locked"))
    assert "密码已锁定" in text and "办事处" in text
    text, _ = outcome_message(Outcome("error", error=TokenAbsent()))
    assert "拔出" in text and "密码未修改" in text


def test_pin_state_hook_is_off_unless_switched_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTHELPER_TEST_PIN_STATE", "locked")
    monkeypatch.delenv("CERTHELPER_TEST_HOOKS", raising=False)
    assert forced_pin_state() is None
    assert with_test_state(token()).pin_state is PinState.OK
    monkeypatch.setenv("CERTHELPER_TEST_HOOKS", "1")
    assert with_test_state(token()).pin_state is PinState.LOCKED
    monkeypatch.setenv("CERTHELPER_TEST_PIN_STATE", "nonsense")
    assert forced_pin_state() is None


# --- change PIN: one C_SetPIN per click, off the Tk thread --------------------------


class SlowWrongDriver:
    """Answers like a key whose current PIN is not the one typed, slowly."""

    module_path = "/x/libsofthsm2.so"

    def __init__(self, info: TokenInfo) -> None:
        self.info = info
        self.calls: list[str] = []

    def token_info(self, serial: str) -> TokenInfo:
        return self.info

    def change_pin(self, serial: str, old: Pin, new: Pin) -> None:
        self.calls.append(threading.current_thread().name)
        time.sleep(0.3)
        self.info = dataclasses.replace(self.info, pin_state=PinState.FINAL_TRY)
        raise PinIncorrect()


def one_set_pin_per_click() -> None:
    """Runs in a child process (its own Tk and X connection; see the test below)."""
    driver = SlowWrongDriver(token())
    window = ChangePinWindow(TokenService([]), [(driver, driver.info)])  # type: ignore[list-item]
    try:
        for entry, value in zip(window.entries, ("000000", "582937", "582937"), strict=True):
            entry.insert(0, value)
        window._update()
        assert window.model.check.ok
        window.submit()
        window.submit()  # a second click or Enter while the key works
        assert window.model.busy
        end = time.monotonic() + 5
        while window.model.busy and time.monotonic() < end:
            window.root.update()
            time.sleep(0.01)
        window.submit()  # after the failure the fields are empty: refused
        assert driver.calls == ["set-pin"]  # once, and on the worker thread
        assert all(not e.get() for e in window.entries)
        assert "当前密码错误" in window.outcome.cget("text")
        assert "最后一次机会" in window.outcome.cget("text")
        assert window.state_label.cget("text") == PIN_STATE_TEXT[PinState.FINAL_TRY]
    finally:
        window.root.destroy()
    print("ok")


def test_one_set_pin_per_click_in_a_worker_thread(desk: Desktop) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTHELPER_")}
    code = "from tests.ui.changepin.test_model import one_set_pin_per_click as t; t()"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "DISPLAY": desk.display},
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


# --- the window model ---------------------------------------------------------------


class FlagsDriver:
    """A driver double that reports a token and records nothing else."""

    def __init__(self, info: TokenInfo, *, fail: bool = False) -> None:
        self.info, self.fail = info, fail

    def token_info(self, serial: str) -> TokenInfo:
        if self.fail:
            raise TokenAbsent()
        return self.info


def test_model_forms_follow_the_key() -> None:
    assert ChangePinModel([]).choose(0).form is Form.NO_KEY
    locked = token(pin_state=PinState.LOCKED)
    assert ChangePinModel([(FlagsDriver(locked), locked)]).choose(0).form is Form.LOCKED  # type: ignore[list-item]
    ok = token()
    choice = ChangePinModel([(FlagsDriver(ok), ok)]).choose(0)  # type: ignore[list-item]
    assert choice.form is Form.PIN and choice.info == ok
    gone = ChangePinModel([(FlagsDriver(ok, fail=True), ok)]).choose(0)  # type: ignore[list-item]
    assert gone.form is Form.UNREADABLE and isinstance(gone.error, TokenAbsent)


def test_model_submits_only_what_the_policy_accepts() -> None:
    t = token()
    model = ChangePinModel([(FlagsDriver(t), t)])  # type: ignore[list-item]
    model.choose(0)
    assert not model.may_submit(Pin("000000"), Pin("123456"), Pin("123456"))  # the initial PIN
    assert not model.may_submit(Pin("000000"), Pin("582937"), Pin("582938"))  # mismatch
    assert model.may_submit(Pin("000000"), Pin("582937"), Pin("582937"))
    model.busy = True
    assert not model.may_submit(Pin("000000"), Pin("582937"), Pin("582937"))  # one at a time
    assert model.typed(Pin(""), Pin(""), Pin("")) is None


def test_model_after_each_outcome() -> None:
    t = token()
    model = ChangePinModel([(FlagsDriver(t), t)])  # type: ignore[list-item]
    model.choose(0)
    assert model.finished(Outcome("pin_incorrect", pin_state=PinState.FINAL_TRY)) is After.RETRY
    assert model.info is not None and model.info.pin_state is PinState.FINAL_TRY
    assert model.exit_code == EXIT_CLOSED
    assert model.finished(Outcome("pin_locked", pin_state=PinState.LOCKED)) is After.LOCKED
    assert model.info.pin_state is PinState.LOCKED
    done = ChangePinModel([(FlagsDriver(t), t)])  # type: ignore[list-item]
    done.choose(0)
    assert done.finished(Outcome("ok")) is After.CLOSE
    assert done.done and done.exit_code == EXIT_CHANGED
    assert done.typed(Pin("1"), Pin("2"), Pin("3")) is None  # nothing more to type
