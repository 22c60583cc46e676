"""Certificates and clocks for the alert tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from drivers.types import CertObject, KeyObject, PinState, TokenInfo
from helper.services.tokens import CertEntry, pair_objects

T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
TOKEN = TokenInfo("/m.so", 1, "HEBCA USB Key", "SER1", "m", "model", 0, PinState.OK)
OTHER_TOKEN = TokenInfo("/m.so", 2, "Backup Key", "SER2", "m", "model", 0, PinState.OK)
COMPANY = "沧州市测试科技有限公司"
_KEY = ec.generate_private_key(ec.SECP256R1())


@dataclass
class Clock:
    """A clock the test moves."""

    now: dt.datetime = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def at(self, when: dt.datetime) -> Clock:
        self.now = when
        return self


def cert_der(cn: str, not_after: dt.datetime, *, usage: str = "sign") -> bytes:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cn),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    sign = usage == "sign"
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "HEBCA Test CA")]))
        .public_key(_KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - dt.timedelta(days=365))
        .not_valid_after(not_after)
        .add_extension(
            x509.KeyUsage(
                digital_signature=sign,
                content_commitment=sign,
                key_encipherment=not sign,
                data_encipherment=not sign,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(_KEY, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def entry(
    not_after: dt.datetime,
    cn: str = COMPANY,
    *,
    key: bool = True,
    token: TokenInfo = TOKEN,
    usage: str = "sign",
    key_id: bytes = b"\x01",
) -> CertEntry:
    """One certificate on ``token``, with its private key unless ``key`` is False."""
    obj = CertObject(key_id, cn, cert_der(cn, not_after, usage=usage))
    keys = [KeyObject(key_id, cn, "EC")] if key else []
    return pair_objects(token, [obj], keys).certificates[0]


def unreadable(token: TokenInfo = TOKEN) -> CertEntry:
    obj = CertObject(b"\x09", "bad", b"\x30\x03\x02")
    return pair_objects(token, [obj], [KeyObject(b"\x09", "bad", "RSA")]).certificates[0]
