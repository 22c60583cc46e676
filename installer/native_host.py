"""The native-messaging host manifests for the browser extension (user level).

Chromium-family browsers: ``allowed_origins`` = our extension only; Firefox:
``allowed_extensions``. ``path`` is a small launcher that runs
``certhelper native-host``. The caller passes everything (the installer imports
nothing from helper).
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

HOST_NAME = "org.certhelper.host"
#: Linux user-level directories (relative to HOME) per browser
CHROMIUM_DIRS = (
    ".config/chromium/NativeMessagingHosts",
    ".config/google-chrome/NativeMessagingHosts",
    ".config/microsoft-edge/NativeMessagingHosts",
)
FIREFOX_DIR = ".mozilla/native-messaging-hosts"


def write_launcher(path: Path, command: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexec " + shlex.join(command) + ' native-host "$@"\n', "utf-8")
    path.chmod(0o755)
    return path


def install(
    home: Path, launcher: Path, extension_id: str, firefox_id: str | None = None
) -> list[Path]:
    """Write every manifest; return the files written."""
    written = []
    base: dict[str, object] = {
        "name": HOST_NAME,
        "description": "certhelper",
        "path": str(launcher),
        "type": "stdio",
    }
    for rel in CHROMIUM_DIRS:
        target = home / rel / f"{HOST_NAME}.json"
        body = dict(base, allowed_origins=[f"chrome-extension://{extension_id}/"])
        written.append(_write(target, body))
    if firefox_id:
        target = home / FIREFOX_DIR / f"{HOST_NAME}.json"
        written.append(_write(target, dict(base, allowed_extensions=[firefox_id])))
    return written


def uninstall(home: Path) -> list[Path]:
    removed = []
    for rel in (*CHROMIUM_DIRS, FIREFOX_DIR):
        target = home / rel / f"{HOST_NAME}.json"
        if target.exists():
            target.unlink()
            removed.append(target)
    return removed


def _write(target: Path, body: dict[str, object]) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=2), "utf-8")
    os.replace(tmp, target)
    return target
