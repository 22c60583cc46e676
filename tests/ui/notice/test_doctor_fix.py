"""检测修复 under Xvfb: the hall is blocked by the browser (✘), 修复 is pressed with the
keyboard, the fix runs, the window checks again and the line turns ✔.

The root fix goes through the same runner as in real use; the test hook
CERTHELPER_ELEVATE=direct makes that runner start ``python -m installer.admin … --root
TMP`` instead of ``pkexec certhelper-admin …`` (no polkit agent runs under Xvfb; the suite
runs as root, so the privileged helper really writes, under a temporary root).
Screenshots: ``notice-doctor-fix-before`` and ``notice-doctor-fix-after``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from helper.config import Config
from helper.doctor.checks.base import DoctorEnv
from helper.doctor.run import machine_findings
from helper.ui.notice.client import run_notice
from helper.ui.style import OK
from installer.policy import policy_paths
from tests.support.desktop import Desktop
from tests.support.installer import make_home

HALL = "http://111.62.46.105:9010"


def _green_marks(desk: Desktop) -> int:
    """How many pixels have the ✔ colour."""
    _w, _h, rgb = desk.pixels()
    want = bytes.fromhex(OK.lstrip("#"))
    return sum(1 for i in range(0, len(rgb), 3) if rgb[i : i + 3] == want)


def test_fix_turns_the_blocked_hall_green(
    desk: Desktop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0:
        pytest.fail("the root fix runs certhelper-admin for real: run this suite as root")
    home = make_home(tmp_path, monkeypatch)
    home.run("install")  # the user-level part is done: only the browser blocks the hall
    root = tmp_path / "policy-root"
    root.mkdir()
    hooks = {"CERTHELPER_POLICY_ROOT": str(root), "CERTHELPER_ELEVATE": "direct"}
    for k, v in hooks.items():
        monkeypatch.setenv(k, v)
    before = [f for f in machine_findings(Config(), DoctorEnv.default()) if f.check != "daemon"]
    codes = {f.code: f for f in before}
    assert codes["browser_policy_missing"].level == "error"
    assert next(f.fix_id for f in before if f.level != "ok" and f.fix_id) == "browser-policy"
    seen: dict[str, Any] = {}

    def steps() -> None:
        desk.wait_window()
        time.sleep(0.5)
        desk.screenshot("notice-doctor-fix-before")
        seen["green_before"] = _green_marks(desk)
        desk.key("Return")  # the first 修复: the blocked hall's
        deadline = time.monotonic() + 30
        while not all(p.exists() for p in policy_paths(root)) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)  # the window checks again and redraws
        desk.screenshot("notice-doctor-fix-after")
        seen["green_after"] = _green_marks(desk)
        desk.key("Escape")

    request = {"kind": "doctor", "findings": [f.to_dict() for f in before]}
    env = {"DISPLAY": desk.display, **home.env, **hooks}
    reply = desk.drive(run_notice(request, env=env), steps)
    assert reply["result"] == "close"
    assert reply["fixed"] == ["browser-policy"]
    assert "browser_policy_missing" not in reply["problems"]
    doc = json.loads(policy_paths(root)[0].read_text())
    assert HALL in doc["OverrideSecurityRestrictionsOnInsecureOrigin"]
    # the ✘ line became a ✔ line: more of the ✔ colour on screen than before
    assert seen["green_after"] > seen["green_before"]


# --- in-process: details, cancel, merge (a test double stands in for the fixer) ------


FINDINGS = [
    {"level": "ok", "code": "config", "message": "配置 (config)", "fix": "", "detail": "",
     "fix_id": "", "check": "", "needs_root": False},
    {"level": "ok", "code": "nss_trusted", "message": "浏览器信任证书助手", "fix": "",
     "detail": "/home/u/.pki/nssdb", "fix_id": "", "check": "nss", "needs_root": False},
    {"level": "error", "code": "browser_policy_missing", "message": "浏览器阻止了网上大厅",
     "fix": "sudo certhelper install --system", "detail": "LocalNetworkAccessAllowedForUrls",
     "fix_id": "browser-policy", "check": "browser_policy", "needs_root": True},
    {"level": "ok", "code": "token", "message": "USB Key", "fix": "", "detail": "",
     "fix_id": "", "check": "", "needs_root": False},
]  # fmt: skip


def test_merge_replaces_only_the_rechecked_lines() -> None:
    from helper.ui.notice.doctor import merge_findings

    fixed = dict(FINDINGS[2], level="ok", code="browser_policy_ok", fix_id="")
    merged = merge_findings(FINDINGS, [FINDINGS[1], fixed])
    assert [f["code"] for f in merged] == ["config", "nss_trusted", "browser_policy_ok", "token"]


def test_details_unfold_and_a_cancelled_fix_changes_nothing(
    xvfb: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helper.ui.notice.doctor import DoctorNotice

    monkeypatch.setenv("DISPLAY", xvfb)
    asked: list[str] = []

    def cancelled(fix_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        asked.append(fix_id)  # stands in for pkexec's dismissed dialog (exit 126)
        text = "– 允许网上大厅连接证书助手: 已取消，未做任何更改 (cancelled, nothing changed)"
        outcome = {"ok": False, "cancelled": True, "browser": "", "text": text}
        return outcome, [FINDINGS[1], FINDINGS[2]]

    notice = DoctorNotice([dict(f) for f in FINDINGS], None, fixer=cancelled)
    try:
        text = notice.text
        shown = text.get("1.0", "end")
        assert shown.index("浏览器阻止了网上大厅") < shown.index("配置")  # problems first
        assert "LocalNetworkAccessAllowedForUrls" not in shown  # folded
        assert "/home/u/.pki/nssdb" not in shown  # ok lines have no 详细信息
        assert len(notice.fix_buttons) == 1
        error_index = 2
        notice.toggle(error_index)
        assert "LocalNetworkAccessAllowedForUrls" in text.get("1.0", "end")
        notice.toggle(error_index)
        assert "LocalNetworkAccessAllowedForUrls" not in text.get("1.0", "end")

        notice.fix_buttons[0].invoke()
        assert "管理员密码" in notice.status.cget("text")  # a root fix: polkit asks
        deadline = time.monotonic() + 5
        while notice._results.empty() and time.monotonic() < deadline:
            time.sleep(0.05)
        notice._poll()
        assert asked == ["browser-policy"]
        assert "已取消，未做任何更改" in notice.status.cget("text")
        assert notice.fixed == []
        assert [f["code"] for f in notice.findings if f["level"] != "ok"] == [
            "browser_policy_missing"
        ]
        assert str(notice.fix_buttons[0]["state"]) != "disabled"  # can be tried again
    finally:
        notice.finish({"result": "cancel"})
    assert notice.result == {"result": "close", "fixed": [],
                             "problems": ["browser_policy_missing"]}  # fmt: skip
