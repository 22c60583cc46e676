"""run_doctor with an injected environment, and the real `certhelper doctor --json`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from helper.config import Config
from helper.doctor import run_doctor
from helper.services.tokens import TokenService
from tests.support.cli import Cli
from tests.support.doctor import fake_sysfs, free_port, make_env


def test_run_doctor_uses_the_injected_env(tmp_path: Path) -> None:
    env = make_env(tmp_path, sysfs_root=fake_sysfs(tmp_path), file_exists=lambda p: False)
    config = Config(bridge_port=free_port(), hebca_port=free_port())
    findings = run_doctor(config, TokenService([]), env=env)
    found = [f.code for f in findings]
    for code in (
        "config",
        "daemon_not_running",
        "tls_missing",
        "autostart_missing",
        "url_schemes_unchecked",
        "browser_policy_missing",
        "no_module",
        "usb_key_no_driver",
    ):
        assert code in found, code
    assert all(f.fix for f in findings if f.level != "ok")


def test_a_broken_check_does_not_stop_the_doctor(tmp_path: Path, monkeypatch) -> None:
    def boom(config, env):
        raise RuntimeError("kaputt")

    monkeypatch.setattr("helper.doctor.run.MACHINE_CHECKS", (("daemon", boom),))
    findings = run_doctor(Config(), TokenService([]), env=make_env(tmp_path))
    assert "check_failed" in [f.code for f in findings]
    assert "no_module" in [f.code for f in findings]


def test_cli_doctor_json_in_a_temp_home(cli: Cli) -> None:
    with cli.config.open("a") as f:
        f.write(f"bridge_port = {free_port()}\nhebca_port = {free_port()}\n")
    r = cli("doctor", "--json")
    assert r.returncode == 9, r.stderr
    codes = {f["code"] for f in r.json()}
    expected = {
        "daemon_not_running",
        "tls_missing",
        "autostart_missing",
        "module_loaded",
        "cert_expired",
        "cert_urgent",
    }
    if shutil.which("xdg-mime"):
        expected.add("url_schemes_missing")
    assert expected <= codes, codes
    assert codes & {"browser_policy_missing", "browser_policy_ok"}
    assert all(
        f["fix"] for f in r.json() if f["level"] != "ok" and f["code"] != "signing_unsupported"
    )


def test_doctor_never_tries_a_pin(fresh_cli: Cli) -> None:
    """After doctor runs, SoftHSM's count-low flag is untouched on every token."""
    before = {t["serial"]: t["pin_state"] for t in fresh_cli("list", "--json").json()["tokens"]}
    assert set(before.values()) == {"ok"}
    for _ in range(2):
        r = fresh_cli("doctor", "--json")
        assert r.returncode == 9, r.stderr
        assert not {f["code"] for f in r.json()} & {"pin_count_low", "pin_final_try", "pin_locked"}
    after = fresh_cli("list", "--json").json()["tokens"]
    assert {t["serial"]: t["pin_state"] for t in after} == before
    assert json.dumps(after).count("count_low") == 0
