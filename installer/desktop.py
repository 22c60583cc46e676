"""Desktop entry files: the command line that starts certhelper, quoting, writing."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from installer.manifest import Manifest, make_dirs


def certhelper_command() -> list[str]:
    """The absolute command for ``certhelper``: the entry point next to this Python
    (a venv's ``bin``), else the one on PATH, else ``python -m helper.cli.main``."""
    beside = Path(sys.executable).parent / "certhelper"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("certhelper")
    if found:
        return [str(Path(found).resolve())]
    return [sys.executable, "-m", "helper.cli.main"]


_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def quote_exec_arg(arg: str) -> str:
    """Quote one argument of an ``Exec=`` key (Desktop Entry spec, "The Exec key"),
    then escape it as a string value (backslashes doubled)."""
    if arg and not (set(arg) & _RESERVED) and "%" not in arg and "=" not in arg:
        quoted = arg
    else:
        inner = "".join("\\" + c if c in '"`$\\' else c for c in arg)
        quoted = f'"{inner}"'
    quoted = quoted.replace("%", "%%")
    return quoted.replace("\\", "\\\\")


def exec_line(*args: str, field_code: str | None = None) -> str:
    parts = [quote_exec_arg(a) for a in (*certhelper_command(), *args)]
    if field_code:
        parts.append(field_code)
    return " ".join(parts)


def write_if_changed(
    path: Path, text: str, manifest: Manifest, *, dry_run: bool, mode: int | None = None
) -> str:
    """Write ``text`` to ``path`` (0644, or ``mode``) unless it already holds it (and,
    when ``mode`` is given, has that mode).
    Returns "exists" or "done"; a file this call creates goes in the manifest."""
    try:
        if path.read_text("utf-8") == text and (
            mode is None or path.stat().st_mode & 0o7777 == mode
        ):
            return "exists"
    except (OSError, UnicodeDecodeError):
        pass
    if dry_run:
        return "done"
    make_dirs(path.parent, manifest)
    created = not path.exists()
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644 if mode is None else mode)
    os.replace(tmp, path)
    if created:
        manifest.add_file(path)
    return "done"


def remove_recorded(path: Path, manifest: Manifest, *, dry_run: bool) -> str:
    """Remove ``path`` if the installer created it; "done", or "skipped" when absent."""
    if str(path) not in manifest.files or not path.exists():
        if str(path) in manifest.files and not dry_run:
            manifest.files.remove(str(path))
        return "skipped"
    if not dry_run:
        path.unlink()
        manifest.files.remove(str(path))
    return "done"
