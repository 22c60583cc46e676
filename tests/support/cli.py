"""`certhelper` run in a child process, with HOME and the XDG dirs inside tmp."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.tokens import Fixtures

if TYPE_CHECKING:
    from tests.support.skf import GmKeys


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

    def __init__(self, fx: Fixtures, home: Path, module: str, skf: GmKeys | None = None) -> None:
        """``skf``: also load the soft SKF library on that copy of the SKF devices."""
        self.fx = fx
        self.home = home
        self.skf = skf
        self.config = home / "config.toml"
        lines = ["use_catalog = false", f'modules = ["{module}"]']
        if skf is not None:
            lines += [f'skf_libraries = ["{skf.library}"]', f'softskf_dir = "{skf.dir}"']
        self.config.write_text("\n".join(lines) + "\n")
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "CERTHELPER_"))
        }
        self.env.pop("SOFTSKF_DIR", None)
        if skf is not None:
            self.env["SOFTSKF_DIR"] = str(skf.dir)
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
