"""Regressions: inputs the verifier and the CMS reader cannot read are refused with
their documented errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from drivers.errors import BadInput
from drivers.types import SignAlgorithm
from helper.cms import build_signed_data, verify_signed_data
from helper.verify import check_chain, verify_legacy_signature
from helper.verify.errors import UnknownTokenFormat

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # fixed, like the keys: the same DER every run
BEFORE, AFTER = NOW - timedelta(days=60), NOW + timedelta(days=300)


def _pki() -> tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey]:
    root_key = ec.derive_private_key(0x5EED_0001, ec.SECP256R1())
    leaf_key = ec.derive_private_key(0x5EED_0002, ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fuzz Root CA")])
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(1)
        .not_valid_before(BEFORE)
        .not_valid_after(AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "沧州市测试科技有限公司")])
        )
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(0x0651)
        .not_valid_before(BEFORE)
        .not_valid_after(AFTER)
        .sign(root_key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    return root, leaf, leaf_key


ROOT_CERT, LEAF_CERT, LEAF_KEY = _pki()
LEAF_DER = LEAF_CERT.public_bytes(serialization.Encoding.DER)
ROOT_DER = ROOT_CERT.public_bytes(serialization.Encoding.DER)


def test_check_chain_calls_a_malformed_subject_not_a_certificate() -> None:
    """Found by the fuzzing above: a leaf whose subject is not a valid Name loads
    (cryptography reads names lazily) and used to escape ``check_chain`` as a bare
    ``ValueError`` from inside the chain builder. It is now the documented argument
    error, raised while loading."""
    cn = "沧州市测试科技有限公司".encode()
    at = LEAF_DER.index(b"\x06\x03\x55\x04\x03\x0c" + bytes([len(cn)]) + cn) + 5
    bad = LEAF_DER[:at] + b"\x00" + LEAF_DER[at + 1 :]  # UTF8String tag → tag 0
    with pytest.raises(ValueError, match=r"^certificate: not a certificate"):
        check_chain(bad, [ROOT_DER], now=NOW)


def _cms(data: bytes) -> bytes:
    def sign(tbs: bytes) -> bytes:
        return LEAF_KEY.sign(tbs, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))

    return build_signed_data(
        data, LEAF_DER, sign, algorithm=SignAlgorithm.ECDSA_SHA256, detached=False, signing_time=NOW
    )


SIGNED_DATA = _cms(b"\xe6\xb2\xa7\xe5\xb7\x9e login")


def test_p7_verify_calls_an_unreadable_signer_info_bad_input() -> None:
    """Found by fuzzing: a SignedData whose SignerInfo cannot be parsed (asn1crypto
    reads it lazily, after the outer checks) escaped ``verify_signed_data`` as a bare
    ``ValueError``, so HEBCA ``P7VerifyB64`` answered ``internal_error`` and logged a
    traceback for any page that sent one. It is now ``BadInput``."""
    sid = b"0\x171\x150\x13\x06\x03U\x04\x03\x0c\x0cFuzz Root CA\x02\x02\x06Q"
    at = SIGNED_DATA.rindex(sid) + 2  # the SignerInfo's issuer: its SET tag ...
    bad = SIGNED_DATA[:at] + b"\x00" + SIGNED_DATA[at + 1 :]  # ... becomes tag 0
    with pytest.raises(BadInput):
        verify_signed_data(bad)


def test_p7_verify_of_a_key_cryptography_lacks_is_false() -> None:
    """Found by fuzzing: a signer certificate on a curve cryptography does not know
    escaped as ``UnsupportedAlgorithm`` (``internal_error`` over HEBCA); such a
    signature cannot be verified, like other unknown key types: False."""
    p256 = bytes.fromhex("06082a8648ce3d030107")  # 1.2.840.10045.3.1.7
    bad = SIGNED_DATA.replace(p256, bytes.fromhex("06082a8648ce3d031107"))  # … 3.17.7
    assert bad != SIGNED_DATA
    assert verify_signed_data(bad) is False


def test_an_invalid_x509_version_is_a_documented_refusal() -> None:
    """Found by fuzzing: a certificate whose version is neither v1 nor v3 passes the
    domain model, then cryptography raises ``InvalidVersion``, which is not a
    ``ValueError``: it escaped ``check_chain``, the token and legacy verifiers and
    ``verify_signed_data`` (HEBCA ``P7VerifyB64``: ``internal_error``)."""
    at = LEAF_DER.index(bytes.fromhex("a003020102")) + 4
    bad = LEAF_DER[:at] + b"\x05" + LEAF_DER[at + 1 :]
    with pytest.raises(ValueError, match=r"^certificate: not a certificate"):
        check_chain(bad, [ROOT_DER], now=NOW)
    with pytest.raises(UnknownTokenFormat):
        verify_legacy_signature(bad, b"\x30\x00", "text", [ROOT_DER], now=NOW)
    at = SIGNED_DATA.index(bytes.fromhex("a003020102")) + 4
    with pytest.raises(BadInput):
        verify_signed_data(SIGNED_DATA[:at] + b"\x05" + SIGNED_DATA[at + 1 :])
