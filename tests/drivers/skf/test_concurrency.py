"""Processes sharing a device count wrong PINs consistently (flock + atomic rewrite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from drivers import errors as E
from drivers.skf import PinType
from drivers.types import Pin
from tests.drivers.skf.conftest import ADMIN_PIN, ROOT, USER_PIN, WRONG_PIN, Skf, skf_build

PROCESSES = 4
TRIES_EACH = 3
RETRIES = PROCESSES * TRIES_EACH  # 12: every try of every process is counted once

CHILD = r"""
import json, os, sys, time
from pathlib import Path
from drivers import errors as E
from drivers.skf import SkfLibrary
from drivers.types import Pin

request = json.loads(sys.stdin.readline())  # the PIN comes on stdin, never on a command line
lib = SkfLibrary(request["library"])
dev = lib.connect(request["device"])
app = lib.open_application(dev, request["application"])
go = Path(request["go"])
while not go.exists():
    time.sleep(0.005)
left = []
for _ in range(request["tries"]):
    try:
        lib.verify_pin(app, Pin(request["pin"]))
        left.append("accepted")
    except (E.PinIncorrect, E.PinLocked) as exc:
        left.append(exc.data["retries_left"])
lib.disconnect(dev)
print(json.dumps(left))
"""


def test_concurrent_wrong_pins_are_all_counted(skf: Skf, tmp_path: Path) -> None:
    setup = skf_build.DeviceSetup(device_name="并发测试Key", label="并发测试Key")
    skf_build.write_device(skf.dir, setup)
    dev = skf.lib.connect(setup.device_name)
    skf._opened.append(dev)
    app = skf.lib.create_application(
        dev,
        "APP",
        admin_pin=Pin(ADMIN_PIN),
        user_pin=Pin(USER_PIN),
        admin_retries=6,
        user_retries=RETRIES,
    )
    assert skf.lib.pin_info(app).max_retries == RETRIES
    go = tmp_path / "go"
    request = {
        "library": skf.lib.path,
        "device": setup.device_name,
        "application": "APP",
        "go": str(go),
        "tries": TRIES_EACH,
        "pin": WRONG_PIN,
    }
    env = {**os.environ, "SOFTSKF_DIR": str(skf.dir), "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=ROOT,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    for child in children:
        assert child.stdin is not None
        child.stdin.write(json.dumps(request) + "\n")
        child.stdin.flush()
    time.sleep(0.5)  # let every child load the library and open the application
    go.touch()
    reported: list[int] = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        reported += json.loads(out)
    # each try saw its own counter value: none lost, none counted twice
    assert sorted(reported) == list(range(RETRIES))
    info = skf.lib.pin_info(app)
    assert info.remaining == 0 and info.locked
    try:
        skf.lib.verify_pin(app, Pin(USER_PIN))
        raise AssertionError("a locked PIN was accepted")
    except E.PinLocked:
        pass
    assert skf.lib.pin_info(app, PinType.ADMIN).remaining == 6
