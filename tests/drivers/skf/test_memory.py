"""libsoftskf under AddressSanitizer/UBSan and valgrind, and the raw C benchmark.

The whole tests/drivers/skf suite runs once more against libsoftskf-asan.so (ASan preloaded
into a child Python, whose allocations then go through ASan too), so every buffer the tests
hand to the library is watched. A canary proves ASan is awake in that setting.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.drivers.skf.conftest import ROOT, SOFTSKF, USER_PIN, Skf

BENCH_SOURCE = ROOT / "tests" / "bench" / "bench_skf_raw.c"


def asan_runtime() -> str:
    path = subprocess.run(
        ["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(path).is_file(), "libasan is missing (gcc's libasan8)"
    return path


@pytest.fixture(scope="module")
def asan_env() -> dict[str, str]:
    subprocess.run(["make", "-s", "-C", str(SOFTSKF), "asan"], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("SOFTSKF_DIR", "PYTEST_ADDOPTS")}
    env.update(
        LD_PRELOAD=asan_runtime(),
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:exitcode=86",
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
        PYTHONMALLOC="malloc",
        SOFTSKF_LIBRARY=str(SOFTSKF / "libsoftskf-asan.so"),
        PYTHONPATH=str(ROOT),
    )
    return env


CANARY = r"""
import ctypes, os
from drivers.skf import SkfLibrary
lib = SkfLibrary(os.environ["SOFTSKF_LIBRARY"])
dev = lib.connect(lib.enum_devices()[0])
too_small = ctypes.create_string_buffer(16)  # DEVINFO is 294 bytes
lib.raw("SKF_GetDevInfo").argtypes = [ctypes.c_void_p, ctypes.c_void_p]
lib.raw("SKF_GetDevInfo")(dev, too_small)
print("no overflow seen")
"""


def test_asan_is_awake_in_a_python_child(asan_env: dict[str, str], skf: Skf) -> None:
    """A caller's too-small buffer overflows inside the library: ASan must say so."""
    done = subprocess.run(
        [sys.executable, "-c", CANARY],
        env={**asan_env, "SOFTSKF_DIR": str(skf.dir)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 86, done.stdout + done.stderr
    assert "AddressSanitizer: heap-buffer-overflow" in done.stderr
    # the writing frame: symbolized (function) or not (module + offset)
    assert "SKF_GetDevInfo" in done.stderr or "libsoftskf-asan.so" in done.stderr
    assert "no overflow seen" not in done.stdout


@pytest.mark.slow
def test_the_skf_suite_under_asan_and_ubsan(asan_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "tests/drivers/skf", "--ignore", "tests/drivers/skf/test_memory.py"],
        env=asan_env, capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert "AddressSanitizer" not in output and "runtime error" not in output, output[-4000:]
    assert done.returncode == 0, output[-4000:]
    assert re.search(r"\d+ passed", done.stdout)


def build_bench(tmp_path: Path, *flags: str) -> Path:
    binary = tmp_path / "bench_skf_raw"
    subprocess.run(
        [
            "gcc",
            *flags,
            "-Wall",
            "-Wextra",
            "-Werror",
            "-o",
            str(binary),
            str(BENCH_SOURCE),
            "-ldl",
        ],
        check=True,
        timeout=120,
    )
    return binary


def test_raw_benchmark_runs(skf: Skf, tmp_path: Path) -> None:
    binary = build_bench(tmp_path, "-O2")
    done = subprocess.run(
        [str(binary), str(skf.lib.path), "-n", "50", "-d", skf.device("gm2")["device_name"]],
        input=USER_PIN + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SOFTSKF_DIR": str(skf.dir)},
    )
    assert done.returncode == 0, done.stderr
    assert re.match(r"50 SM2 signatures in [\d.]+ s: \d+ signatures/s", done.stdout)
    wrong = subprocess.run(
        [str(binary), str(skf.lib.path), "-n", "5"],
        input="999999\n",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SOFTSKF_DIR": str(skf.dir)},
    )
    assert wrong.returncode == 1 and "SKF_VerifyPIN failed: 0x0A000024" in wrong.stderr


@pytest.mark.slow
def test_valgrind_finds_no_error_in_the_sign_path(skf: Skf, tmp_path: Path) -> None:
    binary = build_bench(tmp_path, "-O0", "-g")
    done = subprocess.run(
        ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
         "--errors-for-leak-kinds=definite", str(binary), str(skf.lib.path), "-n", "10"],
        input=USER_PIN + "\n", capture_output=True, text=True, timeout=600,
        env={**os.environ, "SOFTSKF_DIR": str(skf.dir)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert "SM2 signatures" in done.stdout
