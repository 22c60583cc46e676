"""CMS SignedData: checked by recomputing it with cryptography and by real openssl."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from drivers.errors import BadInput
from drivers.types import SignAlgorithm
from helper.cms import build_signed_data, digest_for
from helper.errors import CertificateUnreadable

DATA = "河北省网上办事大厅 登录挑战 nonce=8c1f\n".encode() + bytes(range(256))
SIGNING_TIME = datetime(2025, 5, 6, 7, 8, 9, tzinfo=UTC)
_HASHES = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1(), "sha384": hashes.SHA384()}


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "河北省"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "沧州市"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _cert(subject: x509.Name, public_key, issuer: x509.Name, issuer_key, *, ca: bool):
    now = datetime.now(UTC)
    usage = dict.fromkeys(
        [
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ],
        False,
    )
    usage.update(
        {"key_cert_sign": True, "crl_sign": True}
        if ca
        else {"digital_signature": True, "content_commitment": True}
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


@dataclass(frozen=True)
class Signer:
    """A CA and a leaf issued by it; ``sign`` plays the USB key."""

    ca: x509.Certificate
    cert: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def signer_for(self, algorithm: SignAlgorithm, seen: list[bytes] | None = None):
        digest = _HASHES[digest_for(algorithm)]

        def sign(to_be_signed: bytes) -> bytes:
            if seen is not None:
                seen.append(to_be_signed)
            if isinstance(self.key, rsa.RSAPrivateKey):
                return self.key.sign(to_be_signed, padding.PKCS1v15(), digest)
            return self.key.sign(to_be_signed, ec.ECDSA(digest))

        return sign


def _make_signer(key_factory, label: str) -> Signer:
    ca_key, leaf_key = key_factory(), key_factory()
    ca_name = _name(f"测试 CA ({label})")
    ca = _cert(ca_name, ca_key.public_key(), ca_name, ca_key, ca=True)
    leaf = _cert(_name(f"张三 ({label})"), leaf_key.public_key(), ca_name, ca_key, ca=False)
    return Signer(ca, leaf, leaf_key)


@pytest.fixture(scope="module")
def rsa_signer() -> Signer:
    return _make_signer(
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "RSA"
    )


@pytest.fixture(scope="module")
def ec_signer() -> Signer:
    return _make_signer(lambda: ec.generate_private_key(ec.SECP256R1()), "P-256")


@pytest.fixture(scope="module")
def p384_signer() -> Signer:
    return _make_signer(lambda: ec.generate_private_key(ec.SECP384R1()), "P-384")


@pytest.fixture
def signers(rsa_signer, ec_signer, p384_signer) -> dict[str, Signer]:
    return {"rsa": rsa_signer, "ec": ec_signer, "p384": p384_signer}


CASES = [
    ("rsa", SignAlgorithm.RSA_PKCS1_SHA256, "sha256", "rsassa_pkcs1v15"),
    ("rsa", SignAlgorithm.RSA_PKCS1_SHA1, "sha1", "rsassa_pkcs1v15"),
    ("ec", SignAlgorithm.ECDSA_SHA256, "sha256", "sha256_ecdsa"),
    ("p384", SignAlgorithm.ECDSA_SHA384, "sha384", "sha384_ecdsa"),
]


# --- verification by recomputation (cryptography) ---------------------------------------


def verify_with_cryptography(cms_der: bytes, data: bytes, cert: x509.Certificate) -> None:
    """Raise unless ``cms_der`` is a valid signature over ``data`` by ``cert``."""
    info = cms.ContentInfo.load(cms_der)
    assert info["content_type"].native == "signed_data"
    signed = info["content"]
    (signer,) = signed["signer_infos"]
    sid = signer["sid"].chosen
    assert sid["serial_number"].native == cert.serial_number
    assert sid["issuer"].dump() == cert.issuer.public_bytes()

    digest_name = signer["digest_algorithm"]["algorithm"].native
    attrs = {a["type"].native: a["values"] for a in signer["signed_attrs"]}
    assert attrs["content_type"][0].native == "data"
    if attrs["message_digest"][0].native != hashlib.new(digest_name, data).digest():
        raise InvalidSignature("message digest does not match the data")

    # the signature covers the attributes re-tagged as a SET (RFC 5652 §5.4)
    to_be_signed = b"\x31" + signer["signed_attrs"].dump()[1:]
    signature = signer["signature"].native
    public_key = cert.public_key()
    digest = _HASHES[digest_name]
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, to_be_signed, padding.PKCS1v15(), digest)
    else:
        public_key.verify(signature, to_be_signed, ec.ECDSA(digest))


# --- verification by openssl ------------------------------------------------------------


def openssl_verify(tmp_path: Path, cms_der: bytes, ca: x509.Certificate, content: bytes | None):
    """Run ``openssl cms -verify``; return (ok, stderr)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    (tmp_path / "sig.der").write_bytes(cms_der)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cmd = [
        openssl,
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        str(tmp_path / "sig.der"),
        "-CAfile",
        str(tmp_path / "ca.pem"),
        "-purpose",
        "any",
        "-out",
        str(tmp_path / "out.bin"),
    ]
    if content is not None:
        (tmp_path / "data.bin").write_bytes(content)
        cmd += ["-content", str(tmp_path / "data.bin")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode == 0, proc.stderr


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "algorithm", "digest", "sig_alg"), CASES)
def test_detached(tmp_path, signers, who, algorithm, digest, sig_alg):
    s = signers[who]
    seen: list[bytes] = []
    der = build_signed_data(
        DATA,
        s.cert_der,
        s.signer_for(algorithm, seen),
        algorithm=algorithm,
        signing_time=SIGNING_TIME,
    )

    signed = cms.ContentInfo.load(der)["content"]
    assert signed["version"].native == "v1"
    assert signed["encap_content_info"]["content_type"].native == "data"
    assert signed["encap_content_info"]["content"].native is None
    assert [a["algorithm"].native for a in signed["digest_algorithms"]] == [digest]
    assert [c.chosen.dump() for c in signed["certificates"]] == [s.cert_der]
    (signer,) = signed["signer_infos"]
    assert signer["version"].native == "v1"
    assert signer["sid"].name == "issuer_and_serial_number"
    assert signer["digest_algorithm"]["algorithm"].native == digest
    assert signer["signature_algorithm"]["algorithm"].native == sig_alg
    attrs = {a["type"].native: a["values"].native for a in signer["signed_attrs"]}
    assert set(attrs) == {"content_type", "signing_time", "message_digest"}
    assert attrs["signing_time"] == [SIGNING_TIME]
    assert attrs["message_digest"] == [hashlib.new(digest, DATA).digest()]
    # sign() got exactly the DER SET of the signed attributes
    assert seen == [b"\x31" + signer["signed_attrs"].dump()[1:]]

    verify_with_cryptography(der, DATA, s.cert)
    ok, err = openssl_verify(tmp_path, der, s.ca, DATA)
    assert ok, err


