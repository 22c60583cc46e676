"""Driver families: one live driver per library file, libraries from config and catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers import errors as E
from drivers.catalog import load_catalog
from drivers.registry import FAMILIES, LibraryRequest, get_driver, requested_libraries


def test_one_live_driver_per_file_and_family(driver, module_path: str) -> None:
    assert get_driver(module_path) is driver
    assert get_driver(module_path, family="pkcs11") is driver
    assert driver.family == "pkcs11"


def test_unknown_family_is_a_load_error(module_path: str) -> None:
    with pytest.raises(E.ModuleLoadFailed, match="unknown driver family"):
        get_driver(module_path, family="nope")


def test_a_missing_library_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(E.ModuleLoadFailed):
        get_driver(tmp_path / "no-such-module.so")


def test_explicit_requests_come_first_and_real_files_once(tmp_path: Path, module_path: str) -> None:
    link = tmp_path / "softhsm-link.so"
    link.symlink_to(module_path)
    wanted = requested_libraries(
        [LibraryRequest("pkcs11", str(link), "config"), LibraryRequest("pkcs11", module_path, "x")],
        use_catalog=True,
    )
    assert wanted[0] == LibraryRequest("pkcs11", str(link), "config")
    assert [r.path for r in wanted].count(module_path) == 0  # the same file, already asked for
    assert all(r.family in FAMILIES for r in wanted)


def test_catalog_entries_name_their_family() -> None:
    entries = load_catalog(platform="linux")
    assert entries and all(e.family in FAMILIES for e in entries)
    softhsm = next(e for e in entries if e.id == "softhsm2")
    assert softhsm.family == "pkcs11"


def test_capabilities_are_declared_not_guessed(driver) -> None:
    caps = driver.capabilities
    assert caps.certificate_writes and "RSA" in caps.key_generation
    assert not caps.pin_retry_counts and not caps.default_pin_flag  # PKCS#11 has flags only
    token = driver.list_tokens()[0]
    assert token.family == "pkcs11" and token.pin_retries_left is None
