"""USB keys from a fake sysfs, matched against the real driver catalog."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from drivers.catalog import load_catalog
from helper.config import Config
from helper.doctor.checks import usb_findings
from helper.services.usb import list_usb_devices
from tests.support.doctor import fake_sysfs, make_env


def test_list_usb_devices(tmp_path: Path) -> None:
    devices = list_usb_devices(fake_sysfs(tmp_path))
    assert [d.vid_pid for d in devices] == ["096e:0807", "046d:c52b"]
    assert devices[0].display_name == "Feitian ePass2003 (096e:0807)"
    assert list_usb_devices(tmp_path / "nothing") == []


def test_known_key_without_module_names_the_driver(tmp_path: Path) -> None:
    env = make_env(
        tmp_path,
        sysfs_root=fake_sysfs(tmp_path),
        catalog=load_catalog("linux"),
        file_exists=lambda path: False,
    )
    findings = usb_findings(Config(), env)
    assert [f.code for f in findings] == ["usb_key_no_driver"]  # the mouse is not mentioned
    f = findings[0]
    entry = next(e for e in load_catalog("linux") if e.id == "feitian-epass2003")
    assert f.level == "error"
    assert entry.name in f.message and "096e:0807" in f.message
    assert entry.install_hint_zh in f.fix and entry.install_hint_en in f.fix


def test_known_key_with_module_present_is_ok(tmp_path: Path) -> None:
    module = tmp_path / "lib" / "libcastle.so.1.0.0"
    module.parent.mkdir()
    module.write_bytes(b"\x7fELF")
    catalog = [
        dataclasses.replace(e, paths=(str(tmp_path / "missing.so"), str(module)))
        if e.id == "feitian-epass2003"
        else e
        for e in load_catalog("linux")
    ]
    env = make_env(tmp_path, sysfs_root=fake_sysfs(tmp_path), catalog=catalog)
    findings = usb_findings(Config(), env)
    assert [(f.level, f.code) for f in findings] == [("ok", "usb_key_driver_ok")]
    assert str(module) in findings[0].message


def test_not_linux_or_no_sysfs(tmp_path: Path) -> None:
    assert usb_findings(Config(), make_env(tmp_path, catalog=load_catalog("linux"))) == []
    env = make_env(tmp_path, sysfs_root=fake_sysfs(tmp_path), platform="win32")
    assert usb_findings(Config(), env) == []
