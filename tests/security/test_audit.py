"""Finding 5: the audit log is bounded in size, its chain runs on across rotated
files, and cutting it short or rewriting a line — even with a recomputed plain hash
chain — is detected, with the place named."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import keyrings.alt.file

from helper.services.audit import AuditLog, audit_key, log_files, verify_log
from tests.support.doubles import AUDIT_KEY


def fill(path: Path, n: int, **kw: int) -> AuditLog:
    log = AuditLog(path, AUDIT_KEY, **kw)
    for i in range(n):
        log.append(origin="http://hall", operation=f"hebca:F{i % 7}", certificate=None,
                   outcome="ok" if i % 3 else "hebca_refused")  # fmt: skip
    return log


def test_an_intact_log_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, 200)
    verdict = verify_log(path, AUDIT_KEY)
    assert verdict.ok and verdict.entries == 200, verdict.message


def test_cutting_the_last_lines_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, 200)
    lines = path.read_text("utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-50]), "utf-8")
    verdict = verify_log(path, AUDIT_KEY)
    assert not verdict.ok and "cut short" in verdict.message
    assert "seq 150" in verdict.message and "seq 200" in verdict.message


def test_a_rewritten_line_with_a_recomputed_plain_chain_is_detected(tmp_path: Path) -> None:
    """The attacker turns an `ok` into `consent_denied` and recomputes SHA-256 hashes
    down the chain, as they could with the old hash chain: without the key the MAC
    does not follow."""
    path = tmp_path / "audit.jsonl"
    fill(path, 30)
    entries = [json.loads(x) for x in path.read_text("utf-8").splitlines()]
    target = next(i for i, e in enumerate(entries) if e["outcome"] == "ok")
    entries[target]["outcome"] = "consent_denied"
    prev = entries[target]["prev"]
    for e in entries[target:]:
        e["prev"] = prev
        body = {k: v for k, v in e.items() if k != "mac"}
        e["mac"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        prev = e["mac"]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries), "utf-8")
    verdict = verify_log(path, AUDIT_KEY)
    assert not verdict.ok and f"line {target + 1}" in verdict.message
    assert "altered" in verdict.message


def test_a_removed_line_in_the_middle_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, 40)
    lines = path.read_text("utf-8").splitlines(keepends=True)
    del lines[20]
    path.write_text("".join(lines), "utf-8")
    verdict = verify_log(path, AUDIT_KEY)
    assert not verdict.ok and "line 21" in verdict.message and "missing" in verdict.message


def test_a_deleted_head_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, 10)
    (tmp_path / "audit.head").unlink()
    assert not verify_log(path, AUDIT_KEY).ok


def test_a_flood_stays_bounded_and_the_chain_runs_across_files(tmp_path: Path) -> None:
    """10,000 refused legacy frames (the finding wrote 28.7 MB): at most keep + 1 files
    of max_bytes each, and what is kept verifies across the rotations."""
    path = tmp_path / "audit.jsonl"
    max_bytes, keep = 64 * 1024, 3
    fill(path, 10_000, max_bytes=max_bytes, keep=keep)
    files = log_files(path, keep)
    assert [f.name for f in files] == [
        "audit.jsonl.3",
        "audit.jsonl.2",
        "audit.jsonl.1",
        "audit.jsonl",
    ]
    assert sum(f.stat().st_size for f in files) <= (keep + 1) * max_bytes
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    verdict = verify_log(path, AUDIT_KEY, keep)
    assert verdict.ok, verdict.message
    assert "older entries rotated away" in verdict.message
    # and a gap between two kept files is named
    os.remove(files[1])
    broken = verify_log(path, AUDIT_KEY, keep)
    assert not broken.ok and "audit.jsonl.1 line 1" in broken.message


def test_the_log_continues_its_chain_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, 5)
    fill(path, 5)  # a new AuditLog: the daemon started again
    verdict = verify_log(path, AUDIT_KEY)
    assert verdict.ok and verdict.entries == 10, verdict.message


def test_an_old_style_log_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"time": "t", "prev": "0", "hash": "x", "outcome": "ok"}\n', "utf-8")
    fill(path, 3)
    assert (tmp_path / "audit.jsonl.legacy").exists()
    assert verify_log(path, AUDIT_KEY).ok


def test_the_key_lives_in_the_keyring_when_there_is_one(tmp_path: Path) -> None:
    backend = keyrings.alt.file.PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")  # type: ignore[misc]
    key, where = audit_key(tmp_path / "state", backend)
    assert where == "keyring" and len(key) == 32
    assert audit_key(tmp_path / "state", backend) == (key, "keyring")
    assert not (tmp_path / "state" / "audit.key").exists()


def test_without_a_keyring_the_key_is_a_user_only_file(tmp_path: Path) -> None:
    import keyring.backends.fail

    key, where = audit_key(tmp_path, keyring.backends.fail.Keyring())
    f = tmp_path / "audit.key"
    assert where == "file" and stat.S_IMODE(f.stat().st_mode) == 0o600
    assert audit_key(tmp_path, keyring.backends.fail.Keyring()) == (key, "file")
