"""Shared fixtures: SoftHSM tokens built by softhsm-fixtures/ for the whole session.

SoftHSM reads SOFTHSM2_CONF once, at C_Initialize, and python-pkcs11 keeps the
library loaded for the process, so the session's token directory is fixed when
the first driver loads. Tests that change a token (PIN changes, wrong PINs)
work on a copy of the token directory in a child process (`fresh_tokens`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from drivers.pkcs11.driver import Pkcs11Driver
from drivers.types import Pin
from tests.support.cli import Cli
from tests.support.tokens import USER_PIN, Fixtures, build_fixtures, copy_fixtures, softhsm_module

if TYPE_CHECKING:
    from tests.support.skf import GmKeys

#: renewal_pki / renewal_token: one session build shared by every suite
pytest_plugins = [
    "tests.support.renewal",
    "tests.support.desktop",
    "tests.support.skf",
    "tests.support.p11sm2",
]


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


@pytest.fixture
def gm_cli(fixtures: Fixtures, gm_keys: GmKeys, tmp_path: Path, module_path: str) -> Cli:
    """CLI on the session's SoftHSM tokens and a private copy of the soft SKF keys."""
    home = tmp_path / "home"
    home.mkdir()
    return Cli(fixtures, home, module_path, skf=gm_keys)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    d.mkdir()
    return d


@pytest.fixture
def reset_pin_counters(driver: Pkcs11Driver, fixtures: Fixtures):
    """Tests that type wrong PINs end with a right one: SoftHSM then clears
    its count-low flag, so other tests see the tokens as they were."""
    yield
    for t in driver.list_tokens():
        with contextlib.suppress(Exception):
            driver.login(t.serial, Pin(USER_PIN))
            driver.logout(t.serial)
