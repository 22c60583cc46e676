"""Real notice windows under Xvfb, driven by xdotool: every kind opens, shows its
text (screenshots ``notice-*``), and answers by keyboard: Enter presses the focused
default button, Tab moves to the next, Escape and closing the window are "close"."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from helper.services.alerts import Alert
from helper.ui.dialogs.texts import MIN_WIDTH
from helper.ui.notice.client import show_notice
from helper.ui.notice.content import ORANGE_BG, expiry_request
from helper.ui.style import DANGER_BG, ORANGE, WARN_BG
from tests.support.desktop import Desktop
from tests.support.dialogs import close_like_a_window_manager, dialog_children

RENEWAL_URL = "https://www.hebca.com"


def _rgb(colour: str) -> bytes:
    return bytes.fromhex(colour.lstrip("#"))


def _alerts() -> list[Alert]:
    now = datetime.now(UTC)
    soon = (now + timedelta(days=4, hours=12)).replace(minute=0, second=0, microsecond=0)
    return [Alert("ab" * 32, "沧州市测试科技有限公司", "河北CA测试Key1", soon, 4, "7")]


def _several() -> list[Alert]:
    now = datetime.now(UTC)

    def one(n: int, cn: str, key: str, days: int, threshold: str) -> Alert:
        return Alert(f"{n:02x}" * 32, cn, key, now + timedelta(days=days), days, threshold)  # type: ignore[arg-type]

    return [
        *_alerts(),
        one(1, "沧州市已过期测试有限公司", "河北CA测试Key2", -11, "expired"),
        one(2, "沧州市测试贸易有限公司", "河北CA测试Key1", 25, "30"),
        one(3, "张三 (个人证书)", "Backup Key", 29, "30"),
    ]


FINDINGS = [
    {"level": "ok", "code": "config",
     "message": "配置 (config): 默认设置 (defaults; no config file)"},
    {"level": "ok", "code": "module_loaded",
     "message": "已加载驱动 (module loaded): /usr/lib/softhsm/libsofthsm2.so"},
    {"level": "ok", "code": "token", "message": "已检测到 USB Key (key found): 河北CA测试Key1"},
    {"level": "warning", "code": "cert_expiring",
     "message": "「沧州市即将到期测试有限公司」证书 4 天后到期 (expires in 4 days)",
     "fix": "请到河北CA网站办理证书延期 (renew online: 老用户延期 → 点此延长有效期)"},
    {"level": "error", "code": "pin_locked", "message": "「河北CA测试Key2」密码已锁定 (PIN locked)",
     "fix": "请携带 USB Key 到河北CA沧州办事处解锁 (take the key to the CA office to unlock it)"},
]  # fmt: skip


def _show(desk: Desktop, request: dict[str, Any], steps: Any) -> str:
    result = desk.drive(show_notice(request, env={"DISPLAY": desk.display}), steps)
    assert isinstance(result, str)
    return result


def _has_colour(desk: Desktop, colour: str, run: int = 1) -> bool:
    """Whether ``run`` pixels of ``colour`` stand one above the other somewhere."""
    w, _h, rgb = desk.pixels()
    want = _rgb(colour)
    i = rgb.find(want)
    while i != -1:
        if i % 3 == 0:
            below = range(i, min(i + run * w * 3, len(rgb)), w * 3)
            if len(below) == run and all(rgb[j : j + 3] == want for j in below):
                return True
        i = rgb.find(want, i + 1)
    return False


# --- expiry ---------------------------------------------------------------------------


def test_expiry_enter_renews(desk: Desktop) -> None:
    seen: dict[str, Any] = {}

    def steps() -> None:
        wid = desk.wait_window()
        seen["geometry"] = desk.geometry(wid)
        seen["title"] = desk.xdo("getwindowname", wid).strip()
        desk.screenshot("notice-expiry")
        seen["stripe"] = _has_colour(desk, ORANGE, run=60)  # the card's left edge
        seen["badge"] = _has_colour(desk, ORANGE_BG)  # 剩余 4 天
        desk.key("Return")

    assert _show(desk, expiry_request(_alerts(), RENEWAL_URL), steps) == "renew"
    _x, _y, w, h = seen["geometry"]
    assert w >= MIN_WIDTH and 250 < h < 600
    assert seen["title"] == "证书助手 — 证书到期提醒 (Certificate expiry)"
    assert seen["stripe"] and seen["badge"]


def test_expiry_tab_then_enter_is_close(desk: Desktop) -> None:
    def steps() -> None:
        desk.wait_window()
        desk.key("Tab", "Return")

    assert _show(desk, expiry_request(_alerts(), RENEWAL_URL), steps) == "close"


def test_expiry_escape_is_close(desk: Desktop) -> None:
    def steps() -> None:
        desk.wait_window()
        desk.screenshot("notice-expiry-several")
        desk.key("Escape")

    request = expiry_request(_several(), RENEWAL_URL)
    assert _show(desk, request, steps) == "close"


def test_expiry_closing_the_window_is_close(desk: Desktop) -> None:
    def steps() -> None:
        wid = desk.wait_window()
        close_like_a_window_manager(desk.display, int(wid))

    assert _show(desk, expiry_request(_alerts(), RENEWAL_URL), steps) == "close"


def test_a_notice_waits_by_default(desk: Desktop) -> None:
    """No timeout unless asked for: still up after 3 s, no countdown."""

    def steps() -> None:
        desk.wait_window()
        time.sleep(3)
        assert desk.windows()
        desk.key("Return")

    assert _show(desk, expiry_request(_alerts(), RENEWAL_URL), steps) == "renew"


def test_a_requested_timeout_closes_it(desk: Desktop) -> None:
    def steps() -> None:
        desk.wait_window()
        desk.screenshot("notice-timeout-countdown")

    request = {**expiry_request(_alerts(), RENEWAL_URL), "timeout": 2}
    start = time.monotonic()
    assert _show(desk, request, steps) == "close"
    assert time.monotonic() - start < 10


def test_the_daemon_going_away_closes_the_window(desk: Desktop) -> None:
    async def scenario() -> None:
        task = asyncio.create_task(
            show_notice(expiry_request(_alerts(), RENEWAL_URL), env={"DISPLAY": desk.display})
        )
        await asyncio.to_thread(desk.wait_window)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    desk.wait_gone()
    assert not dialog_children()


# --- initial PIN ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "expected"),
    [((), "changepin"), (("Tab",), "close"), (("Escape",), "close")],
    ids=["enter-changepin", "tab-later", "escape"],
)
def test_initial_pin(desk: Desktop, keys: tuple[str, ...], expected: str) -> None:
    seen: dict[str, bool] = {}

    def steps() -> None:
        desk.wait_window()
        if not keys:
            desk.screenshot("notice-initial-pin")
            seen["warn"] = _has_colour(desk, WARN_BG)
        desk.key(*keys)
        if keys != ("Escape",):
            desk.key("Return")

    request = {"kind": "initial_pin", "token_label": "河北CA测试Key1", "token_serial": "8f2a11c0"}
    assert _show(desk, request, steps) == expected
    assert seen.get("warn", True)


# --- support, about -------------------------------------------------------------------


def test_support_shows_the_contacts(desk: Desktop) -> None:
    def steps() -> None:
        desk.wait_window()
        desk.screenshot("notice-support")
        desk.key("Return")

    assert _show(desk, {"kind": "support"}, steps) == "close"


def test_support_text_can_be_copied(desk: Desktop) -> None:
    """Select the whole text box with the mouse, Ctrl+C: the clipboard holds the contacts
    (read back while the window is still up: X clipboards live in their owner)."""
    copied: dict[str, str] = {}

    def steps() -> None:
        wid = desk.wait_window()
        x, y, w, h = desk.geometry(wid)
        # the text box spans the body under the header (~90 px) down to the hint line
        desk.xdo("mousemove", "--sync", str(x + 40), str(y + 112))
        desk.xdo("mousedown", "1")
        desk.xdo("mousemove", "--sync", str(x + w - 40), str(y + h - 110))
        desk.xdo("mouseup", "1")
        desk.xdo("windowfocus", "--sync", wid)
        desk.key("ctrl+c")
        copied["text"] = _clipboard(desk)
        desk.key("Escape")

    assert _show(desk, {"kind": "support"}, steps) == "close"
    assert "13315703324" in copied["text"]
    assert "310693415" in copied["text"]


def _clipboard(desk: Desktop) -> str:
    import subprocess
    import sys

    code = "import tkinter as t; r=t.Tk(); r.withdraw(); print(r.clipboard_get())"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**desk._env},
        capture_output=True,
        timeout=20,
    )
    return proc.stdout.decode("utf-8", "replace")


def test_about(desk: Desktop) -> None:
    def steps() -> None:
        desk.wait_window()
        desk.screenshot("notice-about")
        desk.key("Escape")

    assert _show(desk, {"kind": "about", "version": "0.1.0"}, steps) == "close"


# --- doctor ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "expected"),
    [((), "rerun"), (("Tab",), "close")],
    ids=["enter-rerun", "tab-close"],
)
def test_doctor(desk: Desktop, keys: tuple[str, ...], expected: str) -> None:
    seen: dict[str, bool] = {}

    def steps() -> None:
        desk.wait_window()
        if not keys:
            desk.screenshot("notice-doctor")
            seen["summary"] = _has_colour(desk, DANGER_BG)  # 发现 2 个问题, red: one is an error
        desk.key(*keys, "Return")

    assert _show(desk, {"kind": "doctor", "findings": FINDINGS}, steps) == expected
    assert seen.get("summary", True)


def test_doctor_all_fine(desk: Desktop) -> None:
    def steps() -> None:
        desk.wait_window()
        desk.screenshot("notice-doctor-fine")
        desk.key("Escape")

    fine = [f for f in FINDINGS if f["level"] == "ok"]
    assert _show(desk, {"kind": "doctor", "findings": fine}, steps) == "close"


def test_doctor_long_list_scrolls(desk: Desktop) -> None:
    seen: dict[str, Any] = {}

    def steps() -> None:
        wid = desk.wait_window()
        seen["geometry"] = desk.geometry(wid)
        desk.screenshot("notice-doctor-long")
        desk.key("Tab", "Return")

    many = FINDINGS * 6
    assert _show(desk, {"kind": "doctor", "findings": many}, steps) == "close"
    assert seen["geometry"][3] < 700  # the list scrolls instead of growing off screen
