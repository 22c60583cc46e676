"""What every doctor check shares: the :class:`Finding` and the :class:`DoctorEnv`.

A check is a small function ``(config, env) -> list[Finding]`` that only reads.
Everything it reads from the machine goes through :class:`DoctorEnv`, so tests
build fake HOMEs, sysfs trees and policy roots instead of touching the real ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Level = Literal["ok", "warning", "error"]
#: (argv, extra environment) -> (exit code, stdout); never raises for a failing command
Runner = Callable[[Sequence[str], Mapping[str, str]], tuple[int, str]]


@dataclass(frozen=True)
class FixInfo:
    """A repair the doctor can run itself (applied by helper.doctor.fixes)."""

    id: str
    #: what the 修复 does, Chinese (English)
    title: str
    #: through polkit (pkexec certhelper-admin …), not as the user
    needs_root: bool = False
    #: what the browser needs before it sees the change: "" nothing, "reload" the
    #: hall's page, "newtab" the hall opened in a new tab, "restart" the browser
    #: (measured: docs/lna.md, docs/doctor.md)
    browser: Literal["", "reload", "newtab", "restart"] = ""


#: every fix id (``certhelper doctor --fix ID``), in the order they are applied
FIXES: dict[str, FixInfo] = {
    f.id: f
    for f in (
        FixInfo("trust-local-ca", "让浏览器信任证书助手 (trust the helper's local certificate)",
                browser="newtab"),
        FixInfo("start-helper", "启动证书助手 (start the helper)"),
        FixInfo("restart-helper", "重启证书助手 (restart the helper)"),
        FixInfo("autostart", "设置开机自动启动 (start with the computer)"),
        FixInfo("url-schemes", "让网页能打开证书助手 (handle p11:// and certhelper:// links)"),
        FixInfo("native-host", "让浏览器扩展连接证书助手 (register the extension's native host)",
                browser="reload"),
        FixInfo("browser-policy", "允许网上大厅连接证书助手 (let the halls reach the helper)",
                needs_root=True, browser="restart"),
        FixInfo("system-trust", "让系统信任证书助手 (trust the local certificate system-wide)",
                needs_root=True),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Finding:
    level: Level
    code: str
    #: the headline: plain Chinese first (what is wrong, what it means, what to click),
    #: English in brackets; no paths or policy names
    message: str
    #: what to do, when the doctor cannot do it itself
    fix: str = ""
    #: 详细信息: paths, policy names, exit codes
    detail: str = ""
    #: a key of FIXES when 修复 / ``doctor --fix`` can repair it
    fix_id: str = ""
    #: the check that produced it (set by run_doctor)
    check: str = ""

    @property
    def needs_root(self) -> bool:
        return self.fix_id in FIXES and FIXES[self.fix_id].needs_root

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "needs_root": self.needs_root}


def run_command(argv: Sequence[str], extra_env: Mapping[str, str]) -> tuple[int, str]:
    """Run a read-only query command with a short timeout; failures are exit codes."""
    env = {**os.environ, **extra_env, "LC_ALL": "C.UTF-8"}
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            errors="replace",
            env=env,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return proc.returncode, proc.stdout


def _xdg_config_home(home: Path) -> Path:
    value = os.environ.get("XDG_CONFIG_HOME", "")
    return Path(value) if value and os.path.isabs(value) else home / ".config"


@dataclass
class DoctorEnv:
    """Where the doctor looks. :meth:`default` gives the real machine."""

    home: Path
    #: $XDG_CONFIG_HOME, else ~/.config (autostart lives in <config_home>/autostart)
    config_home: Path
    #: helper.config.data_dir() (the TLS identity is in <data_dir>/tls)
    data_dir: Path
    #: the daemon's control directory; None = no daemon check over the socket
    control_dir: Path | None = None
    sysfs_root: Path = Path("/sys")
    #: where the browser policy is read (installer.install.policy_root(): / or the test root)
    policy_root: Path = Path("/")
    platform: str = sys.platform
    #: which commands exist (name -> path); None = look them up on $PATH
    commands: Mapping[str, str] | None = None
    run: Runner = run_command
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: the driver catalog (drivers.catalog.load_catalog()); None = load it for ``platform``
    catalog: list[Any] | None = None
    #: how a module file's presence is tested
    file_exists: Callable[[str], bool] = os.path.isfile
    #: sends one control command to the daemon; None = helper.services.control.request
    daemon_request: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: seconds for each socket connection
    timeout: float = 2.0

    @classmethod
    def default(cls) -> DoctorEnv:
        from helper.config import data_dir
        from helper.services.control import control_dir
        from installer.install import policy_root

        home = Path.home()
        return cls(
            home=home,
            config_home=_xdg_config_home(home),
            data_dir=data_dir(),
            control_dir=control_dir(),
            policy_root=policy_root(),
        )

    @property
    def is_linux(self) -> bool:
        return self.platform.startswith("linux")

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def nssdb(self) -> Path:
        return self.home / ".pki" / "nssdb"

    def which(self, name: str) -> str | None:
        if self.commands is not None:
            return self.commands.get(name)
        return shutil.which(name)

    def query(self, name: str, *args: str) -> tuple[int, str] | None:
        """Run ``name args`` with this HOME; None when the command does not exist."""
        exe = self.which(name)
        if exe is None:
            return None
        extra = {"HOME": str(self.home), "XDG_CONFIG_HOME": str(self.config_home)}
        return self.run([exe, *args], extra)

    def entries(self) -> list[Any]:
        if self.catalog is None:
            from drivers.catalog import load_catalog

            self.catalog = load_catalog(self.platform)
        return self.catalog
