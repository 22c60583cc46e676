"""Per-install localhost TLS identity: a name-constrained CA and a short-lived leaf.

Layout of ``<data dir>/tls/`` (mode 0700), see docs/bridge-protocol.md "TLS identity":

- ``ca.pem``    the CA certificate (the file users or tests import as a trust anchor)
- ``ca.key``    the CA private key (0600)
- ``leaf.pem``  the server certificate followed by ``ca.pem``'s certificate, so the
  server sends the whole chain to clients that want it
- ``leaf.key``  the server private key (0600)

Private keys are PKCS#8 PEM encrypted with ``BestAvailableEncryption``; the password is a
wrapping key (32 random bytes, base64; the ASCII base64 text is the password) kept in the
OS keyring under service ``certhelper``, user ``tls-wrapping-key``. Without a usable
keyring the keys are written unencrypted, user-only (``key_protection == "file"``).
Decrypted key material never reaches the disk: ``ssl`` decrypts the PEM in memory.

``ensure_identity`` blocks (key generation, keyring over D-Bus): call it from an executor.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from helper.services.secrets import KEYRING_SERVICE, KeyringSecret

__all__ = [
    "CA_RENEW_BEFORE",
    "KEYRING_SERVICE",
    "KEYRING_USERNAME",
    "RENEW_BEFORE",
    "KeyProtection",
    "TlsIdentity",
    "TlsPaths",
    "ensure_identity",
    "leaf_needs_renewal",
    "reload_ssl_context",
    "ssl_context",
]

log = logging.getLogger(__name__)

KEYRING_USERNAME = "tls-wrapping-key"
#: renew the leaf when fewer than this remain
RENEW_BEFORE = timedelta(days=10)
#: regenerate the whole identity (CA included) when the CA has fewer than this left
CA_RENEW_BEFORE = timedelta(days=30)
#: certificates start this long before "now", to tolerate small clock differences
BACKDATE = timedelta(hours=1)
CA_CN_PREFIX = "证书助手本机 CA certhelper local CA"
ORGANIZATION = "certhelper"
LEAF_CN = "localhost"
DNS_NAMES = ("localhost",)
IP_ADDRESSES = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
PERMITTED_NETWORKS = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))
DIR_MODE = 0o700
KEY_MODE = 0o600
CERT_MODE = 0o644

KeyProtection = Literal["keyring", "file"]
_LOAD_ERRORS = (OSError, ValueError, TypeError, UnsupportedAlgorithm, InvalidSignature)


@dataclass(frozen=True)
class TlsPaths:
    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def leaf_cert(self) -> Path:
        return self.dir / "leaf.pem"

    @property
    def leaf_key(self) -> Path:
        return self.dir / "leaf.key"


@dataclass(frozen=True)
class TlsIdentity:
    paths: TlsPaths
    ca_cert: x509.Certificate
    leaf_cert: x509.Certificate
    #: the CA (and so the whole identity) was made by this call: browsers must re-trust it
    created: bool
    #: the leaf was issued by this call (always true when ``created``)
    renewed: bool
    key_protection: KeyProtection
    #: password of the key files (the wrapping key), None when they are unencrypted
    key_password: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class _Pair:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def ensure_identity(
    dir: Path,
    *,
    now: datetime | None = None,
    keyring_backend: Any = None,
    renew_before: timedelta = RENEW_BEFORE,
    leaf_days: int = 30,
    ca_years: int = 10,
    new_leaf: bool = False,
) -> TlsIdentity:
    """Load the identity in ``dir``, making or renewing what is missing, broken or expiring.

    ``new_leaf``: issue a fresh leaf under the same CA even if the current one is fine.
    Browsers cache a failed verification per certificate, so after the user's trust
    changed a new leaf is what makes an open page verify again (docs/reachability.md)."""
    now = _utc(now)
    paths = TlsPaths(Path(dir))
    _make_private_dir(paths.dir)
    password = _WrappingKey(keyring_backend).get_or_create()
    ca = _load_ca(paths, password, now)
    created = ca is None
    if ca is None:
        log.warning("creating a new local TLS CA in %s (browsers must trust it again)", paths.dir)
        ca = _new_ca(now, ca_years)
        _write_pair(paths.ca_cert, paths.ca_key, ca, [ca.cert], password)
    leaf = None if created or new_leaf else _load_leaf(paths, password, ca, now, renew_before)
    renewed = leaf is None
    if leaf is None:
        log.info("issuing a new localhost TLS certificate in %s", paths.dir)
        leaf = _new_leaf(ca, now, leaf_days)
        _write_pair(paths.leaf_cert, paths.leaf_key, leaf, [leaf.cert, ca.cert], password)
    _protect_plain_keys(paths, ca, leaf, password)
    return TlsIdentity(
        paths=paths,
        ca_cert=ca.cert,
        leaf_cert=leaf.cert,
        created=created,
        renewed=renewed,
        key_protection="keyring" if password else "file",
        key_password=password,
    )


def leaf_needs_renewal(
    identity: TlsIdentity, now: datetime | None = None, *, renew_before: timedelta = RENEW_BEFORE
) -> bool:
    """True when ``ensure_identity`` would issue a new leaf (for the daemon's daily check)."""
    return identity.leaf_cert.not_valid_after_utc - _utc(now) < renew_before


def ssl_context(identity: TlsIdentity) -> ssl.SSLContext:
    """A server-side context (TLS 1.2+) serving the leaf and the CA as its chain."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    reload_ssl_context(ctx, identity)
    return ctx


def reload_ssl_context(ctx: ssl.SSLContext, identity: TlsIdentity) -> None:
    """Swap ``ctx``'s certificate and key for ``identity``'s; new handshakes use them.

    Call it on the event loop thread after a renewal, so the listening socket keeps its
    context. The encrypted key is decrypted by OpenSSL in memory, never written out.
    """
    password = identity.key_password
    ctx.load_cert_chain(
        identity.paths.leaf_cert,
        identity.paths.leaf_key,
        password=(lambda: password) if password else None,
    )


# --- keyring ---------------------------------------------------------------------------


class _WrappingKey:
    """The keyring entry holding the key-file password; None whenever keyring can't help."""

    def __init__(self, backend: Any) -> None:
        self._secret = KeyringSecret(KEYRING_USERNAME, backend)

    def get_or_create(self) -> bytes | None:
        key = self._secret.get_or_create()
        if key is None:
            log.warning("TLS keys are kept unencrypted, user-only")
        return key


# --- loading and checking --------------------------------------------------------------


def _load_ca(paths: TlsPaths, password: bytes | None, now: datetime) -> _Pair | None:
    try:
        cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        key = _load_key(paths.ca_key, password)
        _check_pair(cert, key)
        cert.verify_directly_issued_by(cert)
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (*_LOAD_ERRORS, x509.ExtensionNotFound) as exc:
        log.info("local TLS CA unusable: %r", exc)
        return None
    if not constraints.ca or not _valid_for(cert, now, CA_RENEW_BEFORE):
        log.warning("local TLS CA is not a CA, not yet valid or expiring soon")
        return None
    return _Pair(cert, key)


def _load_leaf(
    paths: TlsPaths, password: bytes | None, ca: _Pair, now: datetime, renew_before: timedelta
) -> _Pair | None:
    try:
        certs = x509.load_pem_x509_certificates(paths.leaf_cert.read_bytes())
        key = _load_key(paths.leaf_key, password)
        _check_pair(certs[0], key)
        certs[0].verify_directly_issued_by(ca.cert)
    except _LOAD_ERRORS as exc:
        log.info("localhost TLS certificate unusable: %r", exc)
        return None
    if certs[1:] != [ca.cert] or not _valid_for(certs[0], now, renew_before):
        return None
    return _Pair(certs[0], key)


def _load_key(path: Path, password: bytes | None) -> ec.EllipticCurvePrivateKey:
    data = path.read_bytes()
    encrypted = b"ENCRYPTED" in data
    if encrypted and password is None:
        raise ValueError(f"{path.name} is encrypted and the wrapping key is not in the keyring")
    key = serialization.load_pem_private_key(data, password if encrypted else None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{path.name} is not an EC P-256 key")
    return key


def _check_pair(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    if _spki(cert.public_key()) != _spki(key.public_key()):
        raise ValueError("private key does not match the certificate")


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _valid_for(cert: x509.Certificate, now: datetime, margin: timedelta) -> bool:
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now >= margin


# --- issuing ---------------------------------------------------------------------------


def _new_ca(now: datetime, years: int) -> _Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    cn = f"{CA_CN_PREFIX} {secrets.token_hex(4)}"
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
        ]
    )
    permitted: list[x509.GeneralName] = [x509.DNSName(d) for d in DNS_NAMES]
    permitted += [x509.IPAddress(n) for n in PERMITTED_NETWORKS]
    builder = (
        _base_builder(now, now + timedelta(days=round(365.25 * years)))
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.NameConstraints(permitted, None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    return _Pair(builder.sign(key, hashes.SHA256()), key)


def _new_leaf(ca: _Pair, now: datetime, days: int) -> _Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in DNS_NAMES]
    sans += [x509.IPAddress(a) for a in IP_ADDRESSES]
    not_after = min(now + timedelta(days=days), ca.cert.not_valid_after_utc)
    builder = (
        _base_builder(now, not_after)
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, LEAF_CN),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                ]
            )
        )
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), False
        )
    )
    return _Pair(builder.sign(ca.key, hashes.SHA256()), key)


