"""The CLI's tests: a temporary HOME for commands run in a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.installer import Home, make_home


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    return make_home(tmp_path, monkeypatch)
