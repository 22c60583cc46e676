"""The polkit action file for ``certhelper-admin`` (``org.certhelper.admin.policy``).

``certhelper install --system`` writes it to ``/usr/share/polkit-1/actions/`` (under the
test policy root when one is set) with ``exec.path`` naming this installation's
``certhelper-admin`` (:func:`installer.elevate.admin_path`); ``uninstall --system``
removes it. One action per verb (``exec.argv1``), each ``auth_admin_keep``, each with a
Chinese and an English message naming exactly what it changes.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from xml.sax.saxutils import escape

from installer.assets.generate import AssetTemplate, template_text
from installer.elevate import admin_path

ACTIONS_DIR = PurePosixPath("/usr/share/polkit-1/actions")
FILE_NAME = "org.certhelper.admin.policy"
TEMPLATE = f"{FILE_NAME}.template"
#: action id -> the verb (argv1) it allows
ACTIONS = {
    "org.certhelper.admin.write-policy": "write-browser-policy",
    "org.certhelper.admin.remove-policy": "remove-browser-policy",
    "org.certhelper.admin.trust-ca": "trust-system-ca",
    "org.certhelper.admin.untrust-ca": "untrust-system-ca",
}


def action_text(exec_path: str | None = None) -> str:
    path = exec_path or admin_path()
    return AssetTemplate(template_text(TEMPLATE)).substitute({"admin_path": escape(path)})


def action_file(root: Path = Path("/")) -> Path:
    return Path(root) / ACTIONS_DIR.relative_to("/") / FILE_NAME


def install(root: Path = Path("/"), exec_path: str | None = None) -> tuple[Path, bool]:
    """Write the action file (mode 0644); (path, changed)."""
    path = action_file(root)
    data = action_text(exec_path).encode("utf-8")
    try:
        if path.read_bytes() == data:
            return path, False
    except OSError:
        pass
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    tmp.replace(path)
    return path, True


def remove(root: Path = Path("/")) -> bool:
    path = action_file(root)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed
