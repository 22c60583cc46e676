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
