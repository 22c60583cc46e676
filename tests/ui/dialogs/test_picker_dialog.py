"""The certificate picker: keyboard and double-click."""

from __future__ import annotations

import pytest

from helper.errors import UserCancelled
from tests.support.desktop import Desktop
from tests.support.dialogs import HALL, choices

SELECT_RGB = bytes.fromhex("1f5fbf")  # helper.ui.dialogs.SELECT_BG


def _pick(desk: Desktop, steps, origin: str = HALL):  # type: ignore[no-untyped-def]
    insecure = origin.startswith("http:")
    return desk.drive(desk.prompter().pick_certificate(origin, insecure, choices()), steps)


def test_enter_picks_the_first_row(desk: Desktop) -> None:
    def steps() -> None:
        desk.wait_window()
        desk.screenshot("picker")
        desk.key("Return")

    assert _pick(desk, steps) == "cert-a"


def test_down_then_enter_picks_the_second(desk: Desktop) -> None:
    def steps() -> None:
        desk.wait_window()
        desk.key("Down")
        desk.screenshot("picker-second")
        desk.key("Return")

    assert _pick(desk, steps, origin="https://hall.example.gov.cn") == "cert-b"


def test_escape_cancels(desk: Desktop) -> None:
    def steps() -> None:
        desk.wait_window()
        desk.key("Escape")

    with pytest.raises(UserCancelled):
        _pick(desk, steps)


def _selected_row(desk: Desktop) -> tuple[int, int, int]:
    """(x centre, y top, height) of the selected row: the band of selection colour
    wider than any button."""
    w, h, rgb = desk.pixels()
    rows = []
    for y in range(h):
        line = rgb[y * w * 3 : (y + 1) * w * 3]
        run = best = start = best_start = 0
        for x in range(w):
            if line[x * 3 : x * 3 + 3] == SELECT_RGB:
                if run == 0:
                    start = x
                run += 1
                if run > best:
                    best, best_start = run, start
            else:
                run = 0
        if best > 300:
            rows.append((y, best_start, best))
    assert rows, "no selected row on screen"
    top, x0, width = rows[0]
    bottom = max(r[0] for r in rows if r[0] < top + 100)  # text lines break some runs
    return x0 + width // 2, top, bottom - top + 1


def test_the_pointer_never_changes_the_choice(desk: Desktop) -> None:
    """Enter takes the selected row, whatever row the mouse pointer rests on."""

    def steps() -> None:
        desk.wait_window()
        x, top, height = _selected_row(desk)
        desk.xdo("mousemove", "--sync", str(x), str(top + 2 * height + height // 2))
        desk.screenshot("picker-pointer-on-third")
        desk.key("Return")

    assert _pick(desk, steps) == "cert-a"


def test_double_click_picks(desk: Desktop) -> None:
    def steps() -> None:
        desk.wait_window()
        x, top, height = _selected_row(desk)  # the first row, selected on open
        y = top + height + height // 2  # the middle of the row below it
        desk.xdo("mousemove", "--sync", str(x), str(y))
        desk.xdo("click", "--repeat", "2", "--delay", "80", "1")

    assert _pick(desk, steps) == "cert-b"
