"""The window launcher: request on stdin, config in the environment, one window
of each kind, replies and exit code reported when the window closes."""

from __future__ import annotations

import os
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from helper.ui.launch import Window, Windows, window_kind

# stands in for `python`: answers `-m helper.ui.<name> [args]` like a window would
FAKE = """#!{python}
import json, os, sys
line = sys.stdin.readline()
print(json.dumps({{"argv": sys.argv[1:], "request": line.strip(),
                  "config": os.environ.get("CERTHELPER_CONFIG")}}), flush=True)
print("not json", flush=True)
print(json.dumps({{"result": "renew"}}), flush=True)
sys.stdin.read()  # a window stays up until the daemon goes (stdin closes)
sys.exit(3)
"""


@pytest.fixture
def fake_python(tmp_path: Path) -> str:
    path = tmp_path / "fake-python"
    path.write_text(FAKE.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_kinds() -> None:
    assert window_kind("mycerts", None) == "mycerts"
    assert window_kind("notice", {"kind": "support"}) == "notice:support"
    assert window_kind("notice", {"kind": 3}) == "notice"


def test_open_talk_and_close(fake_python: str) -> None:
    ended: list[tuple[Window, list[dict[str, Any]], int]] = []
    done = threading.Event()

    def on_exit(window: Window, replies: list[dict[str, Any]], code: int) -> None:
        ended.append((window, replies, code))
        done.set()

    windows = Windows(python=fake_python, on_exit=on_exit)
    env = {"CERTHELPER_CONFIG": "/etc/certhelper.toml"}
    proc = windows.open("notice", {"kind": "support"}, env=env, args=("--x", "1"))
    assert windows.running("notice", {"kind": "support"})
    assert not windows.running("notice", {"kind": "about"})
    # the same kind again: the running one, no second process
    assert windows.open("notice", {"kind": "support"}, env=env) is proc
    windows.close_all()  # the daemon leaves: stdin closes, the window ends
    assert done.wait(10)
    window, replies, code = ended[0]
    assert (window.name, window.request, window.args) == (
        "notice",
        {"kind": "support"},
        ("--x", "1"),
    )
    assert code == 3
    assert replies[0] == {
        "argv": ["-m", "helper.ui.notice", "--x", "1"],
        "request": '{"kind": "support"}',
        "config": "/etc/certhelper.toml",
    }
    assert replies[1:] == [{"result": "renew"}]  # lines that are not JSON objects are skipped
    assert not windows.running("notice", {"kind": "support"})
    again = windows.open("notice", {"kind": "support"})
    assert again is not proc
    windows.close_all()
    again.wait(10)


def test_no_request_no_line(fake_python: str) -> None:
    got: list[list[dict[str, Any]]] = []
    done = threading.Event()
    windows = Windows(python=fake_python, on_exit=lambda w, r, c: (got.append(r), done.set()))
    windows.open("mycerts")
    time.sleep(0.5)
    windows.close_all()
    assert done.wait(10)
    assert got[0][0]["request"] == ""  # nothing was written before stdin closed
    assert got[0][0]["config"] == os.environ.get("CERTHELPER_CONFIG")


def test_bad_names() -> None:
    for name in ("../x", "a.b", "", "x y"):
        with pytest.raises(ValueError):
            Windows().open(name)


def test_env_is_for_the_child_only(fake_python: str) -> None:
    before = dict(os.environ)
    results: list[dict[str, Any]] = []
    done = threading.Event()
    windows = Windows(
        python=fake_python, on_exit=lambda w, r, c: (results.append(r[0]), done.set())
    )
    windows.open("changepin", env={"CERTHELPER_CONFIG": "/a.toml"})
    windows.close_all()
    assert done.wait(10)
    assert results[0]["config"] == "/a.toml"
    assert dict(os.environ) == before
