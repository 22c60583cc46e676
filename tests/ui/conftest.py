"""The window processes (我的证书, 修改密码) as a person uses them: real windows
under the session's Xvfb (tests/ui/conftest.py), driven by xdotool, against a
private copy of the SoftHSM tokens.

Each window runs as its own process with the environment `tests.conftest.Cli`
builds (SOFTHSM2_CONF = the copy, CERTHELPER_CONFIG = a config with
``use_catalog = false`` and the SoftHSM module, HOME and XDG dirs in tmp) plus
DISPLAY and ``CERTHELPER_UI_PROBE``: the window writes what it shows there as
JSON lines (see the module docstrings of helper.ui.mycerts and
helper.ui.changepin), which is what the tests assert on, beside screenshots.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cli import Cli
from tests.support.desktop import Desktop
from tests.support.tokens import Fixtures
from tests.support.windows import TokenDirs, WindowApp


@pytest.fixture
def home_cli(fresh_tokens: Fixtures, tmp_path: Path, module_path: str) -> Cli:
    """The CLI (and the windows' environment) on a private copy of the tokens."""
    home = tmp_path / "home"
    home.mkdir()
    return Cli(fresh_tokens, home, module_path)


@pytest.fixture
def open_window(desk: Desktop, home_cli: Cli) -> Iterator[Callable[..., WindowApp]]:
    """Start a window process: ``open_window("mycerts", "--token", s, env={...})``."""
    started: list[WindowApp] = []

    def start(name: str, *args: str, env: dict[str, str] | None = None) -> WindowApp:
        app = WindowApp(desk, home_cli, name, args, env or {})
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()


@pytest.fixture
def token_dirs(fresh_tokens: Fixtures, tmp_path: Path) -> TokenDirs:
    return TokenDirs(fresh_tokens, tmp_path / "unplugged")
