"""URL schemes ``P11://`` and ``certhelper://``: a hidden desktop entry
(``~/.local/share/applications/certhelper-url.desktop``) whose ``MimeType`` names
``x-scheme-handler/p11`` and ``x-scheme-handler/certhelper``, made the default with
``xdg-mime default`` and checked with ``xdg-mime query default``.

The legacy client navigates to ``P11://…`` when it cannot reach its local service;
the browser hands the URL to ``certhelper open-url``, which starts the daemon (or,
when it already runs, opens 我的证书).

Uninstall restores ``mimeapps.list`` exactly as it was when nothing else changed it
since; otherwise it takes out only our lines and puts back the previous defaults.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from installer import paths
from installer.desktop import exec_line, remove_recorded, write_if_changed
from installer.manifest import Manifest, make_dirs
from installer.report import Step

NAME = "网址协议 URL schemes"
MIME_NAME = "默认打开方式 xdg-mime"


def entry_text() -> str:
    return "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            "Version=1.0",
            "Name=Certificate Helper (links)",
            "Name[zh_CN]=证书助手",
            "Comment=Opens P11:// and certhelper:// links",
            "Comment[zh_CN]=打开 P11:// 与 certhelper:// 链接",
            f"Exec={exec_line('open-url', field_code='%u')}",
            "Terminal=false",
            "NoDisplay=true",
            "MimeType=" + "".join(f"{m};" for m in paths.MIME_TYPES),
            "",
        ]
    )


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def query_default(mime: str) -> str | None:
    """``xdg-mime query default MIME`` ("" when none), None without xdg-mime."""
    if shutil.which("xdg-mime") is None:
        return None
    return _run(["xdg-mime", "query", "default", mime]).stdout.strip()


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _update_database(manifest: Manifest | None) -> None:
    if shutil.which("update-desktop-database") is None:
        return
    apps = paths.applications_dir()
    cache = apps / "mimeinfo.cache"
    existed = cache.exists()
    _run(["update-desktop-database", str(apps)])
    if manifest is not None and not existed and cache.exists():
        manifest.add_file(cache)


def install(manifest: Manifest, *, dry_run: bool = False) -> list[Step]:
    # the defaults before our desktop file exists (afterwards mimeinfo.cache names it)
    # (the explicit mimeapps.list entry wins: xdg-mime ignores one whose file is gone)
    explicit = explicit_defaults()
    previous = {m: explicit.get(m) or query_default(m) or "" for m in paths.MIME_TYPES}
    path = paths.scheme_desktop_file()
    status = write_if_changed(path, entry_text(), manifest, dry_run=dry_run)
    steps = [Step(NAME, "exists" if status == "exists" else "done", str(path))]
    if status == "done" and not dry_run:
        _update_database(manifest)
    steps.append(_set_defaults(manifest, previous, dry_run=dry_run))
    return steps


def explicit_defaults() -> dict[str, str]:
    """The ``[Default Applications]`` entries of the user's mimeapps.list."""
    out: dict[str, str] = {}
    section = ""
    try:
        lines = paths.mimeapps_list().read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return out
    for line in lines:
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Default Applications]" and "=" in line:
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), value.strip().split(";")[0])
    return out


def _set_defaults(manifest: Manifest, previous: dict[str, str], *, dry_run: bool) -> Step:
    if shutil.which("xdg-mime") is None:
        return Step(MIME_NAME, "skipped", "未安装 xdg-mime (xdg-utils not installed)")
    ours = paths.SCHEME_DESKTOP_NAME
    explicit = explicit_defaults()
    current = {m: previous.get(m, "") for m in paths.MIME_TYPES}
    todo = [m for m in paths.MIME_TYPES if explicit.get(m) != ours]
    if not todo:
        return Step(MIME_NAME, "exists", ", ".join(paths.MIME_TYPES))
    if dry_run:
        return Step(MIME_NAME, "done", ", ".join(todo))
    mime = manifest.mime
    listfile = paths.mimeapps_list()
    if "list" not in mime:
        mime["list"] = str(listfile)
        mime["before"] = listfile.read_text("utf-8") if listfile.exists() else None
        mime["previous"] = {}
    make_dirs(listfile.parent, manifest)
    for m in todo:
        mime["previous"].setdefault(m, current[m])
        _run(["xdg-mime", "default", ours, m])
    mime["after_sha256"] = _sha256(listfile)
    failed = [m for m in todo if query_default(m) != ours]
    if failed:
        return Step(MIME_NAME, "failed", f"xdg-mime query default: {', '.join(failed)}")
    return Step(MIME_NAME, "done", ", ".join(todo))


def uninstall(manifest: Manifest, *, dry_run: bool = False) -> list[Step]:
    steps = [_restore_defaults(manifest, dry_run=dry_run)]
    path = paths.scheme_desktop_file()
    if remove_recorded(path, manifest, dry_run=dry_run) == "done":
        steps.append(Step(NAME, "done", f"已删除 removed {path}"))
        if not dry_run:
            _cleanup_database(manifest)
    else:
        steps.append(Step(NAME, "skipped", "未由安装程序添加 not added by install"))
    return steps


def _cleanup_database(manifest: Manifest) -> None:
    cache = paths.applications_dir() / "mimeinfo.cache"
    if str(cache) in manifest.files:  # there was none before install
        cache.unlink(missing_ok=True)
        manifest.files.remove(str(cache))
    else:
        _update_database(None)


def _restore_defaults(manifest: Manifest, *, dry_run: bool) -> Step:
    mime = manifest.mime
    if not mime:
        return Step(MIME_NAME, "skipped", "未由安装程序设置 not set by install")
    if dry_run:
        return Step(MIME_NAME, "done", "恢复原默认程序 restore the previous defaults")
    listfile = Path(mime["list"])
    before = mime.get("before")
    if _sha256(listfile) == mime.get("after_sha256"):
        # nobody changed the file since install: put back exactly what was there
        if before is None:
            listfile.unlink(missing_ok=True)
        else:
            listfile.write_text(before, "utf-8")
    else:
        _remove_our_lines(listfile)
        for m, prev in mime.get("previous", {}).items():
            if prev and prev != paths.SCHEME_DESKTOP_NAME and shutil.which("xdg-mime"):
                _run(["xdg-mime", "default", prev, m])
    manifest.mime = {}
    return Step(MIME_NAME, "done", "已恢复原默认程序 previous defaults restored")


def _remove_our_lines(listfile: Path) -> None:
    try:
        lines = listfile.read_text("utf-8").splitlines(keepends=True)
    except OSError:
        return
    ours = paths.SCHEME_DESKTOP_NAME
    kept = []
    for line in lines:
        key, _, value = line.strip().partition("=")
        if key in paths.MIME_TYPES:
            apps = [a for a in value.split(";") if a and a != ours]
            if not apps:
                continue
            line = f"{key}={';'.join(apps)}\n"
        kept.append(line)
    listfile.write_text("".join(kept), "utf-8")
