"""Persisted per-origin consent: "always" or "deny", revocable (security.md, req. 7).

The file is the one source of truth for the daemon and ``certhelper origins``
alike: every read looks at the file again when it changed (a revocation from the
CLI holds at the next connection), and every write re-reads it under an exclusive
lock before changing it (the daemon never writes a revoked decision back). JSON in
the data dir, user-only, replaced atomically. "Allow once" is never stored: it
lasts for one WebSocket connection.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, cast

Recorded = Literal["always", "deny"]


def _lock_file(fd: int) -> None:
    """An exclusive lock until the file is closed (flock; msvcrt on Windows)."""
    if sys.platform == "win32":  # pragma: no cover - not run here
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)


_Stamp = tuple[int, int, int] | None  # (inode, size, mtime_ns) of the file as last read


class ConsentStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: _Stamp = None
        self._data: dict[str, dict[str, object]] = {}
        self._refresh()

    # --- the file ---------------------------------------------------------------------

    def _file_stamp(self) -> _Stamp:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _refresh(self) -> None:
        """Re-read the file if it changed since we last read it."""
        stamp = self._file_stamp()
        if stamp == self._stamp and stamp is not None:
            return
        self._data = self._load()
        self._stamp = stamp

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

    @contextlib.contextmanager
    def _writing(self) -> Iterator[dict[str, dict[str, object]]]:
        """The decisions as the file holds them now, under an exclusive lock shared
        with every other process; what the block leaves in the dict is written."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
        with self._lock, os.fdopen(fd, "w") as lock:
            _lock_file(lock.fileno())
            data = self._load()
            yield data
            tmp = self.path.with_suffix(".tmp")
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(out, "w", encoding="utf-8") as fh:
                json.dump(data, fh, ensure_ascii=False, indent=2)
            os.replace(tmp, self.path)
            self._data, self._stamp = data, self._file_stamp()

    # --- decisions --------------------------------------------------------------------

    def get(self, origin: str) -> Recorded | None:
        with self._lock:
            self._refresh()
            entry = self._data.get(origin)
        return cast(Recorded, entry["decision"]) if entry else None

    def record(self, origin: str, decision: Recorded) -> None:
        with self._writing() as data:
            data[origin] = {"decision": decision, "time": int(time.time())}

    def revoke(self, origin: str) -> bool:
        with self._writing() as data:
            return data.pop(origin, None) is not None

    def all(self) -> dict[str, Recorded]:
        with self._lock:
            self._refresh()
            return {k: cast(Recorded, v["decision"]) for k, v in self._data.items()}
