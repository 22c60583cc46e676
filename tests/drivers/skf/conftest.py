"""Fixtures for the SKF binding tests: libsoftskf built with make, soft devices built once per
session by softhsm-fixtures/build.py (test profile), and a private copy of the devices for
every test.

libsoftskf reads $SOFTSKF_DIR on every call, so each test points it at its own copy
(monkeypatch) and may lock PINs or pull devices out without disturbing the others. The library
is loaded once in this process (ctypes keeps it); tests close what they open.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from drivers.errors import CertHelperError
from drivers.skf import AppHandle, ConHandle, DevHandle, SkfLibrary
from drivers.types import Pin

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "softhsm-fixtures"
BUILD = FIXTURES / "build.py"
SPEC = FIXTURES / "pki.toml"
SOFTSKF = FIXTURES / "softskf"
DEFAULT_ID = b"1234567812345678"

if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

import skf_build  # noqa: E402


def spec_pins() -> tuple[str, str]:
    """(user PIN, admin PIN) as pki.toml publishes them for every device."""
    with SPEC.open("rb") as handle:
        pins = tomllib.load(handle)["pins"]
    return pins["user_pin"], pins["so_pin"]


USER_PIN, ADMIN_PIN = spec_pins()
WRONG_PIN = "000000" if USER_PIN != "000000" else "111111"


@dataclass
class SkfBuild:
    """The session's build: its manifest and the directory holding the devices."""

    outdir: Path
    manifest: dict[str, Any]

    @property
    def section(self) -> dict[str, Any]:
        return self.manifest["skf"]

    @property
    def dir(self) -> Path:
        return Path(self.section["dir"])

    def device(self, name: str) -> dict[str, Any]:
        return next(d for d in self.section["devices"] if d["name"] == name)

    def cert(self, name: str) -> dict[str, Any]:
        return next(c for c in self.section["certificates"] if c["name"] == name)


@dataclass
class Skf:
    """One test's view: the library, a private copy of the devices, and cleanup."""

    lib: SkfLibrary
    build: SkfBuild
    dir: Path
    _opened: list[DevHandle] = field(default_factory=list)

    def device(self, name: str) -> dict[str, Any]:
        return self.build.device(name)

    def cert(self, name: str) -> dict[str, Any]:
        return self.build.cert(name)

    def connect(self, name: str) -> DevHandle:
        """Connect to the device the manifest calls ``name`` (gm1, gm2, gm_empty)."""
        dev = self.lib.connect(self.device(name)["device_name"])
        self._opened.append(dev)
        return dev

    def open_app(self, name: str, *, login: bool = False) -> tuple[DevHandle, AppHandle]:
        dev = self.connect(name)
        app = self.lib.open_application(dev, self.device(name)["application"])
        if login:
            self.lib.verify_pin(app, Pin(USER_PIN))
        return dev, app

    def open_container(self, cert_name: str, *, login: bool = True) -> tuple[Any, Any, ConHandle]:
        """(dev, app, container) holding the manifest certificate ``cert_name``."""
        entry = self.cert(cert_name)
        dev, app = self.open_app(entry["device"], login=login)
        return dev, app, self.lib.open_container(app, entry["container"])

    def device_path(self, name: str) -> Path:
        return self.dir / self.device(name)["device_name"]

    def close(self) -> None:
        for dev in self._opened:
            with contextlib.suppress(CertHelperError):  # closed or removed already: fine
                self.lib.disconnect(dev)


@pytest.fixture(scope="session")
def softskf_library() -> Path:
    """libsoftskf.so, built (or found up to date) by make."""
    return skf_build.resolve_library()


@pytest.fixture(scope="session")
def skf_build_result(tmp_path_factory: pytest.TempPathFactory, softskf_library: Path) -> SkfBuild:
    outdir = tmp_path_factory.mktemp("skf") / "fx"
    env = {k: v for k, v in os.environ.items() if k not in ("SOFTHSM2_CONF", "SOFTSKF_DIR")}
    done = subprocess.run(
        [sys.executable, str(BUILD), str(outdir), "--skf-library", str(softskf_library)],
        capture_output=True,
        encoding="utf-8",
        env={**env, "PYTHONIOENCODING": "utf-8"},
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"build.py failed:\n{done.stdout}\n{done.stderr}")
    manifest = json.loads((outdir / "manifest.json").read_text("utf-8"))
    return SkfBuild(outdir, manifest)


@pytest.fixture(scope="session")
def skf_lib(softskf_library: Path) -> SkfLibrary:
    return SkfLibrary(softskf_library)


@pytest.fixture
def skf(
    skf_lib: SkfLibrary,
    skf_build_result: SkfBuild,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Skf]:
    """A private copy of the session's devices, with $SOFTSKF_DIR pointing at it."""
    copy = tmp_path / "skf"
    shutil.copytree(skf_build_result.dir, copy, symlinks=True)
    monkeypatch.setenv("SOFTSKF_DIR", str(copy))
    view = Skf(skf_lib, skf_build_result, copy)
    yield view
    view.close()


def stage_device(source: Path, skf_dir: Path, name: str) -> Path:
    """Copy a device under a hidden name beside ``name``: renaming it in is an insertion."""
    staged = skf_dir / f".staged-{name}"
    shutil.copytree(source, staged)
    return staged
