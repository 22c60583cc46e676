"""The record of what ``certhelper install`` added, so ``uninstall`` removes exactly that.

JSON in ``<data dir>/install-manifest.json``::

    {"version": 1,
     "files": [paths the installer created],
     "dirs": [directories it created, parents first],
     "nss": {"<db dir>": "<nickname>"},          CA entries it added
     "nss_created": ["<db dir>"],                 NSS databases it created
     "mime": {"list": path, "before": text|null,  mimeapps.list before the first change
              "after_sha256": hex,                and after the last one
              "previous": {"<mime type>": "<desktop file>"|""}},
     "system": {"ca_file": path}}                 with --system

Written only when it changes, so a second ``install`` leaves the file untouched.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERSION = 1


@dataclass
class Manifest:
    files: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    nss: dict[str, str] = field(default_factory=dict)
    nss_created: list[str] = field(default_factory=list)
    mime: dict[str, Any] = field(default_factory=dict)
    system: dict[str, str] = field(default_factory=dict)
    #: where install --system wrote the browser policy ("" = not written)
    policy_root: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "files": self.files,
            "dirs": self.dirs,
            "nss": self.nss,
            "nss_created": self.nss_created,
            "mime": self.mime,
            "system": self.system,
            "policy_root": self.policy_root,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        return cls(
            files=list(data.get("files", [])),
            dirs=list(data.get("dirs", [])),
            nss=dict(data.get("nss", {})),
            nss_created=list(data.get("nss_created", [])),
            mime=dict(data.get("mime", {})),
            system=dict(data.get("system", {})),
            policy_root=str(data.get("policy_root", "")),
        )

    def is_empty(self) -> bool:
        return (
            not (
                self.files or self.dirs or self.nss or self.nss_created or self.mime or self.system
            )
            and not self.policy_root
        )

    def add_file(self, path: Path) -> None:
        if str(path) not in self.files:
            self.files.append(str(path))

    def add_dir(self, path: Path) -> None:
        if str(path) not in self.dirs:
            self.dirs.append(str(path))


def make_dirs(path: Path, manifest: Manifest, mode: int = 0o755) -> None:
    """``mkdir -p`` that records each directory it creates."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(mode=mode)
        manifest.add_dir(d)


def remove_dirs(manifest: Manifest) -> None:
    """Remove the directories the installer created, deepest first, if now empty."""
    for d in sorted(manifest.dirs, key=lambda s: s.count(os.sep), reverse=True):
        try:
            Path(d).rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            continue  # not empty: something else lives there now
    manifest.dirs = [d for d in manifest.dirs if Path(d).exists()]


def load(path: Path) -> Manifest:
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return Manifest()
    except (OSError, ValueError):
        return Manifest()
    return Manifest.from_dict(data) if isinstance(data, dict) else Manifest()


def _text(manifest: Manifest) -> str:
    return json.dumps(manifest.to_dict(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def save(manifest: Manifest, path: Path) -> bool:
    """Write the manifest (removing it when empty); False when nothing changed."""
    if manifest.is_empty():
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed
    text = _text(manifest)
    try:
        if path.read_text("utf-8") == text:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return True
