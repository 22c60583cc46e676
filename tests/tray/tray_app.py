"""A real tray for the tests: ``python tests/tray/tray_app.py STATUS``.

Shows :class:`helper.tray.tray.Tray` with the packaged applications and a
state of the given status; prints ``{"ready": backend}`` once the icon is up and
``{"action": ...}`` for every menu action, one JSON line each. Lines on stdin:
``normal`` / ``attention`` / ``no_key`` switch the state, ``quit`` (or EOF) stops.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from helper.apps import load_apps
from helper.tray.state import Status, TrayState
from helper.tray.tray import Tray

STATES = {
    "normal": TrayState(Status.NORMAL),
    "attention": TrayState(
        Status.ATTENTION,
        ("证书「沧州市即将到期测试有限公司」4 天后到期", "证书「沧州市已过期测试有限公司」已过期"),
    ),
    "no_key": TrayState(Status.NO_KEY),
}


def say(obj: dict[str, object]) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def main() -> None:
    apps = load_apps(Path("/nonexistent/apps.toml")).categories
    tray = Tray(
        on_action=lambda action: say({"action": action}),
        apps=apps,
        state=STATES[sys.argv[1] if len(sys.argv) > 1 else "normal"],
    )

    def commands() -> None:
        for line in sys.stdin:
            word = line.strip()
            if word in STATES:
                tray.set_state(STATES[word])
                say({"state": word})
            elif word == "quit":
                break
        tray.stop()

    def ready() -> None:
        say({"ready": tray.backend})
        threading.Thread(target=commands, daemon=True).start()

    tray.run(on_ready=ready)


if __name__ == "__main__":
    main()
