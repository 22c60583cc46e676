"""Fake machines for the doctor: HOME, data dir, sysfs and policy roots under tmp."""

from __future__ import annotations

from pathlib import Path

import pytest

from helper.doctor.run import DoctorEnv
from tests.support.doctor import make_env


@pytest.fixture
def env(tmp_path: Path) -> DoctorEnv:
    return make_env(tmp_path)
