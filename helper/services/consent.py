"""Persisted per-origin consent: "always" or "deny", revocable (security.md, req. 7).

Stored as JSON in the data dir, user-only, written atomically. "Allow once"
is never stored: it lasts for one WebSocket connection.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Literal

Recorded = Literal["always", "deny"]


class ConsentStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, object]] = self._load()

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            raw = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(raw, dict):
            return {}
        return {
            k: v
            for k, v in raw.items()
            if isinstance(v, dict) and v.get("decision") in ("always", "deny")
        }

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self._data, fh, ensure_ascii=False, indent=2)
        os.replace(tmp, self.path)

    def get(self, origin: str) -> Recorded | None:
        entry = self._data.get(origin)
        return entry["decision"] if entry else None  # type: ignore[return-value]

    def record(self, origin: str, decision: Recorded) -> None:
        with self._lock:
            self._data[origin] = {"decision": decision, "time": int(time.time())}
            self._save()

    def revoke(self, origin: str) -> bool:
        with self._lock:
            if self._data.pop(origin, None) is None:
                return False
            self._save()
            return True

    def all(self) -> dict[str, Recorded]:
        return {k: v["decision"] for k, v in self._data.items()}  # type: ignore[misc]
