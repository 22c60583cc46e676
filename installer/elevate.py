"""Run ``certhelper-admin`` as root through polkit (``pkexec``), never a password of ours.

:func:`admin_argv` is the exact command line: ``pkexec <absolute certhelper-admin>
VERB ARGS…`` (no shell). polkit's agent asks for the administrator password, with the
message of our action file (:mod:`installer.polkit`) when ``certhelper install
--system`` installed it, else polkit's generic "run as the super user" message.

pkexec's exit codes: 126 the person closed the password dialog, 127 not authorized
(or authentication failed): both mean nothing was done → :data:`CANCELLED`.

Test hook: ``CERTHELPER_ELEVATE=direct`` together with ``CERTHELPER_POLICY_ROOT=DIR``
runs ``python -m installer.admin VERB ARGS… --root DIR`` without pkexec, as the
calling user (nothing gains privileges this way; the tests run as root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ADMIN_NAME = "certhelper-admin"
ENV_ELEVATE = "CERTHELPER_ELEVATE"
ENV_POLICY_ROOT = "CERTHELPER_POLICY_ROOT"
CANCELLED_CODES = (126, 127)
CANCELLED = "已取消，未做任何更改 (cancelled, nothing changed)"

#: argv -> (exit code, output); the real one is :func:`run_subprocess`
Runner = Callable[[Sequence[str]], tuple[int, str]]


def admin_path() -> str:
    """The absolute path of ``certhelper-admin``: beside this Python (a venv's bin),
    else on PATH. The polkit action's ``exec.path`` names the same file."""
    beside = Path(sys.executable).parent / ADMIN_NAME
    if beside.is_file():
        return str(beside.absolute())
    found = shutil.which(ADMIN_NAME)
    return str(Path(found).absolute()) if found else str(beside.absolute())


def admin_argv(verb: str, args: Sequence[str] = ()) -> list[str]:
    """The command run for ``verb``: pkexec, or (test hook) the helper directly."""
    root = os.environ.get(ENV_POLICY_ROOT, "")
    if os.environ.get(ENV_ELEVATE) == "direct" and root:
        return [sys.executable, "-m", "installer.admin", verb, *args, "--root", root]
    pkexec = shutil.which("pkexec") or "/usr/bin/pkexec"
    return [pkexec, admin_path(), verb, *args]


def run_subprocess(argv: Sequence[str]) -> tuple[int, str]:
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, errors="replace", timeout=600
        )
    except FileNotFoundError:
        return 127, f"{argv[0]}: 未安装 (not installed: sudo apt install pkexec)"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


@dataclass(frozen=True)
class Elevated:
    argv: list[str]
    code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def cancelled(self) -> bool:
        return self.code in CANCELLED_CODES and self.argv[0].endswith("pkexec")

    def text(self) -> str:
        if self.ok:
            return self.output
        if self.cancelled:
            return CANCELLED
        return f"失败 (failed, exit {self.code}): {self.output}"


def run_admin(verb: str, args: Sequence[str] = (), runner: Runner | None = None) -> Elevated:
    argv = admin_argv(verb, args)
    code, output = (runner or run_subprocess)(argv)
    return Elevated(argv, code, output)
