"""Autostart entry and URL scheme handlers in a fake HOME."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helper.config import Config
from helper.doctor.checks import autostart_findings, scheme_findings
from helper.doctor.checks.base import DoctorEnv
from tests.support.doctor import make_env


def codes(findings) -> list[tuple[str, str]]:
    return [(f.level, f.code) for f in findings]


def write_autostart(config_home: Path, exec_line: str) -> Path:
    path = config_home / "autostart" / "certhelper.desktop"
    path.parent.mkdir(parents=True)
    path.write_text(
        f"[Desktop Entry]\nType=Application\nName=证书助手\nExec={exec_line}\n", "utf-8"
    )
    return path


def test_autostart_missing(env: DoctorEnv) -> None:
    [f] = autostart_findings(Config(), env)
    assert (f.level, f.code) == ("warning", "autostart_missing")
    assert "certhelper install" in f.fix and "自动启动" in f.message
    assert f.fix_id == "autostart" and str(env.config_home) in f.detail


def test_autostart_present(env: DoctorEnv) -> None:
    write_autostart(env.config_home, "/home/u/.local/bin/certhelper run")
    assert codes(autostart_findings(Config(), env)) == [("ok", "autostart_ok")]


def test_autostart_honours_xdg_config_home(tmp_path: Path) -> None:
    env = make_env(tmp_path, config_home=tmp_path / "xdg")
    write_autostart(tmp_path / "xdg", "certhelper run")
    assert codes(autostart_findings(Config(), env)) == [("ok", "autostart_ok")]


def test_autostart_without_run(env: DoctorEnv) -> None:
    write_autostart(env.config_home, "certhelper serve")
    assert codes(autostart_findings(Config(), env)) == [("warning", "autostart_invalid")]


def fake_xdg_mime(answers: dict[str, str]):
    def run(argv, extra_env):
        assert argv[1:3] == ["query", "default"]
        return 0, answers.get(argv[3].split("/")[1], "") + "\n"

    return run


def test_schemes_registered(tmp_path: Path) -> None:
    handler = "certhelper-url.desktop"
    env = make_env(
        tmp_path,
        commands={"xdg-mime": "/usr/bin/xdg-mime"},
        run=fake_xdg_mime({"p11": handler, "certhelper": handler}),
    )
    assert codes(scheme_findings(Config(), env)) == [("ok", "url_schemes_ok")]


def test_schemes_missing_or_taken(tmp_path: Path) -> None:
    env = make_env(
        tmp_path,
        commands={"xdg-mime": "/usr/bin/xdg-mime"},
        run=fake_xdg_mime({"p11": "other.desktop"}),
    )
    [f] = scheme_findings(Config(), env)
    assert (f.level, f.code) == ("warning", "url_schemes_missing")
    assert "other.desktop" in f.detail and "certhelper install" in f.fix
    assert f.fix_id == "url-schemes" and "修复" in f.message


def test_schemes_without_xdg_mime(env: DoctorEnv) -> None:
    assert codes(scheme_findings(Config(), env)) == [("warning", "url_schemes_unchecked")]


@pytest.mark.skipif(shutil.which("xdg-mime") is None, reason="xdg-utils not installed")
def test_schemes_with_real_xdg_mime(tmp_path: Path) -> None:
    env = make_env(tmp_path, commands=None)
    [f] = scheme_findings(Config(), env)
    assert f.code == "url_schemes_missing"  # an empty HOME handles nothing