@pytest.mark.parametrize(("who", "algorithm", "digest", "sig_alg"), CASES)
def test_attached(tmp_path, signers, who, algorithm, digest, sig_alg):
    s = signers[who]
    der = build_signed_data(
        DATA,
        s.cert_der,
        s.signer_for(algorithm),
        algorithm=algorithm,
        detached=False,
        signing_time=SIGNING_TIME,
    )
    signed = cms.ContentInfo.load(der)["content"]
    assert signed["encap_content_info"]["content"].native == DATA

    verify_with_cryptography(der, DATA, s.cert)
    ok, err = openssl_verify(tmp_path, der, s.ca, None)
    assert ok, err
    assert (tmp_path / "out.bin").read_bytes() == DATA


@pytest.mark.parametrize(("who", "algorithm", "digest", "sig_alg"), CASES)
def test_tampered_data_fails(tmp_path, signers, who, algorithm, digest, sig_alg):
    s = signers[who]
    der = build_signed_data(DATA, s.cert_der, s.signer_for(algorithm), algorithm=algorithm)
    tampered = DATA[:-1] + bytes([DATA[-1] ^ 1])

    with pytest.raises(InvalidSignature):
        verify_with_cryptography(der, tampered, s.cert)
    ok, _ = openssl_verify(tmp_path, der, s.ca, tampered)
    assert not ok


