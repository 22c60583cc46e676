"""The TLS identity on disk and its trust in a real NSS database made with certutil."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keyring.backends.fail
import pytest

from helper.config import Config
from helper.doctor.checks import nss_findings, tls_findings
from helper.doctor.checks.base import DoctorEnv
from helper.services.tls import ensure_identity
from tests.support.doctor import make_env
from tests.support.keyring import MemoryKeyring

NOW = datetime(2025, 6, 1, tzinfo=UTC)
certutil = shutil.which("certutil")
needs_certutil = pytest.mark.skipif(certutil is None, reason="libnss3-tools not installed")


def identity(env: DoctorEnv, backend=None):
    return ensure_identity(env.tls_dir, now=NOW, keyring_backend=backend or MemoryKeyring())


def codes(findings) -> list[tuple[str, str]]:
    return [(f.level, f.code) for f in findings]


def at(tmp_path: Path, days: float = 0, **kw) -> DoctorEnv:
    return make_env(tmp_path, now=lambda: NOW + timedelta(days=days), **kw)


def test_tls_missing(env: DoctorEnv) -> None:
    [f] = tls_findings(Config(), env)
    assert (f.level, f.code) == ("warning", "tls_missing")
    assert nss_findings(Config(), env) == []  # nothing to trust yet


def test_tls_ok_with_keyring(tmp_path: Path) -> None:
    env = at(tmp_path)
    identity(env)
    assert codes(tls_findings(Config(), env)) == [("ok", "tls_leaf_ok")]


def test_tls_leaf_expiring_and_expired(tmp_path: Path) -> None:
    env = at(tmp_path, days=25)  # the 30-day leaf has 5 days left
    identity(env)
    assert codes(tls_findings(Config(), env)) == [("warning", "tls_leaf_expiring")]
    env.now = lambda: NOW + timedelta(days=40)
    assert codes(tls_findings(Config(), env)) == [("error", "tls_leaf_expired")]


def test_tls_keys_in_files_without_keyring(tmp_path: Path) -> None:
    env = at(tmp_path)
    ident = identity(env, keyring.backends.fail.Keyring())
    assert ident.key_protection == "file"
    found = codes(tls_findings(Config(), env))
    assert ("warning", "tls_key_unencrypted") in found and ("ok", "tls_leaf_ok") in found


def test_tls_leaf_from_another_ca(tmp_path: Path) -> None:
    env = at(tmp_path)
    identity(env)
    other = at(tmp_path / "other")
    identity(other)
    shutil.copy(other.tls_dir / "leaf.pem", env.tls_dir / "leaf.pem")
    assert ("error", "tls_leaf_not_chained") in codes(tls_findings(Config(), env))


def test_tls_key_readable_by_others(tmp_path: Path) -> None:
    env = at(tmp_path)
    identity(env)
    (env.tls_dir / "leaf.key").chmod(0o644)
    assert ("error", "tls_key_permissions") in codes(tls_findings(Config(), env))


# --- NSS ------------------------------------------------------------------------


def nss_env(tmp_path: Path) -> DoctorEnv:
    env = at(tmp_path, commands={"certutil": certutil or "certutil"})
    identity(env)
    env.nssdb.mkdir(parents=True)
    subprocess.run([certutil, "-N", "-d", f"sql:{env.nssdb}", "--empty-password"], check=True)
    return env


def add(env: DoctorEnv, nick: str, pem: Path, trust: str) -> None:
    subprocess.run(
        [certutil, "-A", "-d", f"sql:{env.nssdb}", "-n", nick, "-t", trust, "-i", str(pem)],
        check=True,
    )


def test_nss_database_missing(tmp_path: Path) -> None:
    env = at(tmp_path, commands={"certutil": "/usr/bin/certutil"})
    identity(env)
    [f] = nss_findings(Config(), env)
    assert (f.level, f.code) == ("warning", "nss_missing")
    assert "certhelper install" in f.fix


@needs_certutil
def test_nss_not_trusted(tmp_path: Path) -> None:
    env = nss_env(tmp_path)
    [f] = nss_findings(Config(), env)
    assert (f.level, f.code) == ("warning", "nss_not_trusted")
    assert "certhelper install" in f.fix


@needs_certutil
def test_nss_trusted_by_fingerprint(tmp_path: Path) -> None:
    env = nss_env(tmp_path)
    add(env, "some name the installer chose", env.tls_dir / "ca.pem", "C,,")
    assert codes(nss_findings(Config(), env)) == [("ok", "nss_trusted")]


@needs_certutil
def test_nss_present_without_trust(tmp_path: Path) -> None:
    env = nss_env(tmp_path)
    add(env, "certhelper local CA", env.tls_dir / "ca.pem", ",,")
    assert codes(nss_findings(Config(), env)) == [("warning", "nss_not_trusted")]


@needs_certutil
def test_nss_holds_an_older_ca(tmp_path: Path) -> None:
    env = nss_env(tmp_path)
    old = at(tmp_path / "old")
    identity(old)
    add(env, "certhelper local CA (old)", old.tls_dir / "ca.pem", "C,,")
    assert codes(nss_findings(Config(), env)) == [("warning", "nss_stale_ca")]


def test_nss_without_certutil(tmp_path: Path) -> None:
    env = at(tmp_path, commands={})
    identity(env)
    env.nssdb.mkdir(parents=True)
    (env.nssdb / "cert9.db").write_bytes(b"")
    assert codes(nss_findings(Config(), env)) == [("warning", "nss_unchecked")]
