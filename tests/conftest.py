"""Shared fixtures: SoftHSM tokens built by softhsm-fixtures/ for the whole session.

SoftHSM reads SOFTHSM2_CONF once, at C_Initialize, and python-pkcs11 keeps the
library loaded for the process, so the session's token directory is fixed when
the first driver loads. Tests that change a token (PIN changes, wrong PINs)
work on a copy of the token directory in a child process (`fresh_tokens`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "softhsm-fixtures" / "build.py"
USER_PIN = "123456"  # the fixtures' (and HEBCA's) initial user PIN
#: renewal_pki / renewal_token: one session build shared by every suite
pytest_plugins = ["tests.renewal.fixtures"]


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


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    """The session's tokens; SOFTHSM2_CONF points at them for this process."""
    fx = build_fixtures(tmp_path_factory.mktemp("softhsm") / "fx")
    os.environ["SOFTHSM2_CONF"] = str(fx.conf)
    return fx


@pytest.fixture(scope="session")
def module_path() -> str:
    return softhsm_module()


@pytest.fixture(scope="session")
def driver(fixtures: Fixtures, module_path: str):
    from drivers.registry import get_driver

    drv = get_driver(module_path)
    yield drv
    drv.close()


@pytest.fixture
def fresh_tokens(fixtures: Fixtures, tmp_path: Path) -> Fixtures:
    return copy_fixtures(fixtures, tmp_path / "fresh")


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Cli:
    """Runs `certhelper` in a child process against a given token directory,
    with HOME and the XDG dirs inside tmp so logs and state stay in the test."""

    def __init__(self, fx: Fixtures, home: Path, module: str) -> None:
        self.fx = fx
        self.home = home
        self.config = home / "config.toml"
        self.config.write_text(f'use_catalog = false\nmodules = ["{module}"]\n')
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "CERTHELPER_"))
        }
        self.env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / "xdg-config"),
            XDG_DATA_HOME=str(home / "xdg-data"),
            XDG_STATE_HOME=str(home / "xdg-state"),
            XDG_CACHE_HOME=str(home / "xdg-cache"),
            SOFTHSM2_CONF=str(fx.conf),
            CERTHELPER_CONFIG=str(self.config),
            LANG="C.UTF-8",
            PYTHONIOENCODING="utf-8",
        )

    def __call__(self, *args: str, stdin: str | bytes = "", env: dict[str, str] | None = None):
        proc = subprocess.run(
            [sys.executable, "-m", "helper.cli.main", *args],
            input=stdin.encode() if isinstance(stdin, str) else stdin,
            capture_output=True,
            env={**self.env, **(env or {})},
            cwd=self.home,
            timeout=120,
        )
        return CliResult(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


@pytest.fixture
def cli(fixtures: Fixtures, tmp_path: Path, module_path: str) -> Cli:
    """CLI on the session tokens (read-only use: no PIN changes, no wrong PINs)."""
    home = tmp_path / "home"
    home.mkdir()
    return Cli(fixtures, home, module_path)


@pytest.fixture
def fresh_cli(fresh_tokens: Fixtures, tmp_path: Path, module_path: str) -> Cli:
    """CLI on a private copy of the tokens: free to change PINs."""
    home = tmp_path / "home"
    home.mkdir()
    return Cli(fresh_tokens, home, module_path)
