"""The machine the doctor reads, faked in tmp: a DoctorEnv, a free port, a sysfs."""

from __future__ import annotations

import socket
from pathlib import Path

from helper.doctor import DoctorEnv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_env(tmp_path: Path, **kw) -> DoctorEnv:
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    base = dict(
        home=home,
        config_home=home / ".config",
        data_dir=home / ".local" / "share" / "certhelper",
        control_dir=tmp_path / "control",
        sysfs_root=tmp_path / "sys",
        policy_root=tmp_path / "root",
        platform="linux",
        commands={},
        timeout=1.0,
    )
    base.update(kw)
    return DoctorEnv(**base)


def add_device(sys_root: Path, name: str, vid: str, pid: str, **names: str) -> None:
    d = sys_root / "bus" / "usb" / "devices" / name
    d.mkdir(parents=True)
    (d / "idVendor").write_text(vid + "\n")
    (d / "idProduct").write_text(pid + "\n")
    for key, value in names.items():
        (d / key).write_text(value + "\n")


def fake_sysfs(tmp_path: Path) -> Path:
    root = tmp_path / "sys"
    add_device(root, "1-2", "096E", "0807", manufacturer="Feitian", product="ePass2003")
    add_device(root, "1-3", "046d", "c52b", product="Unifying Receiver")  # a mouse dongle
    (root / "bus" / "usb" / "devices" / "1-2:1.0").mkdir()  # an interface: skipped
    (root / "bus" / "usb" / "devices" / "usb1").mkdir()  # no ids: skipped
    return root
