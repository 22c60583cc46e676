"""``--system``: the local CA in the system trust store (Debian/Ubuntu ``ca-certificates``):
``/usr/local/share/ca-certificates/certhelper-local-ca.crt`` then
``update-ca-certificates``. Root only. Tests inject the directory and the command
(``CERTHELPER_SYSTEM_CA_DIR``, ``CERTHELPER_UPDATE_CA_CERTIFICATES``; see paths.py).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from installer import paths
from installer.manifest import Manifest
from installer.report import Step

NAME = "系统信任 system trust"


def allowed() -> bool:
    return paths.system_paths_overridden() or (hasattr(os, "geteuid") and os.geteuid() == 0)


def _update() -> str:
    argv = paths.update_ca_command()
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    except OSError as exc:
        return f"{argv[0]}: {exc.strerror}"
    return "" if result.returncode == 0 else (result.stderr.strip() or f"{argv[0]} failed")


def install(ca_pem: Path, manifest: Manifest, *, dry_run: bool = False) -> Step:
    if not allowed():
        return Step(NAME, "failed", "需要 root 权限 (--system needs root: run with sudo)")
    target = paths.system_ca_file()
    data = ca_pem.read_bytes()
    try:
        if target.read_bytes() == data:
            return Step(NAME, "exists", str(target))
    except OSError:
        pass
    if dry_run:
        return Step(NAME, "done", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    manifest.system["ca_file"] = str(target)
    error = _update()
    if error:
        return Step(NAME, "failed", f"{target}: {error}")
    return Step(NAME, "done", str(target))


def uninstall(manifest: Manifest, *, dry_run: bool = False) -> Step:
    recorded = manifest.system.get("ca_file")
    if not recorded:
        return Step(NAME, "skipped", "未由安装程序添加 not added by install")
    if not allowed():
        return Step(NAME, "failed", "需要 root 权限 (--system needs root: run with sudo)")
    target = Path(recorded)
    if dry_run:
        return Step(NAME, "done", f"已删除 removed {target}")
    existed = target.exists()
    target.unlink(missing_ok=True)
    manifest.system = {}
    if not existed:
        return Step(NAME, "skipped", f"{target}: 已不存在 already gone")
    error = _update()
    if error:
        return Step(NAME, "failed", f"{target}: {error}")
    return Step(NAME, "done", f"已删除 removed {target}")
