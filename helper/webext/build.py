"""``certhelper extension build``: an unpacked extension for the configured origins.

The source is ``extension/`` at the repository root (its ``manifest.json`` is the
template, its scripts are copied as they are). The generated manifest's
``host_permissions`` and every content script's ``matches`` are the configured hall
and CA origins as match patterns (:mod:`.patterns`). Chromium keeps the ``key`` (the
fixed ID the host manifests admit); Firefox (MV3, ≥ 128 for MAIN-world content
scripts) gets ``background.scripts`` instead of a service worker, its add-on ID in
``browser_specific_settings`` and no ``key``.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import helper
from helper.errors import ConfigInvalid
from helper.webext.ids import CHROMIUM_EXTENSION_ID, FIREFOX_ADDON_ID, chromium_id_from_key
from helper.webext.patterns import BROWSERS, match_patterns

FIREFOX_MIN_VERSION = "128.0"


def source_dir() -> Path:
    """``extension/`` next to the ``helper`` package (a source checkout or an editable
    install; a wheel does not carry it)."""
    return Path(helper.__file__).resolve().parents[1] / "extension"


def _load_template(source: Path) -> dict[str, Any]:
    path = source / "manifest.json"
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigInvalid(
            detail=f"找不到扩展源文件 (extension source not found): {path} — "
            "需要源码目录或可编辑安装 (needs the source checkout or an editable install)"
        ) from None
    except (OSError, ValueError) as e:
        raise ConfigInvalid(detail=f"{path}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigInvalid(detail=f"{path}: not a JSON object")
    return data


def _scripts(template: dict[str, Any]) -> list[str]:
    """Every script the manifest names, in order, once each."""
    names: list[str] = []
    worker = (template.get("background") or {}).get("service_worker")
    names += [worker] if worker else []
    for cs in template.get("content_scripts", []):
        names += cs.get("js", [])
    return list(dict.fromkeys(names))


def manifest_for(template: dict[str, Any], patterns: list[str], browser: str) -> dict[str, Any]:
    """The template with the origins' patterns, adapted to ``browser``."""
    out = copy.deepcopy(template)
    out["host_permissions"] = list(patterns)
    for cs in out.get("content_scripts", []):
        cs["matches"] = list(patterns)
    if browser == "firefox":
        out.pop("key", None)
        worker = (out.get("background") or {}).get("service_worker", "background.js")
        out["background"] = {"scripts": [worker]}
        out["browser_specific_settings"] = {
            "gecko": {"id": FIREFOX_ADDON_ID, "strict_min_version": FIREFOX_MIN_VERSION}
        }
    return out


def build_extension(source: Path, out: Path, origins: list[str], browser: str) -> Path:
    """Write the unpacked extension for ``browser`` into ``out``; return ``out``.
    Raises ConfigInvalid for bad origins, a missing source or a key that is not ours."""
    if browser not in BROWSERS:
        raise ConfigInvalid(detail=f"浏览器只能是 (browser must be one of) {', '.join(BROWSERS)}")
    try:
        patterns = match_patterns(origins, browser)
    except ValueError as e:
        raise ConfigInvalid(
            detail=f"网上大厅或 CA 网址无效 (bad hall / CA origin in the config): {e}"
        ) from None
    template = _load_template(source)
    key = template.get("key")
    if browser == "chromium" and (
        not isinstance(key, str) or chromium_id_from_key(key) != CHROMIUM_EXTENSION_ID
    ):
        raise ConfigInvalid(
            detail=f"{source / 'manifest.json'}: key 与扩展 ID 不符 "
            f"(the key does not give the ID {CHROMIUM_EXTENSION_ID} the native host admits)"
        )
    if out.resolve() == source.resolve():
        raise ConfigInvalid(detail=f"输出目录不能是源目录 (--out is the source): {out}")
    scripts = _scripts(template)
    missing = [s for s in scripts if not (source / s).is_file()]
    if missing:
        raise ConfigInvalid(detail=f"{source}: missing {', '.join(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    for name in scripts:
        shutil.copyfile(source / name, out / name)
    manifest = manifest_for(template, patterns, browser)
    text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
    (out / "manifest.json").write_text(text, "utf-8")
    return out