def _base_builder(now: datetime, not_after: datetime) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# --- files -----------------------------------------------------------------------------


def _write_pair(
    cert_path: Path,
    key_path: Path,
    pair: _Pair,
    chain: Sequence[x509.Certificate],
    password: bytes | None,
) -> None:
    _write_atomic(key_path, _key_pem(pair.key, password), KEY_MODE)
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    _write_atomic(cert_path, pem, CERT_MODE)


def _protect_plain_keys(paths: TlsPaths, ca: _Pair, leaf: _Pair, password: bytes | None) -> None:
    """Encrypt key files left unencrypted by a run that had no keyring; tighten modes."""
    for path, pair in ((paths.ca_key, ca), (paths.leaf_key, leaf)):
        if password and b"ENCRYPTED" not in path.read_bytes():
            log.info("encrypting %s with the keyring's wrapping key", path.name)
            _write_atomic(path, _key_pem(pair.key, password), KEY_MODE)
        _chmod(path, KEY_MODE)


def _key_pem(key: ec.EllipticCurvePrivateKey, password: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write via a temp file in the same dir, created with ``mode``, then ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    flags |= getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)  # exactly ``mode``, whatever the umask
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _make_private_dir(path: Path) -> None:
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _chmod(path, DIR_MODE)


def _chmod(path: Path, mode: int) -> None:
    if (path.stat().st_mode & 0o777) != mode:
        os.chmod(path, mode)


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)
