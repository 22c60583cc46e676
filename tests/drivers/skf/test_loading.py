"""Loading a library: SKF or not, complete or not, with or without device events."""

from __future__ import annotations

import ctypes.util
import subprocess
from pathlib import Path

import pytest

from drivers import errors as E
from drivers.skf import SkfLibrary
from drivers.skf.library import OPTIONAL, REQUIRED
from tests.conftest import softhsm_module


def compile_stub(tmp_path: Path, symbols: list[str]) -> Path:
    """A shared library exporting ``symbols`` as functions returning SAR_OK."""
    source = tmp_path / "stub.c"
    source.write_text(
        "".join(f"unsigned int {name}(void) {{ return 0; }}\n" for name in symbols),
        encoding="utf-8",
    )
    library = tmp_path / "libstub.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True, timeout=60
    )
    return library


def test_softskf_loads_with_every_function(softskf_library: Path) -> None:
    lib = SkfLibrary(softskf_library)
    assert lib.missing_optional == ()
    assert lib.has_device_events
    assert all(lib.has(name) for name in (*REQUIRED, *OPTIONAL))


def test_a_library_without_device_events_still_loads(softskf_library: Path) -> None:
    lib = SkfLibrary(softskf_library.with_name("libsoftskf-nowait.so"))
    assert set(lib.missing_optional) == {"SKF_WaitForDevEvent", "SKF_CancelWaitForDevEvent"}
    assert not lib.has_device_events
    with pytest.raises(E.MechanismUnsupported, match="SKF_WaitForDevEvent"):
        lib.wait_for_device_event()
    assert isinstance(lib.enum_devices(), list)  # the way to watch for keys instead


@pytest.mark.parametrize("which", ["libc", "softhsm"])
def test_a_library_that_is_not_skf_is_refused(which: str) -> None:
    path = ctypes.util.find_library("c") if which == "libc" else softhsm_module()
    assert path
    with pytest.raises(E.ModuleLoadFailed, match="not an SKF"):
        SkfLibrary(path)


def test_a_missing_required_symbol_is_refused(tmp_path: Path) -> None:
    symbols = [name for name in REQUIRED if name != "SKF_ECCSignData"]
    with pytest.raises(E.ModuleLoadFailed, match="no SKF_ECCSignData") as caught:
        SkfLibrary(compile_stub(tmp_path, symbols))
    assert caught.value.code == "module_load_failed"


def test_only_optional_symbols_may_be_missing(tmp_path: Path) -> None:
    lib = SkfLibrary(compile_stub(tmp_path, list(REQUIRED)))
    assert set(lib.missing_optional) == set(OPTIONAL)
    with pytest.raises(E.MechanismUnsupported, match="SKF_GenRandom"):
        lib.gen_random(1, 8)  # type: ignore[arg-type]


def test_files_that_are_no_library(tmp_path: Path) -> None:
    with pytest.raises(E.ModuleLoadFailed, match="no such file"):
        SkfLibrary(tmp_path / "absent.so")
    text = tmp_path / "notes.so"
    text.write_text("not ELF")
    with pytest.raises(E.ModuleLoadFailed):
        SkfLibrary(text)
