"""修改密码 on 国密 SKF keys: a real window on the session's Xvfb changing the PIN of a
private copy of the soft SKF devices (SKF_ChangePIN through the SKF driver), checked
afterwards through the test's own SkfDriver on the same copy: the tries left, the
default-PIN flag, a login with the new PIN."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from drivers.errors import PinIncorrect, PinLocked
from drivers.skf.driver import SkfDriver
from drivers.types import Pin
from tests.support.cli import Cli
from tests.support.desktop import Desktop
from tests.support.skf import GmKeys
from tests.support.tokens import USER_PIN
from tests.support.windows import WindowApp

NEW_PIN = "86429731"
WRONG = "000000"


def events(app: WindowApp, name: str) -> list[dict[str, Any]]:
    return [e for e in app.lines() if e["event"] == name]


def wait_event(app: WindowApp, name: str, count: int = 1, timeout: float = 15) -> dict[str, Any]:
    def found(lines: list[dict[str, Any]]) -> dict[str, Any] | None:
        seen = [e for e in lines if e["event"] == name]
        return seen[count - 1] if len(seen) >= count else None

    return app.wait_for(f"{name} #{count}", found, timeout)


def type_pins(desk: Desktop, old: str, new: str, confirm: str) -> None:
    desk.type(old)
    desk.key("Tab")
    desk.type(new)
    desk.key("Tab")
    desk.type(confirm)


@pytest.fixture
def open_changepin(desk: Desktop, gm_cli: Cli) -> Iterator[Any]:
    apps: list[WindowApp] = []

    def start(serial: str) -> WindowApp:
        apps.append(WindowApp(desk, gm_cli, "changepin", ("--token", serial), {}))
        return apps[-1]

    yield start
    for app in apps:
        app.stop()


def test_wrong_old_pin_shows_the_tries_left_then_the_change_works(
    desk: Desktop, open_changepin: Any, gm_keys: GmKeys, skf_driver: SkfDriver
) -> None:
    gm2 = gm_keys.serial("gm2")
    app = open_changepin(gm2)
    desk.wait_window()
    ready = wait_event(app, "ready")
    assert ready["fields"] and not ready["locked"]
    assert (ready["pin_retries_left"], ready["pin_max_retries"], ready["pin_is_default"]) == (
        6, 6, True,
    )  # fmt: skip
    assert "仍是初始密码" in ready["state_text"]

    type_pins(desk, WRONG, NEW_PIN, NEW_PIN)
    app.wait_for("确定 enabled", lambda ls: [e for e in ls if e.get("ok_enabled")])
    desk.key("Return")
    result = wait_event(app, "result")
    desk.screenshot("changepin-sm2-wrong-old-pin")
    assert result["outcome"] == "pin_incorrect" and result["retries_left"] == 5
    assert result["message"].startswith("当前密码错误")
    assert "密码剩余 5/6 次尝试 (5/6 PIN tries left)" in result["message"]
    assert "密码剩余 5/6 次尝试" in result["state_text"]
    assert any("密码剩余 5/6 次尝试" in n for n in result["notes"])  # on screen
    assert result["fields_empty"] and app.proc.poll() is None
    assert skf_driver.token_info(gm2).pin_retries_left == 5  # the key agrees

    type_pins(desk, USER_PIN, NEW_PIN, NEW_PIN)
    app.wait_for("确定 enabled again", lambda ls: [e for e in ls if e.get("ok_enabled")][1:])
    desk.key("Return")
    done = wait_event(app, "result", 2)
    assert done["outcome"] == "ok" and "密码修改成功" in done["message"]
    assert done["pin_is_default"] is False  # re-read: the initial-PIN flag cleared
    assert app.wait_exit() == 0
    info = skf_driver.token_info(gm2)
    assert (info.pin_is_default, info.pin_retries_left) == (False, 6)
    skf_driver.login(gm2, Pin(NEW_PIN))  # the new PIN is the key's now
    skf_driver.logout(gm2)


def test_bad_input_never_spends_a_try(
    desk: Desktop, open_changepin: Any, gm_keys: GmKeys, skf_driver: SkfDriver
) -> None:
    """A wrong current PIN typed beside a bad new one: had anything reached the key,
    a try would be gone."""
    gm1 = gm_keys.serial("gm1")
    app = open_changepin(gm1)
    desk.wait_window()
    wait_event(app, "ready")

    type_pins(desk, WRONG, NEW_PIN, NEW_PIN[:-1] + "0")  # the confirmation differs
    desk.key("Return")
    assert wait_event(app, "refused")["errors"] == []
    desk.key(*["BackSpace"] * len(NEW_PIN), "shift+Tab", *["BackSpace"] * len(NEW_PIN))
    desk.type("12345")  # too short
    desk.key("Tab")
    desk.type("12345")
    desk.key("Return")
    assert "pin_too_short" in wait_event(app, "refused", 2)["errors"]
    desk.key(*["BackSpace"] * 5, "shift+Tab", *["BackSpace"] * 5)
    desk.type("97531864297531864")  # 17: too long
    desk.key("Tab")
    desk.type("97531864297531864")
    desk.key("Return")
    refused = wait_event(app, "refused", 3)
    assert "pin_too_long" in refused["errors"]
    desk.screenshot("changepin-sm2-too-long")
    assert events(app, "busy") == [] and events(app, "result") == []
    desk.key("Escape")
    assert app.wait_exit() == 1
    assert skf_driver.token_info(gm1).pin_retries_left == 6


def test_a_locked_key_refuses_to_start(
    desk: Desktop, open_changepin: Any, gm_keys: GmKeys, skf_driver: SkfDriver
) -> None:
    gm2 = gm_keys.serial("gm2")
    for _ in range(6):  # locked for real at the key (the last try answers "locked")
        with pytest.raises((PinIncorrect, PinLocked)):
            skf_driver.login(gm2, Pin(WRONG))
    app = open_changepin(gm2)
    desk.wait_window()
    ready = wait_event(app, "ready")
    assert ready["locked"] and not ready["fields"] and ready["pin_retries_left"] == 0
    shown = "\n".join(ready["notes"])
    assert "密码已锁定，无法修改" in shown and "(The PIN is locked" in shown
    assert "请联系 CA 解锁" in shown and "13315703324" in shown
    desk.screenshot("changepin-sm2-locked")
    desk.type(USER_PIN)  # nowhere to type: the focus is on 关闭
    desk.key("Return")
    assert app.wait_exit() == 1
    assert events(app, "busy") == []
    with pytest.raises(PinLocked):  # still locked, even for the right PIN
        skf_driver.login(gm2, Pin(USER_PIN))
