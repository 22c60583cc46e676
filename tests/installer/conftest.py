"""A temporary HOME (with its own XDG dirs, runtime dir and a keyring that is never
there) for installer tests; the CLI runs in a subprocess with that environment.

The config file lives outside HOME and turns the log file off, so HOME snapshots
compare every file the installer could touch, with no exclusions.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.installer import TOOLS, Home, make_home


@pytest.fixture(autouse=True, scope="session")
def _installer_tools() -> None:
    missing = [f"{t} ({pkg})" for t, pkg in TOOLS.items() if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run `make test`, which installs them")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    return make_home(tmp_path, monkeypatch)
