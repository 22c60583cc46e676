"""The audit log (security.md, req. 15): append-only JSON lines, chained with a keyed
MAC, size-bounded, and anchored so that cutting or rewriting it is detected.

Each line holds time, origin, operation, certificate thumbprint, outcome, its
sequence number, the previous line's MAC and its own: ``mac = HMAC-SHA256(key,
canonical JSON of the line without mac)``. The key is a random secret in the OS
keyring (a user-only ``audit.key`` file beside the log when there is no keyring,
which protects less: docs/security.md), so a person who can edit the files but not read the key
cannot recompute the chain after changing a line. ``audit.head`` records the last
sequence number and MAC, itself under the key: a log cut short no longer reaches
the head. What this does not stop: someone who can read the key (the same user's
malware with keyring access), or who replaces both the log and ``audit.head`` with
older copies of themselves.

The log rotates at ``max_bytes`` into ``audit.jsonl.1`` … ``.N`` (``keep`` files),
the chain running on across files; the oldest kept file starts with a line whose
predecessor was rotated away, which :func:`verify_log` accepts and reports. No PIN
and no signed payload is ever written here: callers pass only these fields.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helper.services.secrets import KeyringSecret, valid_key

GENESIS = "0" * 64
KEY_NAME = "audit-log-key"
DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_KEEP = 3


def _canonical(entry: dict[str, Any]) -> bytes:
    body = {k: v for k, v in entry.items() if k != "mac"}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _mac(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _head_mac(key: bytes, seq: int, last: str) -> str:
    return _mac(key, f"head|{seq}|{last}".encode())


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def audit_key(directory: Path, keyring_backend: Any = None) -> tuple[bytes, str]:
    """The MAC key and where it lives ("keyring" or "file")."""
    key = KeyringSecret(KEY_NAME, keyring_backend).get_or_create()
    if key is not None:
        return base64.b64decode(key), "keyring"
    path = directory / "audit.key"
    try:
        text = path.read_text("ascii").strip()
        if valid_key(text):
            return base64.b64decode(text), "file"
    except OSError:
        pass
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    _write_private(path, text + "\n")
    return base64.b64decode(text), "file"


def log_files(path: Path, keep: int = DEFAULT_KEEP) -> list[Path]:
    """The log's files, oldest first (rotated ones, then the current one)."""
    rotated = [path.with_name(f"{path.name}.{i}") for i in range(keep, 0, -1)]
    return [p for p in rotated if p.exists()] + ([path] if path.exists() else [])


class AuditLog:
    def __init__(
        self,
        path: Path,
        key: bytes,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        keep: int = DEFAULT_KEEP,
    ) -> None:
        self.path = path
        self.head_path = path.with_name("audit.head")
        self._key = key
        self.max_bytes = max_bytes
        self.keep = keep
        self._lock = threading.Lock()
        self._set_aside_legacy()
        self._seq, self._last = self._read_head()

    def _set_aside_legacy(self) -> None:
        """A log from before the keyed chain (lines without "mac") is kept beside,
        as ``audit.jsonl.legacy``, and a new chain starts."""
        try:
            with self.path.open("r", encoding="utf-8") as fh:
                first = fh.readline()
        except OSError:
            return
        try:
            legacy = bool(first.strip()) and "mac" not in json.loads(first)
        except ValueError:
            legacy = False
        if legacy:
            os.replace(self.path, self.path.with_name(self.path.name + ".legacy"))

    def _read_head(self) -> tuple[int, str]:
        """Continue from the head when it is ours; else from the last line (a log
        without a head starts a new chain, which verify_log will name)."""
        try:
            head = json.loads(self.head_path.read_text("utf-8"))
            seq, last = int(head["seq"]), str(head["mac"])
            if hmac.compare_digest(str(head["sig"]), _head_mac(self._key, seq, last)):
                return seq, last
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return 0, GENESIS

    def _rotate(self) -> None:
        for i in range(self.keep, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            newer = self.path.with_name(f"{self.path.name}.{i - 1}") if i > 1 else self.path
            if newer.exists():
                os.replace(newer, older)  # the oldest beyond `keep` is overwritten

    def append(
        self, *, origin: str, operation: str, certificate: str | None, outcome: str
    ) -> dict[str, object]:
        with self._lock:
            entry: dict[str, Any] = {
                "seq": self._seq + 1,
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "origin": origin,
                "operation": operation,
                "certificate": certificate,
                "outcome": outcome,
                "prev": self._last,
            }
            entry["mac"] = _mac(self._key, _canonical(entry))
            line = json.dumps(entry, ensure_ascii=False) + "\n"
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(line.encode()) > self.max_bytes:
                self._rotate()
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(line)
            self._seq, self._last = entry["seq"], entry["mac"]
            head = {"seq": self._seq, "mac": self._last}
            head["sig"] = _head_mac(self._key, self._seq, self._last)
            _write_private(self.head_path, json.dumps(head) + "\n")
            return entry


@dataclass(frozen=True)
class Verdict:
    ok: bool
    entries: int
    message: str


def verify_log(path: Path, key: bytes, keep: int = DEFAULT_KEEP) -> Verdict:
    """Check every kept file, the chain across them, and the head; the message names
    the first bad place (file, line, sequence number)."""
    files = log_files(path, keep)
    head_path = path.with_name("audit.head")
    if not files and not head_path.exists():
        return Verdict(True, 0, "no audit log yet")
    prev: str | None = None
    seq = 0
    count = 0
    first_seq: int | None = None
    for f in files:
        try:
            lines = f.read_text("utf-8").splitlines()
        except OSError as exc:
            return Verdict(False, count, f"{f.name}: unreadable ({exc.strerror})")
        for number, line in enumerate(lines, 1):
            where = f"{f.name} line {number}"
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                return Verdict(False, count, f"{where}: not JSON")
            if not isinstance(entry, dict) or not isinstance(entry.get("mac"), str):
                return Verdict(False, count, f"{where}: not an audit entry")
            if not hmac.compare_digest(entry["mac"], _mac(key, _canonical(entry))):
                return Verdict(False, count, f"{where} (seq {entry.get('seq')}): altered")
            if prev is not None and (entry.get("prev") != prev or entry.get("seq") != seq + 1):
                return Verdict(False, count, f"{where} (seq {entry.get('seq')}): lines missing")
            if first_seq is None:
                first_seq = int(entry["seq"])
                if first_seq == 1 and entry.get("prev") != GENESIS:
                    return Verdict(False, count, f"{where}: does not start the chain")
            prev, seq = entry["mac"], int(entry["seq"])
            count += 1
    try:
        head = json.loads(head_path.read_text("utf-8"))
        head_seq, head_mac = int(head["seq"]), str(head["mac"])
        good = hmac.compare_digest(str(head["sig"]), _head_mac(key, head_seq, head_mac))
    except (OSError, ValueError, KeyError, TypeError):
        return Verdict(False, count, "audit.head missing or unreadable: the end is not anchored")
    if not good:
        return Verdict(False, count, "audit.head altered")
    if head_seq != seq or head_mac != (prev or GENESIS):
        return Verdict(
            False, count, f"cut short: the log ends at seq {seq}, the head at seq {head_seq}"
        )
    start = "" if first_seq in (None, 1) else f" (from seq {first_seq}; older entries rotated away)"
    return Verdict(True, count, f"{count} entries, chain intact{start}")
