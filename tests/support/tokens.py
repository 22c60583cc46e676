"""The session's SoftHSM tokens, built by softhsm-fixtures/build.py, and private copies."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "softhsm-fixtures" / "build.py"
USER_PIN = "123456"  # the fixtures' (and HEBCA's) initial user PIN


def softhsm_module() -> str:
    from drivers.catalog import installed_modules, load_catalog

    found = [p for e, p in installed_modules(load_catalog()) if e.id == "softhsm2"]
    if not found:
        pytest.fail("SoftHSM is not installed: run `make test`, which installs softhsm2")
    return found[0]


@dataclass
class Fixtures:
    dir: Path
    manifest: dict[str, Any]

    @property
    def conf(self) -> Path:
        return self.dir / "softhsm2.conf"

    def token(self, name: str) -> dict[str, Any]:
        return next(t for t in self.manifest["tokens"] if t["name"] == name)

    def cert(self, name: str) -> dict[str, Any]:
        return next(c for c in self.manifest["certificates"] if c["name"] == name)

    @property
    def ca_chain(self) -> Path:
        return Path(self.manifest["ca"]["chain"])


def build_fixtures(out: Path, profile: str = "test") -> Fixtures:
    proc = subprocess.run(
        [sys.executable, str(BUILD), str(out), "--profile", profile],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        pytest.fail(f"softhsm-fixtures build failed:\n{proc.stdout}\n{proc.stderr}")
    return Fixtures(out, json.loads((out / "manifest.json").read_text("utf-8")))


def copy_fixtures(src: Fixtures, dst: Path) -> Fixtures:
    """A private copy of the tokens (same serials), with its own softhsm2.conf."""
    shutil.copytree(src.dir / "tokens", dst / "tokens")
    shutil.copytree(src.dir / "ca", dst / "ca")
    (dst / "softhsm2.conf").write_text(
        f"directories.tokendir = {dst / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n"
    )
    manifest = json.loads((src.dir / "manifest.json").read_text("utf-8"))
    return Fixtures(dst, manifest)