def test_tampered_attached_content_fails(tmp_path, rsa_signer):
    s = rsa_signer
    alg = SignAlgorithm.RSA_PKCS1_SHA256
    der = build_signed_data(DATA, s.cert_der, s.signer_for(alg), algorithm=alg, detached=False)
    marker = "登录挑战".encode()
    assert der.count(marker) == 1
    tampered = der.replace(marker, "登陆挑战".encode())
    assert len(tampered) == len(der)

    ok, _ = openssl_verify(tmp_path, tampered, s.ca, None)
    assert not ok


@pytest.mark.parametrize(
    ("who", "algorithm"),
    [("rsa", SignAlgorithm.RSA_PKCS1_SHA256), ("ec", SignAlgorithm.ECDSA_SHA256)],
)
def test_tampered_signed_attributes_fail(tmp_path, signers, who, algorithm):
    """A signature made over other bytes than the attributes must not verify."""
    s = signers[who]
    inner = s.signer_for(algorithm)
    der = build_signed_data(DATA, s.cert_der, lambda tbs: inner(tbs + b"\x00"), algorithm=algorithm)
    with pytest.raises(InvalidSignature):
        verify_with_cryptography(der, DATA, s.cert)
    ok, _ = openssl_verify(tmp_path, der, s.ca, DATA)
    assert not ok


def test_wrong_ca_fails(tmp_path, rsa_signer, ec_signer):
    alg = SignAlgorithm.RSA_PKCS1_SHA256
    der = build_signed_data(DATA, rsa_signer.cert_der, rsa_signer.signer_for(alg), algorithm=alg)
    ok, _ = openssl_verify(tmp_path, der, ec_signer.ca, DATA)
    assert not ok


def test_empty_data(tmp_path, ec_signer):
    alg = SignAlgorithm.ECDSA_SHA256
    der = build_signed_data(b"", ec_signer.cert_der, ec_signer.signer_for(alg), algorithm=alg)
    verify_with_cryptography(der, b"", ec_signer.cert)
    ok, err = openssl_verify(tmp_path, der, ec_signer.ca, b"")
    assert ok, err


def test_default_signing_time_is_now(rsa_signer):
    alg = SignAlgorithm.RSA_PKCS1_SHA256
    before = datetime.now(UTC).replace(microsecond=0)
    der = build_signed_data(DATA, rsa_signer.cert_der, rsa_signer.signer_for(alg), algorithm=alg)
    after = datetime.now(UTC)
    (signer,) = cms.ContentInfo.load(der)["content"]["signer_infos"]
    attrs = {a["type"].native: a["values"] for a in signer["signed_attrs"]}
    (when,) = attrs["signing_time"]
    assert when.name == "utc_time"
    assert before <= when.native <= after


def test_signing_time_after_2049_uses_generalized_time(rsa_signer):
    alg = SignAlgorithm.RSA_PKCS1_SHA256
    late = datetime(2051, 1, 2, 3, 4, 5, tzinfo=UTC)
    der = build_signed_data(
        DATA, rsa_signer.cert_der, rsa_signer.signer_for(alg), algorithm=alg, signing_time=late
    )
    (signer,) = cms.ContentInfo.load(der)["content"]["signer_infos"]
    attrs = {a["type"].native: a["values"] for a in signer["signed_attrs"]}
    (when,) = attrs["signing_time"]
    assert (when.name, when.native) == ("generalized_time", late)


