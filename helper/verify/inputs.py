"""Checks on what a backend passes in (not on the token): the time, certificates,
key-usage names. Bad arguments raise ValueError or TypeError, never a VerifyError."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from cryptography import x509

from helper.domain.certificate import KEY_USAGE_NAMES

_KEY_USAGE_NAMES = frozenset(KEY_USAGE_NAMES)


def check_now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if not isinstance(now, datetime):
        raise TypeError("now must be a datetime")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def load_certs(items: Iterable[bytes | x509.Certificate], what: str) -> list[x509.Certificate]:
    """Certificates from objects, DER or PEM bytes (a PEM may hold several)."""
    out: list[x509.Certificate] = []
    for item in items:
        if isinstance(item, x509.Certificate):
            out.append(item)
            continue
        if not isinstance(item, bytes | bytearray | memoryview):
            raise TypeError(f"{what}: expected bytes or x509.Certificate, got {type(item)}")
        data = bytes(item)
        try:
            if b"-----BEGIN" in data:
                certs = x509.load_pem_x509_certificates(data)
            else:
                certs = [x509.load_der_x509_certificate(data)]
            for cert in certs:  # names are parsed lazily: fail here, not in the chain builder
                cert.subject, cert.issuer  # noqa: B018
            out.extend(certs)
        except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is no ValueError
            raise ValueError(f"{what}: not a certificate: {exc}") from exc
    return out


def key_usage_wanted(required: Sequence[str]) -> frozenset[str]:
    if isinstance(required, str):
        raise TypeError("required_key_usage must be a sequence of names, not a string")
    unknown = set(required) - _KEY_USAGE_NAMES
    if unknown:
        raise ValueError(f"unknown key usage names: {sorted(unknown)}")
    return frozenset(required)
