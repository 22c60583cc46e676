"""Fake machines for the doctor: HOME, data dir, sysfs and policy roots under tmp."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from helper.doctor.run import DoctorEnv


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


@pytest.fixture
def env(tmp_path: Path) -> DoctorEnv:
    return make_env(tmp_path)