def test_naive_signing_time_rejected(rsa_signer):
    alg = SignAlgorithm.RSA_PKCS1_SHA256
    with pytest.raises(ValueError, match="timezone-aware"):
        build_signed_data(
            DATA,
            rsa_signer.cert_der,
            rsa_signer.signer_for(alg),
            algorithm=alg,
            signing_time=datetime(2025, 1, 1),
        )


def test_algorithm_must_fit_the_key(rsa_signer, ec_signer):
    def never(_: bytes) -> bytes:
        raise AssertionError("sign() must not be called")

    with pytest.raises(BadInput):
        build_signed_data(DATA, ec_signer.cert_der, never, algorithm=SignAlgorithm.RSA_PKCS1_SHA256)
    with pytest.raises(BadInput):
        build_signed_data(DATA, rsa_signer.cert_der, never, algorithm=SignAlgorithm.ECDSA_SHA256)


def test_raw_ecdsa_signature_rejected(ec_signer):
    alg = SignAlgorithm.ECDSA_SHA256
    inner = ec_signer.signer_for(alg)

    def raw_r_s(tbs: bytes) -> bytes:
        r, s = decode_dss_signature(inner(tbs))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    with pytest.raises(BadInput, match="DER"):
        build_signed_data(DATA, ec_signer.cert_der, raw_r_s, algorithm=alg)


def test_unreadable_certificate():
    with pytest.raises(CertificateUnreadable):
        build_signed_data(
            DATA, os.urandom(40), lambda b: b"", algorithm=SignAlgorithm.RSA_PKCS1_SHA256
        )


def test_sm2_certificate_takes_sm2_only(ec_signer):
    # same-length DER of the two curve OIDs: P-256 becomes sm2p256v1 (signature now bogus)
    p256 = bytes.fromhex("06082a8648ce3d030107")
    sm2 = bytes.fromhex("06082a811ccf5501822d")
    assert ec_signer.cert_der.count(p256) == 1
    sm2_der = ec_signer.cert_der.replace(p256, sm2)

    with pytest.raises(BadInput, match="does not fit a SM2"):
        build_signed_data(DATA, sm2_der, lambda b: b"", algorithm=SignAlgorithm.ECDSA_SHA256)


def test_digest_for():
    assert digest_for(SignAlgorithm.RSA_PKCS1_SHA256) == "sha256"
    assert digest_for(SignAlgorithm.RSA_PKCS1_SHA1) == "sha1"
    assert digest_for(SignAlgorithm.ECDSA_SHA256) == "sha256"
    assert digest_for(SignAlgorithm.ECDSA_SHA384) == "sha384"
    assert digest_for("ecdsa-sha384") == "sha384"


# --- verify_signed_data (HEBCA P7VerifyB64) ------------------------------------------------


@pytest.mark.parametrize(("who", "algorithm", "digest", "sig_alg"), CASES)
def test_verify_signed_data(signers, who, algorithm, digest, sig_alg):
    from helper.cms import verify_signed_data

    s = signers[who]
    attached = build_signed_data(
        DATA, s.cert_der, s.signer_for(algorithm), algorithm=algorithm, detached=False
    )
    assert verify_signed_data(attached) is True
    i = attached.find(DATA)
    tampered = attached[:i] + bytes([DATA[0] ^ 1]) + attached[i + 1 :]
    assert verify_signed_data(tampered) is False
    detached = build_signed_data(DATA, s.cert_der, s.signer_for(algorithm), algorithm=algorithm)
    assert verify_signed_data(detached, DATA) is True
    assert verify_signed_data(detached, DATA + b"x") is False
    with pytest.raises(BadInput):
        verify_signed_data(detached)  # no content to check against
    with pytest.raises(BadInput):
        verify_signed_data(b"\x30\x03\x02\x01")
