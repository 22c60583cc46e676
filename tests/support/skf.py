"""The soft SKF (GM/T 0016) keys of the session build, for tests above the binding: a
private copy of the devices per test and an :class:`SkfDriver` on libsoftskf.

libsoftskf reads ``$SOFTSKF_DIR`` on every call, so pointing it at a copy is all a
test needs to lock PINs or pull keys out without disturbing the others. A pytest
plugin (tests/conftest.py loads it): ``gm_keys`` and ``skf_driver``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drivers.skf.driver import SkfDriver
from tests.support.tokens import Fixtures


@dataclass
class GmKeys:
    """A private copy of the session's SKF devices; ``SOFTSKF_DIR`` points at it."""

    dir: Path
    section: dict[str, Any]  # the build manifest's "skf" section

    @property
    def library(self) -> str:
        return str(self.section["library"])

    @property
    def sm2_chain(self) -> Path:
        return Path(self.section["ca"]["chain"])

    def device(self, name: str) -> dict[str, Any]:
        return next(d for d in self.section["devices"] if d["name"] == name)

    def cert(self, name: str) -> dict[str, Any]:
        return next(c for c in self.section["certificates"] if c["name"] == name)

    def serial(self, device: str) -> str:
        return str(self.device(device)["serial"])

    def device_path(self, device: str) -> Path:
        return self.dir / self.device(device)["device_name"]

    def pull_out(self, device: str) -> Path:
        """Remove a device (its directory moves aside); returns where it went."""
        aside = self.dir / f".pulled-{self.device(device)['name']}"
        self.device_path(device).rename(aside)
        return aside

    def plug_in(self, aside: Path, device: str) -> None:
        aside.rename(self.device_path(device))


def copy_gm_keys(fx: Fixtures, dst: Path) -> GmKeys:
    section = fx.manifest.get("skf")
    if not section:
        pytest.fail("the fixture build made no SKF devices (is libsoftskf built? `make softskf`)")
    shutil.copytree(section["dir"], dst, symlinks=True)
    return GmKeys(dst, section)


@pytest.fixture
def gm_keys(fixtures: Fixtures, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GmKeys:
    keys = copy_gm_keys(fixtures, tmp_path / "skf")
    monkeypatch.setenv("SOFTSKF_DIR", str(keys.dir))
    return keys


@pytest.fixture
def skf_driver(gm_keys: GmKeys) -> Iterator[SkfDriver]:
    """A driver of its own per test (the library itself is loaded once per process)."""
    drv = SkfDriver(gm_keys.library, timeout=30)
    yield drv
    drv.close()
