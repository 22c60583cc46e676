"""修复 / ``certhelper doctor --fix``: findings name their fixes; user-level fixes run the
installer's own code in a temporary HOME (real certutil, real xdg-mime); the root fix runs
``certhelper-admin`` — through a recorded pkexec command line, or (test hook
CERTHELPER_ELEVATE=direct, the suite runs as root) directly against a temporary root."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from helper.config import Config
from helper.doctor.checks.base import FIXES, DoctorEnv
from helper.doctor.fixes import FixContext, apply_fix, fixes_for
from helper.doctor.repair import repair
from helper.doctor.run import machine_findings
from installer import manifest as manifest_mod
from installer.policy import policy_paths, write_policy
from tests.support.installer import Home, make_home, snapshot

HALL = "http://111.62.46.105:9010"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    if os.geteuid() != 0:
        pytest.fail("the root fix runs certhelper-admin for real: run this suite as root")
    return make_home(tmp_path, monkeypatch)


def doctor_env(home: Home) -> DoctorEnv:
    return DoctorEnv(
        home=home.home,
        config_home=home.home / ".config",
        data_dir=home.data,
        control_dir=home.root / "run" / "certhelper",
        policy_root=home.root / "policy-root",
        timeout=0.5,
    )


def by_code(findings):  # type: ignore[no-untyped-def]
    return {f.code: f for f in findings}


def test_every_fix_id_is_known_and_named_by_a_finding(home: Home) -> None:
    home.ensure_identity()
    (home.home / ".config" / "chromium").mkdir(parents=True)  # a browser, PATH or not
    env = doctor_env(home)
    found = machine_findings(Config(), env)
    for f in found:
        assert not f.fix_id or f.fix_id in FIXES, f
        assert f.check, f  # run_doctor tells which check said it
    codes = by_code(found)
    assert codes["nss_missing"].fix_id == "trust-local-ca"
    assert codes["autostart_missing"].fix_id == "autostart"
    assert codes["url_schemes_missing"].fix_id == "url-schemes"
    policy = codes["browser_policy_missing"]
    assert policy.fix_id == "browser-policy" and policy.needs_root
    assert policy.to_dict()["needs_root"] is True
    # the headline speaks to the accountant; the jargon is in the details
    assert "浏览器阻止了网上大厅" in policy.message and "管理员密码" in policy.message
    for word in ("policy", "策略", "managed", "/etc/"):
        assert word not in policy.message
    assert "OverrideSecurityRestrictionsOnInsecureOrigin" in policy.detail
    assert codes["daemon_not_running"].fix_id == "start-helper"
    assert codes["native_host_missing"].fix_id == "native-host"
    assert fixes_for(found) == [
        "trust-local-ca", "start-helper", "autostart", "url-schemes", "native-host",
        "browser-policy",
    ]  # fmt: skip


class Pkexec:
    """Stands in for pkexec (no polkit agent here): records the exact command line, then
    either refuses like a dismissed dialog or runs certhelper-admin as root with --root."""

    def __init__(self, code: int | None, root: Path) -> None:
        self.code, self.root, self.seen = code, root, []  # type: ignore[var-annotated]

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        import subprocess

        self.seen.append(list(argv))
        if self.code is not None:
            return self.code, "Error executing command as another user: Request dismissed"
        cmd = [sys.executable, "-m", "installer.admin", *argv[2:], "--root", str(self.root)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout + proc.stderr


def test_browser_policy_fix_through_pkexec(home: Home) -> None:
    env = doctor_env(home)
    root = env.policy_root
    root.mkdir()
    write_policy(["https://someone-else.cn"], root)  # what was there before
    config = Config()
    before_tree = snapshot(root)
    manifest_file = home.data / "install-manifest.json"

    dismissed = Pkexec(126, root)
    outcome = apply_fix("browser-policy", FixContext(config, env, runner=dismissed))
    assert outcome.cancelled and not outcome.ok
    assert outcome.text == "已取消，未做任何更改 (cancelled, nothing changed)"
    assert dismissed.seen == [
        [dismissed.seen[0][0], str(Path(sys.executable).parent / "certhelper-admin"),
         "write-browser-policy", "--origin", HALL, "--origin", "https://www.hebca.com"]
    ]  # fmt: skip
    assert dismissed.seen[0][0].endswith("pkexec")
    assert snapshot(root) == before_tree
    assert not manifest_file.exists()
    assert apply_fix("browser-policy", FixContext(config, env, runner=Pkexec(127, root))).cancelled

    before = machine_findings(config, env)
    assert by_code(before)["browser_policy_missing"].level == "error"
    allowed = Pkexec(None, root)
    report = repair(before, ["browser-policy"], FixContext(config, env, runner=allowed),
                    lambda: machine_findings(config, env))  # fmt: skip
    assert [o.ok for o in report.outcomes] == [True]
    assert [f.code for f in report.fixed] == ["browser_policy_missing", "browser_policy_prompt"]
    assert "browser_policy_ok" in by_code(report.after)
    assert report.browser == "restart"  # measured: WebSockets need a restart (docs/lna.md)
    text = report.text()
    assert "✘→✔ 浏览器阻止了网上大厅" in text and "重新打开浏览器" in text
    doc = json.loads(policy_paths(root)[0].read_text())
    assert HALL in doc["OverrideSecurityRestrictionsOnInsecureOrigin"]
    assert manifest_mod.load(manifest_file).policy_root == str(root)


def test_doctor_fix_cli_repairs_user_level_and_root_problems(home: Home) -> None:
    home.ensure_identity()
    root = home.root / "policy-root"
    root.mkdir()
    env = dict(home.env, CERTHELPER_POLICY_ROOT=str(root), CERTHELPER_ELEVATE="direct")
    h = Home(home.root, home.home, env)
    first = json.loads(h.run("doctor", "--json", check=False).stdout)
    bad = {f["code"]: f for f in first if f["level"] != "ok"}
    assert {"nss_missing", "autostart_missing", "url_schemes_missing",
            "browser_policy_missing"} <= set(bad)  # fmt: skip
    assert bad["browser_policy_missing"]["detail"]

    result = h.run("doctor", "--fix", "trust-local-ca", "autostart", "url-schemes",
                   "browser-policy", "--verbose", check=False)  # fmt: skip
    out = result.stdout
    print(out)
    assert out.count("→✔") >= 4, out
    assert "✘→✔ 浏览器阻止了网上大厅" in out
    assert "⚠→✔ 浏览器不信任证书助手" in out
    assert "重新打开浏览器" in out
    assert "write-browser-policy" in out  # --verbose shows the command run

    after = {f["code"]: f for f in json.loads(h.run("doctor", "--json", check=False).stdout)}
    for code in ("nss_trusted", "autostart_ok", "url_schemes_ok", "browser_policy_ok"):
        assert after[code]["level"] == "ok", code
    # the same changes install would make, recorded for uninstall
    manifest = manifest_mod.load(h.data / "install-manifest.json")
    assert manifest.nss and manifest.policy_root == str(root)
    h.run("uninstall")
    again = {f["code"] for f in json.loads(h.run("doctor", "--json", check=False).stdout)}
    assert "autostart_missing" in again and "nss_missing" in again


def test_unknown_fix_is_refused_before_anything(home: Home) -> None:
    before = home.snapshot()
    result = home.run("doctor", "--fix", "format-disk", check=False)
    assert result.returncode != 0 and "format-disk" in result.stderr
    assert home.snapshot() == before


class FakeDaemon:
    """A real control socket answering ping and quit, as ``certhelper run`` does; what the
    start/restart fixes spawn instead of a whole daemon (no tray, no bridge here)."""

    def __init__(self, directory: Path) -> None:
        import asyncio
        import threading

        self.dir, self.pids, self.claim = directory, 0, None
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def start(self) -> None:
        import asyncio

        from helper.services import control

        claim = control.claim(self.dir)
        assert isinstance(claim, control.Claim)
        self.pids += 1
        pid = self.pids

        def handle(message):  # type: ignore[no-untyped-def]
            if message["cmd"] == "quit":
                self.loop.call_later(0.2, claim.close)
                return {"ok": True}
            return {"ok": True, "app": "certhelper", "version": "t", "pid": pid}

        asyncio.run_coroutine_threadsafe(claim.serve(handle), self.loop).result(5)
        self.claim = claim

    def stop(self) -> None:
        if self.claim is not None:
            self.loop.call_soon_threadsafe(self.claim.close)
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_start_and_restart_helper(tmp_path: Path) -> None:
    from helper.doctor.checks.daemon import daemon_findings
    from tests.support.doctor import free_port, make_env

    env = make_env(tmp_path)
    env.control_dir.mkdir(mode=0o700)  # type: ignore[union-attr]
    config = Config(bridge_port=free_port(), hebca_enabled=False)
    daemon = FakeDaemon(env.control_dir)  # type: ignore[arg-type]
    ctx = FixContext(config, env, spawn=daemon.start, start_wait=5)
    try:
        [before] = daemon_findings(config, env)
        assert (before.code, before.fix_id) == ("daemon_not_running", "start-helper")
        outcome = apply_fix("start-helper", ctx)
        assert outcome.ok, outcome
        assert daemon.pids == 1
        assert daemon_findings(config, env)[0].code == "daemon_running"
        outcome = apply_fix("restart-helper", ctx)
        assert outcome.ok, outcome
        assert daemon.pids == 2  # the first one quit, a new one answers
        assert "pid 2" in daemon_findings(config, env)[0].detail
    finally:
        daemon.stop()
