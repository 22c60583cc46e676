"""A temporary HOME (its own XDG dirs, runtime dir and a keyring that is never there)
for installer and CLI tests; the CLI runs in a subprocess with that environment."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import keyring.backends.fail
import pytest

CERTHELPER = [sys.executable, "-m", "helper.cli.main"]


ROOT = Path(__file__).resolve().parents[2]


TOOLS = {
    "certutil": "libnss3-tools",
    "desktop-file-validate": "desktop-file-utils",
    "xdg-mime": "xdg-utils",
    "update-desktop-database": "desktop-file-utils",
}


@dataclass
class Home:
    root: Path  # the tmp dir holding everything
    home: Path
    env: dict[str, str]

    @property
    def data(self) -> Path:
        return self.home / ".local" / "share" / "certhelper"

    @property
    def nssdb(self) -> Path:
        return self.home / ".pki" / "nssdb"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*CERTHELPER, *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"certhelper {args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def tool(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, check=False)

    def ensure_identity(self):  # type: ignore[no-untyped-def]
        from helper.services.tls import ensure_identity

        return ensure_identity(self.data / "tls", keyring_backend=keyring.backends.fail.Keyring())

    def snapshot(self) -> dict[str, tuple[str, int]]:
        return snapshot(self.home)


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every path under ``root``: (sha256 of a file's bytes, or "dir"/"link:…"; mode)."""
    out: dict[str, tuple[str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            if p.is_symlink():
                kind = "link:" + os.readlink(p)
            elif p.is_dir():
                kind = "dir"
            else:
                kind = hashlib.sha256(p.read_bytes()).hexdigest()
            out[str(p.relative_to(root))] = (kind, st.st_mode)
    return out


def make_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    h = tmp_path / "home"
    h.mkdir()
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    cfg = tmp_path / "config.toml"
    cfg.write_text("[logging]\nfile = false\n", "utf-8")
    env = {
        "HOME": str(h),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": str(h / ".config"),
        "XDG_DATA_HOME": str(h / ".local" / "share"),
        "XDG_STATE_HOME": str(h / ".local" / "state"),
        "XDG_CACHE_HOME": str(h / ".cache"),
        "XDG_RUNTIME_DIR": str(runtime),
        "CERTHELPER_CONFIG": str(cfg),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    for var in ("XDG_CURRENT_DESKTOP", "DESKTOP_SESSION", "KDE_FULL_SESSION", "XDG_DATA_DIRS"):
        monkeypatch.delenv(var, raising=False)
    for var in ("CERTHELPER_SYSTEM_CA_DIR", "CERTHELPER_UPDATE_CA_CERTIFICATES"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return Home(tmp_path, h, env)
