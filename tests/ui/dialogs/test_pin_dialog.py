"""The PIN dialog, as a person uses it: real window, real keys."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from pathlib import Path

import pytest

from drivers.errors import PinLocked
from drivers.types import Pin, PinState
from helper.errors import UserCancelled, UserTimeout
from tests.support.desktop import Desktop
from tests.support.dialogs import (
    HTTPS_HALL,
    close_like_a_window_manager,
    dialog_children,
    pin_request,
)


def test_typed_pin_is_returned(desk: Desktop) -> None:
    def steps() -> None:
        desk.wait_window()
        desk.type("20240613")
        desk.screenshot("pin-typed")
        desk.key("Return")

    pin = desk.drive(desk.prompter().ask_pin(pin_request()), steps)
    assert isinstance(pin, Pin)
    assert pin.reveal() == "20240613"
    assert "2024" not in repr(pin)


def test_opens_with_the_pin_field_focused(desk: Desktop) -> None:
    """No xdotool focus: the dialog takes the keyboard itself when it is mapped."""

    def steps() -> None:
        desk.wait_window(focus=False)
        time.sleep(0.2)
        desk.type("246810")
        desk.key("Return")

    pin = desk.drive(desk.prompter().ask_pin(pin_request()), steps)
    assert pin.reveal() == "246810"


def test_keypad_enter_submits_too(desk: Desktop) -> None:
    def steps() -> None:
        desk.wait_window()
        desk.type("135790")
        desk.key("KP_Enter")

    pin = desk.drive(desk.prompter().ask_pin(pin_request(origin=HTTPS_HALL)), steps)
    assert pin.reveal() == "135790"


@pytest.mark.parametrize("state", [PinState.OK, PinState.COUNT_LOW, PinState.FINAL_TRY])
def test_escape_cancels(desk: Desktop, state: PinState) -> None:
    origin = HTTPS_HALL if state is PinState.COUNT_LOW else "http://111.62.46.105:9010"

    def steps() -> None:
        desk.wait_window()
        desk.type("12")
        desk.screenshot(f"pin-{state.value}")
        desk.key("Escape")

    with pytest.raises(UserCancelled):
        desk.drive(desk.prompter().ask_pin(pin_request(state, origin=origin)), steps)


def test_closing_the_window_cancels(desk: Desktop) -> None:
    def steps() -> None:
        wid = desk.wait_window()
        close_like_a_window_manager(desk.display, int(wid))

    with pytest.raises(UserCancelled):
        desk.drive(desk.prompter().ask_pin(pin_request()), steps)


def test_timeout(desk: Desktop) -> None:
    start = time.monotonic()
    with pytest.raises(UserTimeout):
        desk.drive(desk.prompter(timeout=2).ask_pin(pin_request()), desk.wait_window)
    elapsed = time.monotonic() - start
    # the dialog's own timer answered (the prompter would only kill it at 2 + 5 s)
    assert 1.5 < elapsed < 6, elapsed


def test_locked_pin_never_opens_a_window(desk: Desktop) -> None:
    seen: list[list[str]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if wins := desk.windows():
                seen.append(wins)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with pytest.raises(PinLocked):
            desk.drive(desk.prompter().ask_pin(pin_request(PinState.LOCKED)))
        time.sleep(0.3)
    finally:
        stop.set()
        watcher.join()
    assert seen == []


def test_ok_waits_for_a_long_enough_pin(desk: Desktop) -> None:
    def steps() -> None:
        wid = desk.wait_window()
        desk.type("123")
        desk.screenshot("pin-too-short")
        desk.key("Return")  # OK is disabled: nothing happens
        time.sleep(0.6)
        assert desk.windows() == [wid]
        desk.type("456")
        desk.key("Return")

    pin = desk.drive(desk.prompter().ask_pin(pin_request(lo=6, hi=8)), steps)
    assert pin.reveal() == "123456"


def test_too_long_pin_is_not_accepted(desk: Desktop) -> None:
    def steps() -> None:
        wid = desk.wait_window()
        desk.type("1234567")
        desk.key("Return")  # longer than the token's maximum of 6
        time.sleep(0.6)
        assert desk.windows() == [wid]
        desk.key("BackSpace")
        desk.key("Return")

    pin = desk.drive(desk.prompter().ask_pin(pin_request(lo=4, hi=6)), steps)
    assert pin.reveal() == "123456"


def test_pin_never_in_argv_environment_files_or_logs(
    desk: Desktop, caplog: pytest.LogCaptureFixture
) -> None:
    sentinel = "73915082"
    started = time.time()
    seen: dict[str, bytes] = {}

    def steps() -> None:
        desk.wait_window()
        desk.type(sentinel)
        time.sleep(0.2)
        (pid,) = dialog_children()
        for name in ("cmdline", "environ"):
            seen[name] = Path(f"/proc/{pid}/{name}").read_bytes()
        desk.key("Return")

    caplog.set_level(logging.DEBUG)
    pin = desk.drive(desk.prompter().ask_pin(pin_request()), steps)
    assert pin.reveal() == sentinel
    assert b"helper.ui" in seen["cmdline"]
    assert b"DISPLAY=" in seen["environ"]
    for name, raw in seen.items():
        assert sentinel.encode() not in raw, name
    assert "pin dialog" in caplog.text  # the prompter does log, just never the PIN
    assert sentinel not in caplog.text
    assert all(sentinel not in str(r.args) for r in caplog.records)
    # nothing the dialog wrote to the temp folder holds it either
    for path in Path(tempfile.gettempdir()).glob("*"):
        try:
            if path.is_file() and path.stat().st_mtime >= started and path.stat().st_size < 2**20:
                assert sentinel.encode() not in path.read_bytes(), path
        except OSError:
            continue


def test_asked_again_after_a_wrong_pin(desk: Desktop, tmp_path: Path) -> None:
    """The retry's dialog says the PIN was wrong and how many tries are left (the text
    the gate sends), read from the built window through the UI probe."""
    import dataclasses
    import json

    probe = tmp_path / "probe.jsonl"
    note = "密码错误，还可以尝试 4 次 (wrong PIN: 4 tries left)"
    request = dataclasses.replace(pin_request(), retry_note=note)

    def steps() -> None:
        desk.wait_window()
        desk.screenshot("pin-retry")
        desk.type("123456")
        desk.key("Return")

    prompter = desk.prompter(env={"CERTHELPER_UI_PROBE": str(probe)})
    pin = desk.drive(prompter.ask_pin(request), steps)
    assert pin.reveal() == "123456"
    texts = [t for line in probe.read_text("utf-8").splitlines() for t in json.loads(line)["texts"]]
    assert note in texts
