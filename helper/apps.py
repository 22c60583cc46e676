"""The tray's 应用 (applications) submenu: category → entry → URL.

The packaged ``helper/apps.toml`` holds entries with a citable public address;
the user's ``<config dir>/apps.toml`` (same format) adds categories and
entries: a category with the same name is merged, an entry with the same name
in that category replaces the packaged one. Only ``http``/``https`` addresses
are accepted. A broken user file is reported and skipped, never fatal.

```toml
[[category]]
name = "公积金"
[[category.app]]
name = "沧州公积金"
url = "http://111.62.46.105:9010/ish/"
source = "where the address comes from"   # optional
```
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from helper.config import config_dir
from helper.errors import ConfigInvalid

log = logging.getLogger(__name__)

APPS_FILE = "apps.toml"
_NAME_MAX = 40
_URL_MAX = 2000


@dataclass(frozen=True)
class App:
    name: str
    url: str
    source: str = ""


@dataclass(frozen=True)
class Category:
    name: str
    apps: tuple[App, ...] = ()


@dataclass
class AppCatalog:
    categories: list[Category] = field(default_factory=list)
    #: what was wrong with the user's file (it was skipped), for the log and doctor
    problems: list[str] = field(default_factory=list)


def user_apps_path() -> Path:
    return config_dir() / APPS_FILE


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigInvalid(detail=f"{where}: 'name' must be a non-empty string")
    name = " ".join(value.split())
    if len(name) > _NAME_MAX:
        raise ConfigInvalid(detail=f"{where}: 'name' is longer than {_NAME_MAX} characters")
    return name


def _url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigInvalid(detail=f"{where}: 'url' must be a non-empty string")
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigInvalid(detail=f"{where}: 'url' must be an http:// or https:// address")
    if len(url) > _URL_MAX or any(c.isspace() or ord(c) < 32 for c in url):
        raise ConfigInvalid(detail=f"{where}: 'url' is not a valid address")
    return url


def _unknown(table: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise ConfigInvalid(detail=f"{where}: unknown key(s) {', '.join(extra)}")


def parse_apps(text: str, origin: str) -> list[Category]:
    """Parse one apps file; :class:`ConfigInvalid` names the file and the entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigInvalid(detail=f"{origin}: {exc}") from None
    _unknown(data, {"category"}, origin)
    raw = data.get("category", [])
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise ConfigInvalid(detail=f"{origin}: write categories as [[category]] tables")
    out: list[Category] = []
    for i, cat in enumerate(raw, 1):
        cname = _name(cat.get("name"), f"{origin}: category {i}")
        where = f"{origin}: category「{cname}」"
        _unknown(cat, {"name", "app"}, where)
        if any(c.name == cname for c in out):
            raise ConfigInvalid(detail=f"{where} appears twice")
        apps_raw = cat.get("app", [])
        if not isinstance(apps_raw, list) or not all(isinstance(a, dict) for a in apps_raw):
            raise ConfigInvalid(detail=f"{where}: write entries as [[category.app]] tables")
        apps: list[App] = []
        for j, app in enumerate(apps_raw, 1):
            aname = _name(app.get("name"), f"{where} entry {j}")
            awhere = f"{where} entry「{aname}」"
            _unknown(app, {"name", "url", "source"}, awhere)
            source = app.get("source", "")
            if not isinstance(source, str):
                raise ConfigInvalid(detail=f"{awhere}: 'source' must be a string")
            if any(a.name == aname for a in apps):
                raise ConfigInvalid(detail=f"{awhere} appears twice")
            apps.append(App(aname, _url(app.get("url"), awhere), source))
        out.append(Category(cname, tuple(apps)))
    return out


def merge(base: list[Category], extra: list[Category]) -> list[Category]:
    """``extra`` over ``base``: same category name merged (same entry name replaced
    in place, new entries appended), new categories appended; empty ones dropped."""
    merged = {c.name: list(c.apps) for c in base}
    order = [c.name for c in base]
    for cat in extra:
        if cat.name not in merged:
            merged[cat.name] = []
            order.append(cat.name)
        apps = merged[cat.name]
        for app in cat.apps:
            same = [i for i, a in enumerate(apps) if a.name == app.name]
            if same:
                apps[same[0]] = app
            else:
                apps.append(app)
    return [Category(name, tuple(merged[name])) for name in order if merged[name]]


def packaged_apps() -> list[Category]:
    text = resources.files("helper").joinpath(APPS_FILE).read_text("utf-8")
    return parse_apps(text, f"helper/{APPS_FILE}")


def load_apps(user_path: Path | None = None) -> AppCatalog:
    """The packaged catalog merged with the user's file (default: the config
    dir's ``apps.toml``); a user file that cannot be used is skipped and named
    in ``problems``."""
    catalog = AppCatalog(packaged_apps())
    path = user_apps_path() if user_path is None else user_path
    if not path.exists():
        return catalog
    try:
        extra = parse_apps(path.read_text("utf-8"), str(path))
    except ConfigInvalid as exc:
        catalog.problems.append(exc.message())
    except (OSError, UnicodeDecodeError) as exc:
        catalog.problems.append(f"{path}: {exc}")
    else:
        catalog.categories = merge(catalog.categories, extra)
    for problem in catalog.problems:
        log.warning("applications file skipped: %s", problem)
    return catalog
