"""The browser extension's native-messaging host, registered at user level.

``certhelper install`` writes a launcher (``<data dir>/certhelper-native-host``, a
``/bin/sh`` script that execs the command in :class:`NativeHostSpec`) and one host
manifest per browser family, named after the host (``org.certhelper.host.json``):

- Chromium, Google Chrome, Microsoft Edge: ``$XDG_CONFIG_HOME/<browser>/
  NativeMessagingHosts/`` (the browsers' user data directories follow XDG_CONFIG_HOME),
  ``allowed_origins`` = ``chrome-extension://<ID>/`` for our extension IDs only;
- Firefox: ``~/.mozilla/native-messaging-hosts/``, ``allowed_extensions`` = our add-on IDs.

Every file is written through :func:`installer.desktop.write_if_changed`, so a second
install reports "exists" and the install manifest lists exactly what ``uninstall``
removes. The caller passes everything (the installer imports nothing from helper).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from installer import paths
from installer.context import NativeHostSpec
from installer.desktop import remove_recorded, write_if_changed
from installer.manifest import Manifest
from installer.report import Step

HOST_NAME = "org.certhelper.host"
HOST_FILE = f"{HOST_NAME}.json"
NAME = "浏览器扩展连接 native messaging host"
LAUNCHER_STEP = "扩展本机程序 native host launcher"
#: Chromium-family browsers: the directory under $XDG_CONFIG_HOME (= the user data dir)
CHROMIUM_FAMILIES: dict[str, str] = {
    "chromium": "chromium",
    "google-chrome": "google-chrome",
    "microsoft-edge": "microsoft-edge",
}
FIREFOX = "firefox"
FIREFOX_DIR = ".mozilla/native-messaging-hosts"


def manifest_paths(home: Path, config_home: Path) -> dict[str, Path]:
    """Browser family -> where its user-level host manifest lives."""
    out = {
        family: config_home / d / "NativeMessagingHosts" / HOST_FILE
        for family, d in CHROMIUM_FAMILIES.items()
    }
    out[FIREFOX] = home / FIREFOX_DIR / HOST_FILE
    return out


def launcher_text(spec: NativeHostSpec) -> str:
    lines = [
        "#!/bin/sh",
        f"# {HOST_NAME}: started by the browser for the certhelper extension",
        "# (written by `certhelper install`; removed by `certhelper uninstall`)",
    ]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in spec.env]
    lines.append(f'exec {shlex.join(spec.command)} "$@"')
    return "\n".join(lines) + "\n"


def manifest_body(family: str, launcher: Path, spec: NativeHostSpec) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": HOST_NAME,
        "description": "certhelper (证书助手)",
        "path": str(launcher),
        "type": "stdio",
    }
    if family == FIREFOX:
        body["allowed_extensions"] = list(spec.firefox_ids)
    else:
        body["allowed_origins"] = [f"chrome-extension://{i}/" for i in spec.chromium_ids]
    return body


def manifest_text(family: str, launcher: Path, spec: NativeHostSpec) -> str:
    return json.dumps(manifest_body(family, launcher, spec), ensure_ascii=False, indent=2) + "\n"


def families(spec: NativeHostSpec) -> list[str]:
    """The families ``spec`` has IDs for."""
    out = list(CHROMIUM_FAMILIES) if spec.chromium_ids else []
    return [*out, FIREFOX] if spec.firefox_ids else out


def install(
    spec: NativeHostSpec, launcher: Path, manifest: Manifest, *, dry_run: bool = False
) -> list[Step]:
    """Write the launcher and the host manifests (only what differs)."""
    if not dry_run:
        launcher.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # certhelper's own
    status = write_if_changed(launcher, launcher_text(spec), manifest, dry_run=dry_run, mode=0o755)
    steps = [Step(LAUNCHER_STEP, "exists" if status == "exists" else "done", str(launcher))]
    where = manifest_paths(paths.home(), paths.config_home())
    changed = []
    for family in families(spec):
        text = manifest_text(family, launcher, spec)
        if write_if_changed(where[family], text, manifest, dry_run=dry_run) == "done":
            changed.append(where[family])
    if changed:
        steps.append(Step(NAME, "done", ", ".join(map(str, changed))))
    else:
        listed = ", ".join(str(where[f]) for f in families(spec))
        steps.append(Step(NAME, "exists", listed or "-"))
    return steps


def uninstall(launcher: Path, manifest: Manifest, *, dry_run: bool = False) -> list[Step]:
    """Remove the host manifests and the launcher that install created (and only those)."""
    where = manifest_paths(paths.home(), paths.config_home())
    removed = [p for p in where.values() if remove_recorded(p, manifest, dry_run=dry_run) == "done"]
    if removed:
        steps = [Step(NAME, "done", "已删除 removed " + ", ".join(map(str, removed)))]
    else:
        steps = [Step(NAME, "skipped", "未由安装程序添加 not added by install")]
    if remove_recorded(launcher, manifest, dry_run=dry_run) == "done":
        steps.append(Step(LAUNCHER_STEP, "done", f"已删除 removed {launcher}"))
    return steps
