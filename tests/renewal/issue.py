"""A stand-in CA for the renewal tests: issues a certificate for a public key
with cryptography, copying what a CA copies from the certificate it renews."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ObjectIdentifier

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
