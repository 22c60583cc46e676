"""修改密码, as a person uses it: a real window on the session's Xvfb changing
the PIN of a private copy of the SoftHSM tokens; checked afterwards by signing
with the CLI on the same copy."""

from __future__ import annotations

import time
from typing import Any

from tests.support.cli import Cli
from tests.support.desktop import Desktop
from tests.support.tokens import USER_PIN, Fixtures
from tests.support.windows import WindowApp

NEW_PIN = "582937"


def events(app: WindowApp, name: str) -> list[dict[str, Any]]:
    return [e for e in app.lines() if e["event"] == name]


def wait_event(app: WindowApp, name: str, timeout: float = 15) -> dict[str, Any]:
    def found(lines: list[dict[str, Any]]) -> dict[str, Any] | None:
        return next((e for e in lines if e["event"] == name), None)

    return app.wait_for(name, found, timeout)


def can_sign(cli: Cli, fx: Fixtures, pin: str, cert: str = "company_sign") -> bool:
    """Log in with ``pin`` and sign, in a child process (the PIN check of record)."""
    data = cli.home / "data.txt"
    data.write_text("证书助手", "utf-8")
    out = cli.home / "data.sig"
    result = cli(
        "sign", "--cert", fx.cert(cert)["sha256"], "--in", str(data), "--out", str(out),
        "--pin-stdin", stdin=pin + "\n",
    )  # fmt: skip
    if result.returncode == 0:
        assert out.stat().st_size > 0
        return True
    assert "pin_incorrect" in result.stderr, result.stderr
    return False


def type_pins(desk: Desktop, old: str, new: str, confirm: str) -> None:
    desk.type(old)
    desk.key("Tab")
    desk.type(new)
    desk.key("Tab")
    desk.type(confirm)


def test_changes_the_pin(desk: Desktop, open_window, fresh_tokens: Fixtures, home_cli: Cli) -> None:
    key1 = fresh_tokens.token("key1")
    app = open_window("changepin", "--token", key1["serial"])
    desk.wait_window()
    ready = wait_event(app, "ready")
    assert ready["token_serial"] == key1["serial"] and ready["fields"] and not ready["locked"]
    assert ready["pin_state"] == "ok" and not ready["chooser"]

    type_pins(desk, USER_PIN, NEW_PIN, NEW_PIN)
    app.wait_for("确定 enabled", lambda ls: [e for e in ls if e.get("ok_enabled")])
    desk.screenshot("changepin")
    desk.key("Return")
    result = wait_event(app, "result")
    desk.screenshot("changepin-success")
    assert result["outcome"] == "ok"
    assert "密码修改成功" in result["message"]
    start = time.monotonic()
    assert app.wait_exit() == 0  # closes by itself after showing the message
    assert 0.5 < time.monotonic() - start < 5
    assert len(events(app, "busy")) == 1

    assert can_sign(home_cli, fresh_tokens, NEW_PIN)
    assert not can_sign(home_cli, fresh_tokens, USER_PIN)


def test_wrong_current_pin_says_so_and_keeps_the_window(
    desk: Desktop, open_window, fresh_tokens: Fixtures, home_cli: Cli
) -> None:
    key1 = fresh_tokens.token("key1")
    app = open_window("changepin", "--token", key1["label"])
    desk.wait_window()
    wait_event(app, "ready")
    type_pins(desk, "000000", NEW_PIN, NEW_PIN)
    app.wait_for("确定 enabled", lambda ls: [e for e in ls if e.get("ok_enabled")])
    desk.key("Return", "Return")  # a second Enter while the key works: still one C_SetPIN
    result = wait_event(app, "result")
    assert result["outcome"] == "pin_incorrect"
    assert result["message"].startswith("当前密码错误")
    assert result["fields_empty"] and not result["locked"]
    # the state read afterwards: SoftHSM reports "count low" after a wrong PIN
    assert result["pin_state"] in ("ok", "count_low")
    if result["pin_state"] == "count_low":
        assert "剩余次数不多" in result["message"]
    time.sleep(0.5)
    assert len(events(app, "busy")) == 1 and len(events(app, "result")) == 1
    assert app.proc.poll() is None and desk.windows()  # still open
    desk.screenshot("changepin-wrong-pin")
    desk.key("Escape")
    assert app.wait_exit() == 1
    assert events(app, "exit") == [{"event": "exit", "code": 1}]

    assert can_sign(home_cli, fresh_tokens, USER_PIN)  # untouched


