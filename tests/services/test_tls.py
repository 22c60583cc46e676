"""The per-install localhost TLS identity (helper/services/tls.py): files, renewal, handshakes.

The Chromium test needs `chromium` and `certutil` (Debian: chromium, libnss3-tools); it fails
rather than skips when they are missing.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import shutil
import socket
import ssl
import stat
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import keyring.backend
import keyring.errors
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from keyring.backends import fail
from keyrings.alt.file import PlaintextKeyring

from helper.services.tls import (
    KEYRING_SERVICE,
    KEYRING_USERNAME,
    TlsIdentity,
    ensure_identity,
    leaf_needs_renewal,
    reload_ssl_context,
    ssl_context,
)

LOOPBACK = "127.0.0.1"


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username))


class BrokenKeyring(MemoryKeyring):
    """A backend that exists but fails (locked collection, D-Bus gone, …)."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError("collection is locked")


@pytest.fixture
def kr(tmp_path: Path) -> PlaintextKeyring:
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring" / "keyring_pass.cfg")
    return backend


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tls"


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _files(identity: TlsIdentity) -> list[Path]:
    p = identity.paths
    return [p.ca_cert, p.ca_key, p.leaf_cert, p.leaf_key]


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    return {
        f.name: (f.read_bytes(), f.stat().st_ino, f.stat().st_mtime_ns)
        for f in sorted(directory.iterdir())
    }


def _ext(cert: x509.Certificate, cls: type) -> x509.Extension:
    return cert.extensions.get_extension_for_class(cls)


def _verify(identity: TlsIdentity, name: x509.GeneralName, now: datetime) -> list:
    verifier = (
        PolicyBuilder().store(Store([identity.ca_cert])).time(now).build_server_verifier(name)  # type: ignore[arg-type]
    )
    return verifier.verify(identity.leaf_cert, [])


# --- creation ------------------------------------------------------------------------


