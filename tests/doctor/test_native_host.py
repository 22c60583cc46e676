"""The native-host check in a fake HOME, and its 修复 (the installer's own code)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helper.config import Config
from helper.doctor.checks import native_host_findings
from helper.doctor.checks.base import FIXES, DoctorEnv
from helper.doctor.fixes import FixContext, apply_fix
from helper.webext.ids import CHROMIUM_EXTENSION_ID, FIREFOX_ADDON_ID
from installer import manifest as manifest_mod
from installer.native_host import manifest_paths
from tests.support.doctor import make_env
from tests.support.installer import Home, make_home

GOOD_ORIGINS = [f"chrome-extension://{CHROMIUM_EXTENSION_ID}/"]


def codes(findings) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(f.level, f.code) for f in findings]


def launcher(env: DoctorEnv, exec_line: str = "exec /bin/sh -c true") -> Path:
    path = env.data_dir / "certhelper-native-host"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{exec_line}\n", "utf-8")
    path.chmod(0o755)
    return path


def write(env: DoctorEnv, family: str, **body: object) -> Path:
    path = manifest_paths(env.home, env.config_home)[family]
    path.parent.mkdir(parents=True, exist_ok=True)
    base: dict[str, object] = {
        "name": "org.certhelper.host",
        "path": str(launcher(env)),
        "type": "stdio",
    }
    if family == "firefox":
        base["allowed_extensions"] = [FIREFOX_ADDON_ID]
    else:
        base["allowed_origins"] = GOOD_ORIGINS
    path.write_text(json.dumps({**base, **body}), "utf-8")
    return path


def test_no_browser_nothing_to_say(env: DoctorEnv) -> None:
    assert native_host_findings(Config(), env) == []


def test_browser_on_path_without_host(tmp_path: Path) -> None:
    env = make_env(tmp_path, commands={"chromium": "/usr/bin/chromium"})
    [f] = native_host_findings(Config(), env)
    assert (f.level, f.code, f.fix_id) == ("warning", "native_host_missing", "native-host")
    assert "Chromium" in f.message and "修复" in f.message and "click 修复" in f.message
    assert "NativeMessagingHosts" in f.detail and "certhelper install" in f.fix
    assert "native-host" in FIXES


def test_every_present_family_registered(env: DoctorEnv) -> None:
    (env.config_home / "google-chrome").mkdir(parents=True)
    (env.home / ".mozilla" / "firefox").mkdir(parents=True)
    write(env, "google-chrome")
    write(env, "firefox")
    [f] = native_host_findings(Config(), env)
    assert (f.level, f.code) == ("ok", "native_host_ok")
    assert "Google Chrome" in f.message and "Firefox" in f.message
    assert "Chromium" not in f.message  # not present: not checked


def test_one_family_missing_among_good_ones(env: DoctorEnv) -> None:
    (env.config_home / "chromium").mkdir(parents=True)
    (env.home / ".mozilla" / "firefox").mkdir(parents=True)
    write(env, "chromium")
    [f] = native_host_findings(Config(), env)
    assert f.code == "native_host_missing" and "Firefox" in f.message
    assert "Chromium" not in f.message and ".mozilla" in f.detail


@pytest.mark.parametrize(
    ("family", "body", "said"),
    [
        ("chromium", {"name": "org.other.host"}, "name is 'org.other.host'"),
        ("chromium", {"type": "socket"}, "type is 'socket'"),
        # an extra extension admitted is as wrong as a missing one
        (
            "chromium",
            {"allowed_origins": [*GOOD_ORIGINS, "chrome-extension://x/"]},
            "allowed_origins",
        ),
        ("chromium", {"allowed_origins": []}, "allowed_origins"),
        ("firefox", {"allowed_extensions": ["evil@example"]}, "allowed_extensions"),
        ("chromium", {"path": "relative/launcher"}, "not absolute"),
        ("chromium", {"path": "/nonexistent/launcher"}, "does not exist"),
    ],
)
def test_invalid_manifests(env: DoctorEnv, family: str, body: dict, said: str) -> None:  # type: ignore[type-arg]
    write(env, family, **body)  # an existing manifest makes the family present
    [f] = native_host_findings(Config(), env)
    assert (f.level, f.code, f.fix_id) == ("warning", "native_host_invalid", "native-host")
    assert said in f.detail, f.detail


def test_not_json(env: DoctorEnv) -> None:
    path = write(env, "chromium")
    path.write_text("{not json", "utf-8")
    [f] = native_host_findings(Config(), env)
    assert f.code == "native_host_invalid" and "not valid JSON" in f.detail


def test_launcher_not_executable(env: DoctorEnv) -> None:
    write(env, "chromium")
    (env.data_dir / "certhelper-native-host").chmod(0o644)
    [f] = native_host_findings(Config(), env)
    assert f.code == "native_host_invalid" and "not executable" in f.detail


def test_launcher_runs_a_python_that_is_gone(env: DoctorEnv) -> None:
    write(env, "chromium")
    launcher(env, 'exec /gone/venv/bin/python -m helper.bridge.extension.host "$@"')
    [f] = native_host_findings(Config(), env)
    assert f.code == "native_host_invalid" and "/gone/venv/bin/python" in f.detail


def test_not_linux(tmp_path: Path) -> None:
    env = make_env(tmp_path, platform="win32", commands={"chromium": "/usr/bin/chromium"})
    assert native_host_findings(Config(), env) == []


def test_fix_registers_and_uninstall_removes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """修复 writes what install writes, recorded in the install manifest."""
    home: Home = make_home(tmp_path, monkeypatch)
    env = DoctorEnv(
        home=home.home,
        config_home=home.home / ".config",
        data_dir=home.data,
        control_dir=None,
        commands={"chromium": "/usr/bin/chromium", "firefox": "/usr/bin/firefox"},
    )
    [before] = native_host_findings(Config(), env)
    assert before.code == "native_host_missing"
    outcome = apply_fix("native-host", FixContext(Config(), env))
    assert outcome.ok, outcome
    assert FIXES["native-host"].browser == "reload" and not FIXES["native-host"].needs_root
    [after] = native_host_findings(Config(), env)
    assert (after.level, after.code) == ("ok", "native_host_ok"), after.detail
    recorded = manifest_mod.load(home.data / "install-manifest.json").files
    launcher_file = home.data / "certhelper-native-host"
    assert str(launcher_file) in recorded and os.access(launcher_file, os.X_OK)
    for path in manifest_paths(home.home, home.home / ".config").values():
        assert str(path) in recorded
    home.run("uninstall")
    assert not launcher_file.exists()
    [gone] = native_host_findings(Config(), env)
    assert gone.code == "native_host_missing"