def test_initial_pin_is_refused_as_the_new_one(
    desk: Desktop, open_window, fresh_tokens: Fixtures, home_cli: Cli
) -> None:
    key1 = fresh_tokens.token("key1")
    current = "246810"
    done = home_cli(
        "change-pin",
        "--token",
        key1["serial"],
        "--stdin",
        stdin=f"{USER_PIN}\n{current}\n{current}\n",
    )
    assert done.returncode == 0, done.stderr

    app = open_window("changepin", "--token", key1["serial"])
    desk.wait_window()
    wait_event(app, "ready")
    type_pins(desk, current, USER_PIN, USER_PIN)

    def refused_initial(lines: list[dict[str, Any]]) -> dict[str, Any] | None:
        checks = [e for e in lines if e["event"] == "check"]
        last = checks[-1] if checks else None
        return last if last and "pin_initial" in last["errors"] and "mismatch" in last else None

    check = app.wait_for("the 123456 error", refused_initial)
    assert check["ok_enabled"] is False and not check["mismatch"]
    assert any("不能是初始密码 123456" in m for m in check["messages"])
    desk.key("Return")
    refused = wait_event(app, "refused")
    assert "pin_initial" in refused["errors"]
    desk.screenshot("changepin-123456")
    assert events(app, "busy") == [] and events(app, "result") == []
    desk.key("Escape")
    assert app.wait_exit() == 1

    assert can_sign(home_cli, fresh_tokens, current)  # untouched


def test_locked_key_shows_guidance_and_no_fields(
    desk: Desktop, open_window, fresh_tokens: Fixtures, home_cli: Cli
) -> None:
    key2 = fresh_tokens.token("key2")
    app = open_window(
        "changepin",
        "--token",
        key2["serial"],
        env={"CERTHELPER_TEST_HOOKS": "1", "CERTHELPER_TEST_PIN_STATE": "locked"},
    )
    desk.wait_window()
    ready = wait_event(app, "ready")
    assert ready["locked"] and not ready["fields"] and ready["pin_state"] == "locked"
    desk.type("123456")  # nowhere to type: the focus is on 关闭
    desk.screenshot("changepin-locked")
    desk.key("Return")  # 关闭
    assert app.wait_exit() == 1
    assert events(app, "busy") == []
    assert can_sign(home_cli, fresh_tokens, USER_PIN, cert="expiring")  # key2 untouched


def test_the_pin_state_hook_needs_the_hooks_switch(
    desk: Desktop, open_window, fresh_tokens: Fixtures
) -> None:
    app = open_window(
        "changepin",
        "--token",
        fresh_tokens.token("key2")["serial"],
        env={"CERTHELPER_TEST_PIN_STATE": "locked"},  # no CERTHELPER_TEST_HOOKS=1
    )
    desk.wait_window()
    ready = wait_event(app, "ready")
    assert not ready["locked"] and ready["fields"] and ready["pin_state"] == "ok"
    desk.key("Escape")
    assert app.wait_exit() == 1


def test_several_keys_get_a_chooser(desk: Desktop, open_window, fresh_tokens: Fixtures) -> None:
    app = open_window("changepin")
    desk.wait_window()
    ready = wait_event(app, "ready")
    assert ready["chooser"] and ready["tokens"] == len(fresh_tokens.manifest["tokens"])
    assert ready["fields"]
    type_pins(desk, USER_PIN, "1", "")  # the first field has the focus

    def too_short(lines: list[dict[str, Any]]) -> bool:
        return any("pin_too_short" in e.get("errors", ()) for e in lines)

    app.wait_for("the new PIN judged", too_short)
    desk.screenshot("changepin-chooser")
    desk.key("Escape")
    assert app.wait_exit() == 1


def test_no_such_key(desk: Desktop, open_window) -> None:
    app = open_window("changepin", "--token", "no-such-key")
    desk.wait_window()
    ready = wait_event(app, "ready")
    assert ready["tokens"] == 0 and not ready["fields"]
    desk.key("Escape")
    assert app.wait_exit() == 1
