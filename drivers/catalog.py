"""Known key libraries (PKCS#11 modules, SKF libraries) per OS, kept as data in
``catalog.toml`` beside this file; each entry names its driver family."""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass
from importlib import resources

_OS_KEY = {"linux": "linux", "darwin": "macos", "win32": "windows"}


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    name: str
    vendor: str
    vendor_zh: str
    kind: str
    paths: tuple[str, ...]
    usb_ids: tuple[str, ...]
    install_hint_zh: str
    install_hint_en: str
    source: str
    family: str = "pkcs11"
    #: SKF libraries built with a 64-bit ULONG (``abi = "native-long"`` in the entry)
    native_long: bool = False


def os_key(platform: str | None = None) -> str:
    platform = platform or sys.platform
    for prefix, key in _OS_KEY.items():
        if platform.startswith(prefix):
            return key
    return "linux"


def load_catalog(platform: str | None = None, text: str | None = None) -> list[CatalogEntry]:
    """Entries with the paths for ``platform`` (default: this one)."""
    if text is None:
        text = resources.files("drivers").joinpath("catalog.toml").read_text("utf-8")
    data = tomllib.loads(text)
    key = os_key(platform)
    out = []
    for m in data.get("module", []):
        out.append(
            CatalogEntry(
                id=m["id"],
                name=m["name"],
                vendor=m.get("vendor", ""),
                vendor_zh=m.get("vendor_zh", ""),
                kind=m.get("kind", "usbkey"),
                paths=tuple(os.path.expandvars(p) for p in m.get(key, [])),
                usb_ids=tuple(u.lower() for u in m.get("usb_ids", [])),
                install_hint_zh=m.get("install_hint_zh", ""),
                install_hint_en=m.get("install_hint_en", ""),
                source=m.get("source", ""),
                family=m.get("family", "pkcs11"),
                native_long=m.get("abi", "standard") == "native-long",
            )
        )
    return out


def installed_modules(
    entries: list[CatalogEntry], *, include_kinds: frozenset[str] | None = None
) -> list[tuple[CatalogEntry, str]]:
    """(entry, path) for each catalogued module file present here, one per real file."""
    seen: set[str] = set()
    found = []
    for entry in entries:
        if include_kinds is not None and entry.kind not in include_kinds:
            continue
        for path in entry.paths:
            if not os.path.isfile(path):
                continue
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            found.append((entry, path))
            break  # one file per entry is enough
    return found


def entry_for_usb_id(entries: list[CatalogEntry], vid_pid: str) -> list[CatalogEntry]:
    vid_pid = vid_pid.lower()
    return [e for e in entries if vid_pid in e.usb_ids]
