"""A renewal test token, plugged into the session's SoftHSM token directory.

A plugin of the root conftest (``pytest_plugins``), so every suite shares one
session build.

Renewal writes to the token, so every test gets its own copy of a token built
once per session from ``spec.toml`` (its own CA pair: what the tests issue
chains to a root only they trust). The copy is plugged in the way
tests/test_hotplug.py plugs tokens, and pulled out after the test.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ObjectIdentifier

from drivers.pkcs11.driver import Pkcs11Driver
from tests.support.tokens import BUILD, Fixtures

SPEC = Path(__file__).with_name("renewal_spec.toml")
LABEL = "续期测试Key"


@dataclass
class RenewalPki:
    """The template build: token directory, CA files and manifest."""

    dir: Path
    token_dir: Path
    manifest: dict[str, Any]

    @property
    def root_pem(self) -> Path:
        return Path(self.manifest["ca"]["root"])

    @property
    def issuing_pem(self) -> Path:
        return Path(self.manifest["ca"]["issuing"])

    @property
    def issuing_key_path(self) -> Path:
        return self.issuing_pem.with_suffix(".key")

    def issuing_cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.issuing_pem.read_bytes())

    def issuing_key(self) -> Any:
        return serialization.load_pem_private_key(self.issuing_key_path.read_bytes(), None)

    def cert(self, name: str) -> dict[str, Any]:
        return next(c for c in self.manifest["certificates"] if c["name"] == name)


@dataclass
class PluggedToken:
    pki: RenewalPki
    serial: str
    path: Path  # the token's directory inside the session's token dir

    def unplug(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@pytest.fixture(scope="session")
def renewal_pki(tmp_path_factory: pytest.TempPathFactory) -> RenewalPki:
    out = tmp_path_factory.mktemp("renewal") / "pki"
    proc = subprocess.run(
        [sys.executable, str(BUILD), str(out), "--spec", str(SPEC)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        pytest.fail(f"renewal token build failed:\n{proc.stdout}\n{proc.stderr}")
    (token_dir,) = [p for p in (out / "tokens").iterdir() if p.is_dir()]
    return RenewalPki(out, token_dir, json.loads((out / "manifest.json").read_text("utf-8")))


def plug(driver: Pkcs11Driver, fixtures: Fixtures, pki: RenewalPki) -> PluggedToken:
    """Copy the template token into the session's token dir and make the driver
    see it (a rescan re-initialises the module, so every login is ended first)."""
    path = fixtures.dir / "tokens" / pki.token_dir.name
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(pki.token_dir, path)
    for token in driver.list_tokens():
        driver.logout(token.serial)
    driver.list_tokens(rescan=True)
    serial = next(t.serial for t in driver.list_tokens() if t.label == LABEL)
    return PluggedToken(pki, serial, path)


@pytest.fixture
def renewal_token(
    driver: Pkcs11Driver, fixtures: Fixtures, renewal_pki: RenewalPki
) -> Iterator[PluggedToken]:
    plugged = plug(driver, fixtures, renewal_pki)
    try:
        yield plugged
    finally:
        driver.logout(plugged.serial)
        plugged.unplug()
        driver.list_tokens(rescan=True)


# --- issuing renewed certificates (the tests play the CA) -------------------------


HEBCA_UID = ObjectIdentifier("1.2.156.112586.1.4")


def issue(
    public_key: Any,
    old: x509.Certificate,
    issuer_cert: x509.Certificate,
    issuer_key: Any,
    *,
    subject: x509.Name | None = None,
    not_after: datetime | None = None,
    not_before: datetime | None = None,
    copy_extensions: bool = True,
) -> bytes:
    """DER of a certificate for ``public_key``, by default the old subject and
    extensions and one year from the old expiry."""
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject or old.subject)
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
        .not_valid_before(not_before or now - timedelta(minutes=5))
        .not_valid_after(not_after or max(old.not_valid_after_utc, now) + timedelta(days=365))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if copy_extensions:
        for ext in old.extensions:
            copied = (x509.KeyUsage, x509.ExtendedKeyUsage, x509.BasicConstraints)
            if isinstance(ext.value, copied) or ext.oid == HEBCA_UID:
                builder = builder.add_extension(ext.value, ext.critical)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def uid_extension(value: str) -> x509.UnrecognizedExtension:
    from asn1crypto import core

    return x509.UnrecognizedExtension(HEBCA_UID, core.UTF8String(value).dump())


# --- reading the token back -----------------------------------------------------------


def snapshot(driver: Pkcs11Driver, serial: str) -> list[tuple[Any, ...]]:
    """Everything the token shows without a login, in a stable order."""
    contents = driver.read_objects(serial)
    certs = sorted(("cert", c.label, c.key_id, c.value) for c in contents.certificates)
    keys = sorted(("key", k.key_id, k.label) for k in contents.private_keys)
    pubs = sorted(("pub", p.key_id, p.spki) for p in driver.public_keys(serial))
    return [*certs, *keys, *pubs]


RSA_CN = "沧州市续期测试有限公司"


EC_CN = "沧州市续期测试贸易公司"
