"""The layers of docs/architecture.md hold, and the build would notice if they broke:
each cycle the architecture issue found is put back into a copy of the tree, and
the import-linter contract that forbids it must fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tokens import ROOT

CONTRACTS = [
    "layers",
    "installer-takes-parameters",
    "pure-domain",
    "acyclic",
    "transports-independent",
]


def lint(tree: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` in ``tree`` (its pyproject.toml), only ``contracts`` if given."""
    args = [arg for c in contracts for arg in ("--contract", c)]
    code = "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    for name in ("helper", "drivers", "installer"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_tree_keeps_every_contract() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout


# (the module that gets the import, the import, the contract that must break)
CYCLES = [
    # the native API's service and renewal imported each other (bridge_service <-> renewal)
    ("helper/services/gate.py", "import helper.services.renewal", "acyclic"),
    # helper and installer imported each other
    ("installer/paths.py", "import helper.config", "installer-takes-parameters"),
    # the doctor's checks imported the daemon
    ("helper/doctor/checks/daemon.py", "import helper.daemon.run", "layers"),
    # the windows imported the CLI's render module
    ("helper/ui/mycerts/rows.py", "import helper.cli.render", "layers"),
    # a transport reaching into another transport instead of the shared plumbing
    (
        "helper/bridge/hebca/endpoint.py",
        "import helper.bridge.native.api",
        "transports-independent",
    ),
    # the domain doing I/O
    ("helper/domain/expiry.py", "import aiohttp", "pure-domain"),
]


@pytest.mark.parametrize(("module", "line", "contract"), CYCLES)
def test_each_old_cycle_breaks_its_contract(
    tree: Path, module: str, line: str, contract: str
) -> None:
    target = tree / module
    original = target.read_text("utf-8")
    assert lint(tree, contract).returncode == 0  # kept before
    target.write_text(original + f"\n{line}  # put back by the test\n", "utf-8")
    try:
        result = lint(tree, contract)
    finally:
        target.write_text(original, "utf-8")
    assert result.returncode != 0, result.stdout[-2000:]
    assert "1 broken" in result.stdout, result.stdout[-2000:]
