"""installer.policy against a temporary root: write, idempotency, remove, read, findings."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from installer.policy import (
    POLICY_DIRS,
    POLICY_FILE,
    SECURE_KEY,
    normalize_origin,
    policy_document,
    policy_findings,
    read_policy,
    remove_policy,
    write_policy,
)

HALL = "http://111.62.46.105:9010"
HTTPS = "https://zwfw.hebei.gov.cn"


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_write_puts_both_keys_sorted_in_both_dirs(tmp_path: Path) -> None:
    written = write_policy([HTTPS, HALL + "/", HALL], tmp_path)
    expected = [tmp_path / str(d).lstrip("/") / POLICY_FILE for d in POLICY_DIRS]
    assert written == expected
    assert files(tmp_path) == sorted(expected)
    for path in written:
        doc = json.loads(path.read_text("utf-8"))
        assert doc == {
            "LocalNetworkAccessAllowedForUrls": [HALL, HTTPS],
            "LoopbackNetworkAllowedForUrls": [HALL, HTTPS],
            SECURE_KEY: [HALL],  # only the plain-http origin
        }
        assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_write_is_idempotent_and_replaces_changed_content(tmp_path: Path) -> None:
    first = write_policy([HALL], tmp_path)[0]
    before = first.stat()
    os.utime(first, ns=(1, 1))
    write_policy([HALL], tmp_path)
    after = first.stat()
    assert after.st_ino == before.st_ino and after.st_mtime_ns == 1  # untouched
    first.chmod(0o600)
    write_policy([HALL], tmp_path)
    assert stat.S_IMODE(first.stat().st_mode) == 0o644
    write_policy([HALL, HTTPS], tmp_path)
    assert json.loads(first.read_text())["LoopbackNetworkAllowedForUrls"] == [HALL, HTTPS]
    assert [p.name for p in first.parent.iterdir()] == [POLICY_FILE]  # no temp file left


def test_secure_override_can_be_left_out(tmp_path: Path) -> None:
    path = write_policy([HALL], tmp_path, secure_override=False)[0]
    assert SECURE_KEY not in json.loads(path.read_text())
    assert SECURE_KEY not in policy_document(["http://127.0.0.1:8090", HTTPS])


def test_remove_takes_only_our_file(tmp_path: Path) -> None:
    written = write_policy([HALL], tmp_path)
    other = written[0].parent / "admin.json"
    other.write_text("{}")
    assert remove_policy(tmp_path) == written
    assert files(tmp_path) == [other]
    assert remove_policy(tmp_path) == []


def test_write_with_no_origins_removes(tmp_path: Path) -> None:
    write_policy([HALL], tmp_path)
    assert write_policy([], tmp_path) == []
    assert files(tmp_path) == []


def test_never_writes_outside_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "etc").mkdir(parents=True)
    outside.mkdir()
    (root / "etc" / "chromium").symlink_to(outside)
    with pytest.raises(ValueError, match="outside"):
        write_policy([HALL], root)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("bad", ["ftp://x", "http://x/path", "hall.example", "http://x:99999"])
def test_rejects_what_is_not_an_origin(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_origin(bad)


def test_normalize_origin() -> None:
    assert normalize_origin("HTTP://Hall.Example:80/") == "http://hall.example"
    assert normalize_origin("https://[::1]:8443") == "https://[::1]:8443"


def test_read_policy_lists_every_json_file(tmp_path: Path) -> None:
    ours = write_policy([HALL], tmp_path)
    admin = ours[1].parent / "admin.json"
    admin.write_text(json.dumps({"LocalNetworkAccessAllowedForUrls": ["*"], "Other": 1}))
    (ours[1].parent / "broken.json").write_text("{")
    assert read_policy(tmp_path) == {ours[0]: [HALL], ours[1]: [HALL], admin: ["*"]}
    assert read_policy(tmp_path / "empty") == {}


def test_findings_without_policy_explain_lna_and_fix(tmp_path: Path) -> None:
    found = policy_findings([HALL, HTTPS, "http://127.0.0.1:8090"], tmp_path)
    assert [f[0] for f in found] == ["error", "warning"]  # loopback needs nothing
    _level, message, fix = found[0]
    assert HALL in message and "本地网络访问" in message and "Local Network Access" in message
    assert "sudo certhelper install --system" in fix


def test_findings_with_policy_are_ok(tmp_path: Path) -> None:
    write_policy([HALL, HTTPS], tmp_path)
    assert [f[0] for f in policy_findings([HALL, HTTPS], tmp_path)] == ["ok", "ok"]
    # an origin added to the config later is not covered
    assert [f[0] for f in policy_findings([HALL, "http://1.2.3.4"], tmp_path)] == [
        "ok",
        "error",
    ]


def test_findings_partial_or_allow_lists_only(tmp_path: Path) -> None:
    written = write_policy([HALL], tmp_path)
    written[1].unlink()  # Chrome's copy gone
    assert [f[0] for f in policy_findings([HALL], tmp_path)] == ["warning"]
    # allow-lists without the secure-context override do not let a plain-http hall through
    write_policy([HALL], tmp_path, secure_override=False)
    assert [f[0] for f in policy_findings([HALL], tmp_path)] == ["error"]
    written[0].write_text("not json")
    assert "unreadable" in policy_findings([HALL], tmp_path)[0][1]
