"""The browser extension's native host: registered for every browser family present?

For each family that is present (its user data directory exists, its program is on
PATH, or a host manifest is already there) the user-level host manifest must exist,
be a JSON object named ``org.certhelper.host`` of type ``stdio``, admit exactly our
extension (``allowed_origins`` / ``allowed_extensions``), and name an executable
``path``; when that is our launcher, the program it execs must exist too.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from helper.config import Config
from helper.doctor.checks.base import DoctorEnv, Finding
from helper.webext.ids import CHROMIUM_EXTENSION_ID, FIREFOX_ADDON_ID
from installer.native_host import FIREFOX, HOST_NAME, manifest_paths

INSTALL_FIX = "运行 certhelper install (run `certhelper install`)"
#: the programs that mean a family is installed
PROGRAMS: dict[str, tuple[str, ...]] = {
    "chromium": ("chromium", "chromium-browser"),
    "google-chrome": ("google-chrome", "google-chrome-stable"),
    "microsoft-edge": ("microsoft-edge", "microsoft-edge-stable"),
    FIREFOX: ("firefox", "firefox-esr"),
}
LABELS = {
    "chromium": "Chromium",
    "google-chrome": "Google Chrome",
    "microsoft-edge": "Microsoft Edge",
    FIREFOX: "Firefox",
}


def _profile_dir(family: str, env: DoctorEnv) -> Path:
    if family == FIREFOX:
        return env.home / ".mozilla" / "firefox"
    return env.config_home / family


def present_families(env: DoctorEnv) -> list[str]:
    where = manifest_paths(env.home, env.config_home)
    return [
        family
        for family, programs in PROGRAMS.items()
        if _profile_dir(family, env).is_dir()
        or where[family].exists()
        or any(env.which(p) for p in programs)
    ]


def _expected_allowed(family: str) -> tuple[str, list[str]]:
    if family == FIREFOX:
        return "allowed_extensions", [FIREFOX_ADDON_ID]
    return "allowed_origins", [f"chrome-extension://{CHROMIUM_EXTENSION_ID}/"]


def _launcher_problem(path: Path) -> str | None:
    """What is wrong with the program the manifest names (None: nothing)."""
    if not path.is_absolute():
        return f"path is not absolute: {path}"
    if not path.is_file():
        return f"path does not exist: {path}"
    if not os.access(path, os.X_OK):
        return f"path is not executable: {path}"
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # a binary: executable is all we can say
    for line in text.splitlines():
        if line.startswith("exec "):
            try:
                argv = shlex.split(line[5:])
            except ValueError:
                return f"{path}: cannot parse its exec line"
            program = Path(argv[0]) if argv else None
            if program is not None and program.is_absolute() and not os.access(program, os.X_OK):
                return f"{path} runs {program}, which does not exist"
    return None


def manifest_problem(family: str, path: Path) -> tuple[str, str] | None:
    """(kind, detail) of what is wrong with one host manifest: kind "missing" or
    "invalid"; None when it is right."""
    if not path.exists():
        return "missing", f"no host manifest: {path}"
    try:
        body = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return "invalid", f"{path}: not valid JSON ({e})"
    if not isinstance(body, dict):
        return "invalid", f"{path}: not a JSON object"
    if body.get("name") != HOST_NAME:
        return "invalid", f"{path}: name is {body.get('name')!r}, not {HOST_NAME!r}"
    if body.get("type") != "stdio":
        return "invalid", f"{path}: type is {body.get('type')!r}, not 'stdio'"
    key, expected = _expected_allowed(family)
    if body.get(key) != expected:
        return "invalid", f"{path}: {key} is {body.get(key)!r}, expected {expected!r}"
    launcher = body.get("path")
    if not isinstance(launcher, str) or not launcher:
        return "invalid", f"{path}: no path"
    problem = _launcher_problem(Path(launcher))
    return ("invalid", f"{path}: {problem}") if problem else None


def native_host_findings(config: Config, env: DoctorEnv) -> list[Finding]:
    if not env.is_linux:
        return []
    families = present_families(env)
    if not families:
        return []
    where = manifest_paths(env.home, env.config_home)
    problems = {f: p for f in families if (p := manifest_problem(f, where[f])) is not None}
    if not problems:
        names = ", ".join(LABELS[f] for f in families)
        return [
            Finding(
                "ok",
                "native_host_ok",
                f"浏览器扩展可以连接证书助手 (the browser extension can reach the helper: {names})",
                detail="; ".join(str(where[f]) for f in families),
            )
        ]
    missing = any(kind == "missing" for kind, _ in problems.values())
    names = "、".join(LABELS[f] for f in problems)
    return [
        Finding(
            "warning",
            "native_host_missing" if missing else "native_host_invalid",
            f"{names} 中的证书助手扩展无法连接证书助手，通过扩展登录网上大厅会失败。"
            "点「修复」即可解决。"
            "(The certhelper extension cannot reach the helper in this browser; "
            "click 修复 to fix it.)",
            INSTALL_FIX,
            detail="; ".join(d for _, d in problems.values()),
            fix_id="native-host",
        )
    ]