def test_first_run_makes_a_name_constrained_ca(tls_dir: Path, kr, now: datetime) -> None:
    identity = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    assert (identity.created, identity.renewed, identity.key_protection) == (
        True,
        True,
        "keyring",
    )
    ca = identity.ca_cert
    assert ca == x509.load_pem_x509_certificate(identity.paths.ca_cert.read_bytes())
    cn = ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn.startswith("证书助手本机 CA certhelper local CA ") and len(cn.split()[-1]) >= 6
    assert ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "certhelper"
    assert ca.issuer == ca.subject
    ca.verify_directly_issued_by(ca)
    pub = ca.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp256r1"

    bc = _ext(ca, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = _ext(ca, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature
    nc = _ext(ca, x509.NameConstraints)
    assert nc.critical and nc.value.excluded_subtrees is None
    assert set(nc.value.permitted_subtrees) == {
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_network("127.0.0.1/32")),
        x509.IPAddress(ipaddress.ip_network("::1/128")),
    }
    assert _ext(ca, x509.SubjectKeyIdentifier).value == (
        x509.SubjectKeyIdentifier.from_public_key(pub)
    )
    assert ca.not_valid_before_utc == now - timedelta(hours=1)
    assert timedelta(days=3650) <= ca.not_valid_after_utc - now <= timedelta(days=3653)


def test_first_run_makes_a_server_auth_leaf(tls_dir: Path, kr, now: datetime) -> None:
    identity = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    leaf, ca = identity.leaf_cert, identity.ca_cert
    chain = x509.load_pem_x509_certificates(identity.paths.leaf_cert.read_bytes())
    assert chain == [leaf, ca]  # served with its CA
    assert leaf.issuer == ca.subject
    leaf.verify_directly_issued_by(ca)
    pub = leaf.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp256r1"

    san = _ext(leaf, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert list(_ext(leaf, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    ku = _ext(leaf, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    assert not (ku.value.key_cert_sign or ku.value.crl_sign or ku.value.key_encipherment)
    assert _ext(leaf, x509.BasicConstraints).value.ca is False
    ca_ski = _ext(ca, x509.SubjectKeyIdentifier).value
    aki = _ext(leaf, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    assert _ext(leaf, x509.SubjectKeyIdentifier).value.digest != ca_ski.digest
    assert leaf.not_valid_before_utc == now - timedelta(hours=1)
    assert leaf.not_valid_after_utc == now + timedelta(days=30)


def test_modes_are_user_only_whatever_the_umask(tls_dir: Path, kr, now: datetime) -> None:
    old = os.umask(0)
    try:
        identity = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    finally:
        os.umask(old)
    assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(identity.paths.ca_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(identity.paths.leaf_key.stat().st_mode) == 0o600
    assert sorted(p.name for p in tls_dir.iterdir()) == ["ca.key", "ca.pem", "leaf.key", "leaf.pem"]


def test_existing_dir_and_loose_key_modes_are_tightened(tls_dir: Path, kr, now: datetime) -> None:
    identity = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    tls_dir.chmod(0o755)
    identity.paths.leaf_key.chmod(0o644)
    again = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    assert not again.created and not again.renewed
    assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(identity.paths.leaf_key.stat().st_mode) == 0o600


def test_keys_are_encrypted_with_the_keyring_wrapping_key(tls_dir: Path, kr, now: datetime) -> None:
    identity = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    stored = kr.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
    assert stored is not None and len(base64.b64decode(stored)) == 32
    for path, cert in (
        (identity.paths.ca_key, identity.ca_cert),
        (identity.paths.leaf_key, identity.leaf_cert),
    ):
        pem = path.read_bytes()
        assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        with pytest.raises(TypeError):
            serialization.load_pem_private_key(pem, None)
        key = serialization.load_pem_private_key(pem, stored.encode())
        assert key.public_key() == cert.public_key()


def test_no_keyring_backend_keeps_plain_user_only_keys(tls_dir: Path, now: datetime) -> None:
    identity = ensure_identity(tls_dir, now=now, keyring_backend=fail.Keyring())
    assert identity.created and identity.key_protection == "file"
    assert identity.key_password is None
    for path in (identity.paths.ca_key, identity.paths.leaf_key):
        assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert isinstance(ssl_context(identity), ssl.SSLContext)
    again = ensure_identity(tls_dir, now=now, keyring_backend=fail.Keyring())
    assert not again.created and not again.renewed and again.key_protection == "file"


def test_a_failing_keyring_backend_means_plain_keys(tls_dir: Path, now: datetime) -> None:
    identity = ensure_identity(tls_dir, now=now, keyring_backend=BrokenKeyring())
    assert identity.created and identity.key_protection == "file"
    assert b"ENCRYPTED" not in identity.paths.leaf_key.read_bytes()


def test_plain_keys_are_encrypted_once_a_keyring_appears(tls_dir: Path, kr, now: datetime) -> None:
    first = ensure_identity(tls_dir, now=now, keyring_backend=fail.Keyring())
    certs = (first.paths.ca_cert.read_bytes(), first.paths.leaf_cert.read_bytes())
    later = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    assert (later.created, later.renewed, later.key_protection) == (False, False, "keyring")
    assert (later.paths.ca_cert.read_bytes(), later.paths.leaf_cert.read_bytes()) == certs
    assert b"ENCRYPTED" in later.paths.ca_key.read_bytes()
    assert b"ENCRYPTED" in later.paths.leaf_key.read_bytes()
    assert stat.S_IMODE(later.paths.ca_key.stat().st_mode) == 0o600


def test_naive_now_is_refused(tls_dir: Path, kr) -> None:
    with pytest.raises(ValueError, match="timezone"):
        ensure_identity(tls_dir, now=datetime(2030, 1, 1), keyring_backend=kr)


# --- second runs, renewal, regeneration ----------------------------------------------


def test_second_run_changes_nothing(tls_dir: Path, kr, now: datetime) -> None:
    first = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    before = _snapshot(tls_dir)
    second = ensure_identity(tls_dir, now=now + timedelta(days=19), keyring_backend=kr)
    assert (second.created, second.renewed) == (False, False)
    assert (second.ca_cert, second.leaf_cert) == (first.ca_cert, first.leaf_cert)
    assert _snapshot(tls_dir) == before


def test_leaf_is_renewed_when_fewer_than_ten_days_remain(tls_dir: Path, kr, now: datetime) -> None:
    first = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    ca_files = (first.paths.ca_cert.read_bytes(), first.paths.ca_key.read_bytes())
    later = now + timedelta(days=25)
    assert leaf_needs_renewal(first, later)
    assert not leaf_needs_renewal(first, now + timedelta(days=19))

    renewed = ensure_identity(tls_dir, now=later, keyring_backend=kr)
    assert (renewed.created, renewed.renewed) == (False, True)
    assert renewed.ca_cert == first.ca_cert
    assert (renewed.paths.ca_cert.read_bytes(), renewed.paths.ca_key.read_bytes()) == ca_files
    assert renewed.leaf_cert.serial_number != first.leaf_cert.serial_number
    assert renewed.leaf_cert.not_valid_after_utc == later + timedelta(days=30)
    assert not leaf_needs_renewal(renewed, later)
    _verify(renewed, x509.IPAddress(ipaddress.ip_address(LOOPBACK)), later)


def _garbage(path: Path) -> None:
    path.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")


def _copy_leaf(source: TlsIdentity, target: Path) -> None:
    shutil.copyfile(source.paths.leaf_cert, target / "leaf.pem")
    shutil.copyfile(source.paths.leaf_key, target / "leaf.key")


@pytest.mark.parametrize(
    "damage",
    ["leaf.pem missing", "leaf.key missing", "leaf.pem garbage", "leaf.key garbage", "foreign"],
)
def test_broken_leaf_is_reissued_by_the_same_ca(
    tls_dir: Path, tmp_path: Path, now: datetime, damage: str
) -> None:
    backend = MemoryKeyring()
    first = ensure_identity(tls_dir, now=now, keyring_backend=backend)
    name, _, how = damage.partition(" ")
    if how == "missing":
        (tls_dir / name).unlink()
    elif how == "garbage":
        _garbage(tls_dir / name)
    else:  # a leaf from another install, encrypted with the same wrapping key
        other = ensure_identity(tmp_path / "other", now=now, keyring_backend=backend)
        _copy_leaf(other, tls_dir)
    again = ensure_identity(tls_dir, now=now, keyring_backend=backend)
    assert (again.created, again.renewed) == (False, True)
    assert again.ca_cert == first.ca_cert
    _verify(again, x509.DNSName("localhost"), now)


@pytest.mark.parametrize(
    "damage", ["ca.pem missing", "ca.key missing", "ca.pem garbage", "ca.key garbage"]
)
def test_missing_or_corrupt_ca_regenerates_everything(
    tls_dir: Path, kr, now: datetime, damage: str
) -> None:
    first = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    name, _, how = damage.partition(" ")
    if how == "missing":
        (tls_dir / name).unlink()
    else:
        _garbage(tls_dir / name)
    again = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    assert (again.created, again.renewed) == (True, True)
    assert again.ca_cert.public_key() != first.ca_cert.public_key()
    assert again.ca_cert.subject != first.ca_cert.subject  # a fresh random id
    _verify(again, x509.IPAddress(ipaddress.ip_address(LOOPBACK)), now)


def test_ca_expiring_within_30_days_regenerates_everything(
    tls_dir: Path, kr, now: datetime
) -> None:
    first = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    late = first.ca_cert.not_valid_after_utc - timedelta(days=29)
    again = ensure_identity(tls_dir, now=late, keyring_backend=kr)
    assert (again.created, again.renewed) == (True, True)
    assert again.ca_cert.not_valid_before_utc == late - timedelta(hours=1)


def test_leaf_never_outlives_its_ca(tls_dir: Path, kr, now: datetime) -> None:
    identity = ensure_identity(tls_dir, now=now, keyring_backend=kr, leaf_days=400, ca_years=1)
    assert identity.leaf_cert.not_valid_after_utc == identity.ca_cert.not_valid_after_utc


def test_lost_wrapping_key_regenerates_the_identity(tls_dir: Path, kr, now: datetime) -> None:
    first = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    old_password = kr.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
    kr.delete_password(KEYRING_SERVICE, KEYRING_USERNAME)
    again = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    assert (again.created, again.renewed, again.key_protection) == (True, True, "keyring")
    assert again.ca_cert != first.ca_cert
    new_password = kr.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
    assert new_password is not None and new_password != old_password
    key = serialization.load_pem_private_key(
        again.paths.leaf_key.read_bytes(), new_password.encode()
    )
    assert key.public_key() == again.leaf_cert.public_key()


def test_keyring_lost_entirely_regenerates_with_plain_keys(
    tls_dir: Path, kr, now: datetime
) -> None:
    ensure_identity(tls_dir, now=now, keyring_backend=kr)
    again = ensure_identity(tls_dir, now=now, keyring_backend=fail.Keyring())
    assert (again.created, again.key_protection) == (True, "file")
    assert b"ENCRYPTED" not in again.paths.ca_key.read_bytes()


# --- verification ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
        x509.DNSName("localhost"),
    ],
    ids=str,
)
def test_leaf_verifies_against_the_ca(
    tls_dir: Path, kr, now: datetime, name: x509.GeneralName
) -> None:
    identity = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    assert _verify(identity, name, now) == [identity.leaf_cert, identity.ca_cert]


def test_leaf_is_only_for_loopback(tls_dir: Path, kr, now: datetime) -> None:
    identity = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    for name in (x509.DNSName("example.com"), x509.IPAddress(ipaddress.ip_address("10.0.0.1"))):
        with pytest.raises(VerificationError):
            _verify(identity, name, now)


def test_name_constraints_stop_a_stolen_ca_key(tls_dir: Path, kr, now: datetime) -> None:
    identity = ensure_identity(tls_dir, now=now, keyring_backend=kr)
    password = kr.get_password(KEYRING_SERVICE, KEYRING_USERNAME).encode()
    ca_key = serialization.load_pem_private_key(identity.paths.ca_key.read_bytes(), password)
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = _ext(identity.ca_cert, x509.SubjectKeyIdentifier).value
    rogue = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bank.example")]))
        .issuer_name(identity.ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("bank.example")]), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), False
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    verifier = (
        PolicyBuilder()
        .store(Store([identity.ca_cert]))
        .time(now)
        .build_server_verifier(x509.DNSName("bank.example"))
    )
    with pytest.raises(VerificationError, match=r"(?i)name constraint|not permitted"):
        verifier.verify(rogue, [])


# --- handshakes ------------------------------------------------------------------------


@contextmanager
def tls_server(ctx: ssl.SSLContext, body: bytes = b"certhelper\n") -> Iterator[int]:
    """Accept TLS connections on 127.0.0.1 in a thread; each gets ``body`` and is closed."""
    listener = socket.create_server((LOOPBACK, 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(body)
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _fetch(port: int, cafile: Path, server_hostname: str) -> tuple[bytes, str, dict]:
    client = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection((LOOPBACK, port), timeout=5) as raw,
        client.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        return tls.recv(100), str(tls.version()), tls.getpeercert()


@pytest.mark.parametrize("server_hostname", ["127.0.0.1", "localhost"])
def test_handshake_with_a_client_trusting_only_the_ca(
    tls_dir: Path, kr, server_hostname: str
) -> None:
    identity = ensure_identity(tls_dir, keyring_backend=kr)
    ctx = ssl_context(identity)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    with tls_server(ctx) as port:
        body, version, peer = _fetch(port, identity.paths.ca_cert, server_hostname)
    assert body == b"certhelper\n"
    assert version in ("TLSv1.2", "TLSv1.3")
    assert int(peer["serialNumber"], 16) == identity.leaf_cert.serial_number


def test_handshake_with_plain_keys(tls_dir: Path) -> None:
    identity = ensure_identity(tls_dir, keyring_backend=fail.Keyring())
    with tls_server(ssl_context(identity)) as port:
        assert _fetch(port, identity.paths.ca_cert, "localhost")[0] == b"certhelper\n"


def test_handshake_fails_for_a_client_trusting_another_ca(
    tls_dir: Path, tmp_path: Path, kr
) -> None:
    identity = ensure_identity(tls_dir, keyring_backend=kr)
    other = ensure_identity(tmp_path / "other", keyring_backend=MemoryKeyring())
    with tls_server(ssl_context(identity)) as port, pytest.raises(ssl.SSLCertVerificationError):
        _fetch(port, other.paths.ca_cert, "127.0.0.1")


def test_reload_swaps_the_certificate_in_place(tls_dir: Path, kr) -> None:
    first = ensure_identity(tls_dir, keyring_backend=kr)
    ctx = ssl_context(first)
    first.paths.leaf_cert.unlink()  # forces a new leaf (time can't move for a real handshake)
    renewed = ensure_identity(tls_dir, keyring_backend=kr)
    assert renewed.renewed and not renewed.created
    with tls_server(ctx) as port:
        peer = _fetch(port, first.paths.ca_cert, "localhost")[2]
        assert int(peer["serialNumber"], 16) == first.leaf_cert.serial_number
        reload_ssl_context(ctx, renewed)
        peer = _fetch(port, first.paths.ca_cert, "localhost")[2]
        assert int(peer["serialNumber"], 16) == renewed.leaf_cert.serial_number


def _key_secrets(identity: TlsIdentity, password: bytes) -> list[bytes]:
    """The raw private scalars and unencrypted DER of the identity's keys, as now on disk."""
    found = []
    for path in (identity.paths.ca_key, identity.paths.leaf_key):
        key = serialization.load_pem_private_key(path.read_bytes(), password)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        found.append(key.private_numbers().private_value.to_bytes(32, "big"))
        found.append(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return found


def test_no_decrypted_private_key_ever_reaches_the_disk(tls_dir: Path, kr, now: datetime) -> None:
    secrets_: list[bytes] = []

    def run(when: datetime | None) -> TlsIdentity:
        identity = ensure_identity(tls_dir, now=when, keyring_backend=kr)
        password = kr.get_password(KEYRING_SERVICE, KEYRING_USERNAME).encode()
        secrets_.extend(_key_secrets(identity, password))
        return identity

    run(now)  # created
    run(now + timedelta(days=25))  # leaf renewed
    (tls_dir / "ca.key").unlink()
    run(now)  # regenerated
    current = run(None)
    with tls_server(ssl_context(current)) as port:
        _fetch(port, current.paths.ca_cert, "localhost")
    assert len(set(secrets_)) == 2 * 5  # 2 CA keys + 3 leaf keys, scalar and DER of each
    for path in tls_dir.rglob("*"):
        data = path.read_bytes()
        assert b"BEGIN PRIVATE KEY" not in data and b"BEGIN EC PRIVATE KEY" not in data, path
        assert not any(s in data for s in secrets_), path


# --- a real browser ----------------------------------------------------------------------


class _Page(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _HttpsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, ctx: ssl.SSLContext, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__((LOOPBACK, 0), handler)
        self.ctx = ctx

    def finish_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        request.settimeout(10)
        with self.ctx.wrap_socket(request, server_side=True) as tls:  # handshake per thread
            super().finish_request(tls, client_address)

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        pass  # the untrusting browser aborts the handshake


@contextmanager
def https_page(ctx: ssl.SSLContext, body: bytes) -> Iterator[str]:
    handler = type("Page", (_Page,), {"body": body})
    server = _HttpsServer(ctx, handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://{LOOPBACK}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _tool(*names: str) -> str:
    for name in names:
        if found := shutil.which(name):
            return found
    pytest.fail(f"{names[0]} is not installed (Debian packages: chromium, libnss3-tools)")


def _chromium_dump_dom(chromium: str, home: Path, profile: Path, url: str) -> tuple[str, str]:
    """Load ``url`` in headless Chromium with ``HOME=home``: (DOM, log)."""
    args = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--password-store=basic",
        f"--user-data-dir={profile}",
        "--dump-dom",
        url,
    ]
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    return done.stdout, done.stderr


def test_headless_chromium_trusts_the_ca_through_nss(tls_dir: Path, tmp_path: Path, kr) -> None:
    chromium = _tool("chromium", "chromium-browser")
    certutil = _tool("certutil")
    identity = ensure_identity(tls_dir, keyring_backend=kr)
    trusting, empty = tmp_path / "home-trusting", tmp_path / "home-empty"
    nssdb = trusting / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    empty.mkdir()
    db = f"sql:{nssdb}"
    subprocess.run([certutil, "-N", "-d", db, "--empty-password"], check=True)
    subprocess.run(
        [certutil, "-A", "-d", db, "-t", "C,,", "-n", "certhelper", "-i", identity.paths.ca_cert],
        check=True,
    )
    marker = f"certhelper-tls-ok-{os.getpid()}"
    body = f"<!doctype html><html><body><p id=m>{marker}</p></body></html>".encode()
    with https_page(ssl_context(identity), body) as url:
        trusted = _chromium_dump_dom(chromium, trusting, tmp_path / "profile-1", url)
        untrusted = _chromium_dump_dom(chromium, empty, tmp_path / "profile-2", url)
    assert marker in trusted[0], trusted[1][-2000:]
    assert marker not in untrusted[0]
    # refused for trust, not for anything else (net_error -202 is ERR_CERT_AUTHORITY_INVALID)
    assert "ERR_CERT_AUTHORITY_INVALID" in untrusted[1] or "net_error -202" in untrusted[1]
