"""Append-only, hash-chained audit log (security.md, req. 15).

One JSON line per operation: time, origin, operation, certificate thumbprint,
outcome, the previous entry's hash and this entry's hash. Editing, removing or
reordering a line breaks the chain, which :func:`verify_chain` reports. No PIN
and no signed payload is ever written here: callers pass only these fields.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

GENESIS = "0" * 64


def _entry_hash(entry: dict[str, object]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._last = self._tail_hash()

    def _tail_hash(self) -> str:
        try:
            with self.path.open("rb") as fh:
                last = b""
                for line in fh:
                    if line.strip():
                        last = line
            return json.loads(last)["hash"] if last else GENESIS
        except (OSError, ValueError, KeyError):
            return GENESIS

    def append(
        self, *, origin: str, operation: str, certificate: str | None, outcome: str
    ) -> dict[str, object]:
        with self._lock:
            entry: dict[str, object] = {
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "origin": origin,
                "operation": operation,
                "certificate": certificate,
                "outcome": outcome,
                "prev": self._last,
            }
            entry["hash"] = _entry_hash(entry)
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._last = str(entry["hash"])
            return entry


def verify_chain(path: Path) -> tuple[bool, int, str]:
    """(ok, entries checked, message). The message names the first bad line."""
    prev = GENESIS
    count = 0
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        return True, 0, "no audit log yet"
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            return False, count, f"line {number}: not JSON"
        if entry.get("prev") != prev or entry.get("hash") != _entry_hash(entry):
            return False, count, f"line {number}: chain broken"
        prev = entry["hash"]
        count += 1
    return True, count, f"{count} entries, chain intact"
