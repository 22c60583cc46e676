"""Token views built from real certificates (CertificateModel over real DER),
for tray-state and daemon tests."""

from __future__ import annotations

import datetime as dt
import functools

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from drivers.types import CertObject, KeyObject, PinState, TokenInfo
from helper.services.tokens import TokenView, pair_objects

NOW = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)


@functools.cache
def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def cert_der(cn: str, days_left: float, *, now: dt.datetime = NOW) -> bytes:
    """A self-signed certificate for ``cn`` that expires ``days_left`` days after ``now``."""
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=300))
        .not_valid_after(now + dt.timedelta(days=days_left))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def token(
    serial: str = "SER1", label: str = "测试Key", pin_state: PinState = PinState.OK
) -> TokenInfo:
    return TokenInfo(
        "/usr/lib/softhsm/libsofthsm2.so", 1, label, serial, "m", "model", 0, pin_state
    )


def view(
    info: TokenInfo | None = None,
    certs: list[tuple[str, float]] | None = None,
    *,
    without_key: list[tuple[str, float]] | None = None,
    unreadable: bool = False,
) -> TokenView:
    """A key with certificates (cn, days left) that have their private key,
    ``without_key`` ones that do not, and optionally an unreadable object."""
    info = info or token()
    objs, keys = [], []
    for i, (cn, days) in enumerate(certs or [], 1):
        kid = bytes([i])
        objs.append(CertObject(kid, cn, cert_der(cn, days)))
        keys.append(KeyObject(kid, cn, "EC", 256))
    for i, (cn, days) in enumerate(without_key or [], 100):
        objs.append(CertObject(bytes([i]), cn, cert_der(cn, days)))
    if unreadable:
        objs.append(CertObject(b"\xee", "bad", b"\x30\x03\x02"))
        keys.append(KeyObject(b"\xee", "bad", "EC", 256))
    return pair_objects(info, objs, keys)
