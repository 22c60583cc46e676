"""installer.native_host: the launcher and the host manifests in a temporary HOME,
recorded in the install manifest so uninstall removes exactly them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from installer import native_host
from installer.context import NativeHostSpec
from installer.manifest import Manifest
from tests.support.installer import Home

SPEC = NativeHostSpec(
    command=("/usr/bin/python3", "-m", "helper.bridge.extension.host"),
    chromium_ids=("a" * 32,),
    firefox_ids=("certhelper@example",),
)
CHROMIUM = ("chromium", "google-chrome", "microsoft-edge")


def host_files(h: Home) -> dict[str, Path]:
    return native_host.manifest_paths(h.home, h.home / ".config")


def test_install_twice_then_uninstall(home: Home) -> None:
    launcher = home.data / "certhelper-native-host"
    before = home.snapshot()
    manifest = Manifest()
    steps = native_host.install(SPEC, launcher, manifest)
    assert [s.status for s in steps] == ["done", "done"]
    files = host_files(home)
    assert files["chromium"] == home.home / ".config/chromium/NativeMessagingHosts/" / (
        "org.certhelper.host.json"
    )
    assert (
        files["firefox"] == home.home / ".mozilla/native-messaging-hosts/org.certhelper.host.json"
    )
    for family in CHROMIUM:
        body = json.loads(files[family].read_text("utf-8"))
        assert body == {
            "name": "org.certhelper.host",
            "description": "certhelper (证书助手)",
            "path": str(launcher),
            "type": "stdio",
            "allowed_origins": ["chrome-extension://" + "a" * 32 + "/"],
        }
    firefox = json.loads(files["firefox"].read_text("utf-8"))
    assert firefox["allowed_extensions"] == ["certhelper@example"]
    assert "allowed_origins" not in firefox and firefox["path"] == str(launcher)
    assert launcher.stat().st_mode & 0o777 == 0o755
    assert launcher.read_text().splitlines()[-1] == (
        'exec /usr/bin/python3 -m helper.bridge.extension.host "$@"'
    )
    # every file is recorded (the launcher's directory, certhelper's own, is not)
    assert sorted(manifest.files) == sorted(map(str, [launcher, *files.values()]))
    assert str(home.home / ".mozilla") in manifest.dirs

    after = home.snapshot()
    again = native_host.install(SPEC, launcher, manifest)
    assert [s.status for s in again] == ["exists", "exists"]
    assert home.snapshot() == after

    removed = native_host.uninstall(launcher, manifest)
    assert [s.status for s in removed] == ["done", "done"]
    assert manifest.files == []
    from installer.manifest import remove_dirs

    remove_dirs(manifest)
    assert manifest.dirs == []
    # only the data dir the launcher needed is left over (certhelper's own)
    assert {k for k in home.snapshot() if k not in before} == {
        ".local",
        ".local/share",
        ".local/share/certhelper",
    }


def test_a_changed_manifest_or_launcher_mode_is_rewritten(home: Home) -> None:
    launcher = home.data / "certhelper-native-host"
    manifest = Manifest()
    native_host.install(SPEC, launcher, manifest)
    files = host_files(home)
    files["google-chrome"].write_text('{"name": "org.certhelper.host"}', "utf-8")
    launcher.chmod(0o644)
    steps = native_host.install(SPEC, launcher, manifest)
    assert [s.status for s in steps] == ["done", "done"]
    assert str(files["google-chrome"]) in steps[1].detail
    assert str(files["chromium"]) not in steps[1].detail  # unchanged ones are not rewritten
    assert os.access(launcher, os.X_OK)


def test_chromium_dirs_follow_xdg_config_home(home: Home, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    xdg = home.root / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    native_host.install(SPEC, home.data / "launcher", Manifest())
    assert (xdg / "chromium/NativeMessagingHosts/org.certhelper.host.json").is_file()
    assert not (home.home / ".config" / "chromium").exists()


def test_uninstall_leaves_a_manifest_install_did_not_add(home: Home) -> None:
    theirs = host_files(home)["chromium"]
    theirs.parent.mkdir(parents=True)
    theirs.write_text("{}", "utf-8")
    steps = native_host.uninstall(home.data / "certhelper-native-host", Manifest())
    assert [s.status for s in steps] == ["skipped"]
    assert theirs.read_text("utf-8") == "{}"


def test_the_launcher_runs_its_command_with_env_and_arguments(home: Home) -> None:
    """The launcher as the browser runs it: from another directory, with the caller
    argument Chromium passes; the command sees the exported env and the arguments."""
    out = home.root / "seen.json"
    code = (
        "import json, os, sys; "
        f"json.dump([os.environ.get('PYTHONPATH'), sys.argv[1:]], open({str(out)!r}, 'w'))"
    )
    spec = NativeHostSpec(command=(sys.executable, "-c", code), env=(("PYTHONPATH", "/a b/'c"),))
    launcher = home.data / "launcher"
    native_host.install(spec, launcher, Manifest())
    subprocess.run(
        [str(launcher), "chrome-extension://x/"], cwd="/", env=home.env, check=True, timeout=30
    )
    assert json.loads(out.read_text()) == ["/a b/'c", ["chrome-extension://x/"]]


def test_no_ids_no_manifests(home: Home) -> None:
    spec = NativeHostSpec(command=("/bin/true",))
    steps = native_host.install(spec, home.data / "launcher", Manifest())
    assert steps[1].status == "exists"
    assert not any(p.exists() for p in host_files(home).values())
