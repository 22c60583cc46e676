"""helper.verify: login tokens checked as a hall backend would, on a PKI made here
and once against real SoftHSM keys."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from drivers.errors import ALL_ERRORS, CertHelperError
from drivers.types import Pin, SignAlgorithm
from helper import verify as V
from helper.verify import Identity, new_challenge, signed_bytes, verify_auth_token
from helper.verify.chain import check_chain_of
from tests.support.tokens import ROOT, USER_PIN, Fixtures

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ORIGIN = "http://127.0.0.1:9010"
OTHER_ORIGIN = "https://hall.example.cn"
CHALLENGE = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()
UNIQUE_ID = "HB130900000000001"
UNIQUE_ID_OID = x509.ObjectIdentifier("1.2.156.112586.1.4")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


# --- a test PKI: root → issuing CA → leaves ----------------------------------


def _name(cn: str, o: str | None = None, *, company: bool = False) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
    if company:
        attrs += [
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "河北省"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "沧州市"),
        ]
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o or cn))
    if company:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "财务部"))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


ROOT_NAME = _name("河北CA测试根证书 HEBCA Test Root CA", "河北省数字证书认证中心（测试）")
ISSUING_NAME = _name("河北CA测试二级证书 HEBCA Test Issuing CA", "河北省数字证书认证中心（测试）")
COMPANY = "沧州市测试科技有限公司"
COMPANY_DN = f"CN={COMPANY},OU=财务部,O={COMPANY},L=沧州市,ST=河北省,C=CN"
ISSUING_DN = "CN=河北CA测试二级证书 HEBCA Test Issuing CA,O=河北省数字证书认证中心（测试）,C=CN"

SIGN = {"digital_signature": True, "content_commitment": True}
CA_USAGE = {"key_cert_sign": True, "crl_sign": True}


def _key_usage(**flags: bool) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{n: flags.get(n, False) for n in names})


@dataclass
class Issuer:
    cert: x509.Certificate
    key: PrivateKey


def _issue(
    subject: x509.Name,
    key: PrivateKey,
    issuer: Issuer | None,
    *,
    ca: bool = False,
    path_length: int | None = None,
    usage: dict[str, bool] | None = None,
    days: tuple[int, int] = (-30, 335),
    extensions: tuple[tuple[x509.ExtensionType, bool], ...] = (),
    hash_alg: hashes.HashAlgorithm | None = None,
    at: datetime = NOW,
) -> Issuer:
    """A certificate for ``key``; ``issuer`` None makes it self-signed. usage {} = no keyUsage."""
    issuer_name = issuer.cert.subject if issuer else subject
    signing_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(at + days[0] * DAY)
        .not_valid_after(at + days[1] * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
            critical=False,
        )
    )
    usage = (CA_USAGE if ca else SIGN) if usage is None else usage
    if usage:
        builder = builder.add_extension(_key_usage(**usage), critical=True)
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return Issuer(builder.sign(signing_key, hash_alg or hashes.SHA256()), key)


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ec(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def _unique_id(value: str) -> tuple[x509.ExtensionType, bool]:
    der = b"\x0c" + bytes([len(value.encode())]) + value.encode()  # DER UTF8String
    return x509.UnrecognizedExtension(UNIQUE_ID_OID, der), False


EKU_CLIENT = (
    x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
    False,
)


def _sha1_signed(leaf: Issuer, issuer: Issuer) -> Issuer:
    """``leaf`` re-signed with SHA-1 and RSA (cryptography no longer issues such certificates)."""
    assert isinstance(issuer.key, rsa.RSAPrivateKey)
    cert = asn1_x509.Certificate.load(_der(leaf.cert))
    tbs = cert["tbs_certificate"]
    tbs["signature"] = {"algorithm": "sha1_rsa"}
    cert["signature_algorithm"] = {"algorithm": "sha1_rsa"}
    cert["signature_value"] = issuer.key.sign(tbs.dump(), padding.PKCS1v15(), hashes.SHA1())
    return Issuer(x509.load_der_x509_certificate(cert.dump(force=True)), leaf.key)


@dataclass
class Pki:
    root: Issuer
    issuing: Issuer
    leaves: dict[str, Issuer]

    def leaf(self, name: str) -> Issuer:
        return self.leaves[name]


def _build_pki() -> Pki:
    root = _issue(ROOT_NAME, _rsa(), None, ca=True, days=(-400, 7305))
    issuing = _issue(ISSUING_NAME, _rsa(), root, ca=True, path_length=0, days=(-395, 3653))
    company = _name(COMPANY, company=True)
    rsa_key = _rsa()
    leaves: dict[str, Issuer] = {
        "rsa": _issue(company, rsa_key, issuing, extensions=(_unique_id(UNIQUE_ID), EKU_CLIENT)),
        "rsa2": _issue(_name("沧州市另一测试有限公司", company=True), _rsa(), issuing),
        "p256": _issue(_name("沧州市测试贸易有限公司", company=True), _ec(), issuing),
        "p384": _issue(
            _name("沧州市测试物流有限公司", company=True),
            _ec(ec.SECP384R1()),
            issuing,
            usage={"digital_signature": True},
            extensions=(_unique_id("HB130900000000384"),),
        ),
        "p521": _issue(_name("P-521 测试"), _ec(ec.SECP521R1()), issuing),
        "encrypt": _issue(
            company, rsa_key, issuing, usage={"key_encipherment": True}, extensions=(EKU_CLIENT,)
        ),
        "nr_only": _issue(
            _name("仅不可否认测试"), _ec(), issuing, usage={"content_commitment": True}
        ),
        "no_ku": _issue(_name("无密钥用法测试"), _ec(), issuing, usage={}),
        "expired": _issue(_name("已过期测试"), _ec(), issuing, days=(-375, -10)),
        "future": _issue(_name("尚未生效测试"), _ec(), issuing, days=(10, 375)),
        "critical": _issue(
            _name("未知关键扩展测试"),
            _ec(),
            issuing,
            extensions=(
                (x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.5"), b"\x05\x00"), True),
            ),
        ),
        "sha1": _sha1_signed(_issue(_name("SHA-1 测试"), _ec(), issuing), issuing),
    }
    # a look-alike hierarchy: another root whose issuing CA has the real issuing CA's name
    other_root = _issue(_name("其他测试根证书"), _ec(), None, ca=True, days=(-400, 7305))
    other_issuing = _issue(ISSUING_NAME, _rsa(), other_root, ca=True, path_length=0)
    leaves["other_root"] = _issue(_name("假冒测试有限公司", company=True), _ec(), other_issuing)
    leaves["other_issuing"] = other_issuing
    leaves["other_root_ca"] = other_root
    # an ECDSA (P-384) issuing CA under the real root, signing with ECDSA-SHA384
    ec_ca = _issue(_name("EC 二级测试 CA"), _ec(ec.SECP384R1()), root, ca=True, path_length=0)
    leaves["ec_ca"] = ec_ca
    leaves["ec_ca_leaf"] = _issue(_name("EC CA 签发测试"), _ec(), ec_ca, hash_alg=hashes.SHA384())
    # a leaf "issued" by another leaf (not a CA)
    p256 = leaves["p256"]
    leaves["by_leaf"] = _issue(_name("由终端证书签发测试"), _ec(), p256)
    # issuing CA has pathlen 0: a CA below it may not issue
    sub_ca = _issue(_name("三级测试 CA"), _ec(), issuing, ca=True)
    leaves["sub_ca"] = sub_ca
    leaves["below_sub_ca"] = _issue(_name("三级 CA 签发测试"), _ec(), sub_ca)
    # a CA without keyCertSign
    no_kcs = _issue(_name("无签发权测试 CA"), _ec(), root, ca=True, usage={"crl_sign": True})
    leaves["no_kcs_ca"] = no_kcs
    leaves["by_no_kcs"] = _issue(_name("无签发权 CA 签发测试"), _ec(), no_kcs)
    # an expired CA (its leaf itself is in its validity period)
    old_ca = _issue(_name("过期测试 CA"), _ec(), root, ca=True, days=(-800, -1))
    leaves["old_ca"] = old_ca
    leaves["by_old_ca"] = _issue(_name("过期 CA 签发测试"), _ec(), old_ca, days=(-30, 30))
    return Pki(root, issuing, leaves)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return _build_pki()


# --- tokens, signed exactly as the helper signs -------------------------------


def _tbs(origin: str, challenge: str) -> bytes:
    return hashlib.sha256(origin.encode()).digest() + hashlib.sha256(challenge.encode()).digest()


def _jws_alg(key: PrivateKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    return {256: "ES256", 384: "ES384"}.get(key.curve.key_size, "ES256")


def _raw_ecdsa(der_sig: bytes, key_bits: int) -> bytes:
    r, s = decode_dss_signature(der_sig)
    size = (key_bits + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _sign(key: PrivateKey, data: bytes, algorithm: str) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    hash_alg = hashes.SHA384() if algorithm == "ES384" else hashes.SHA256()
    return _raw_ecdsa(key.sign(data, ec.ECDSA(hash_alg)), key.curve.key_size)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def make_token(
    leaf: Issuer,
    *,
    challenge: str = CHALLENGE,
    origin: str = ORIGIN,
    algorithm: str | None = None,
    signature: bytes | None = None,
) -> dict[str, Any]:
    alg = _jws_alg(leaf.key) if algorithm is None else algorithm
    sig = signature if signature is not None else _sign(leaf.key, _tbs(origin, challenge), alg)
    return {
        "format": "certhelper-auth:1",
        "certificate": _b64(leaf.cert.public_bytes(serialization.Encoding.DER)),
        "algorithm": alg,
        "signature": _b64(sig),
        "origin": origin,
        "app_version": "0.1.0",
    }


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def check(pki: Pki, token: Any, **kwargs: Any) -> Identity:
    kwargs.setdefault("challenge", CHALLENGE)
    kwargs.setdefault("origin", ORIGIN)
    kwargs.setdefault("trust_anchors", [pki.root.cert])
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("intermediates", [pki.issuing.cert])
    return verify_auth_token(token, **kwargs)


def fails(error: type[CertHelperError], fn: Callable[[], Any]) -> CertHelperError:
    """``fn`` raises exactly ``error`` (not a subclass, not a sibling)."""
    with pytest.raises(CertHelperError) as info:
        fn()
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    return info.value


# --- good tokens -----------------------------------------------------------------


def test_good_rsa_token(pki: Pki) -> None:
    leaf = pki.leaf("rsa")
    ident = check(pki, make_token(leaf))
    der = _der(leaf.cert)
    assert ident.subject == (
        ("C", "CN"),
        ("ST", "河北省"),
        ("L", "沧州市"),
        ("O", COMPANY),
        ("OU", "财务部"),
        ("CN", COMPANY),
    )
    assert ident.subject_cn == COMPANY
    assert ident.subject_dn == COMPANY_DN
    assert ident.issuer_dn == ISSUING_DN
    assert int(ident.serial_hex, 16) == leaf.cert.serial_number
    assert ident.serial_hex == ident.serial_hex.upper() and len(ident.serial_hex) % 2 == 0
    assert ident.hebca_unique_id == UNIQUE_ID
    assert ident.sha256 == hashlib.sha256(der).hexdigest()
    assert ident.not_after == leaf.cert.not_valid_after_utc
    assert ident.certificate_der == der
    assert (ident.algorithm, ident.origin) == ("RS256", ORIGIN)


@pytest.mark.parametrize(("name", "alg", "sig_len"), [("p256", "ES256", 64), ("p384", "ES384", 96)])
def test_good_ec_tokens(pki: Pki, name: str, alg: str, sig_len: int) -> None:
    leaf = pki.leaf(name)
    token = make_token(leaf)
    assert token["algorithm"] == alg
    assert len(base64.b64decode(token["signature"])) == sig_len
    ident = check(pki, token)
    assert ident.algorithm == alg
    assert (
        ident.subject_cn == leaf.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    )
    assert ident.sha256 == hashlib.sha256(_der(leaf.cert)).hexdigest()
    assert ident.hebca_unique_id == ("HB130900000000384" if name == "p384" else None)


def test_json_string_and_bytes_tokens_accepted(pki: Pki) -> None:
    token = make_token(pki.leaf("rsa"))
    text = json.dumps(token, ensure_ascii=False)
    assert check(pki, text).subject_cn == COMPANY
    assert check(pki, text.encode()).subject_cn == COMPANY


def test_unknown_extra_fields_are_ignored(pki: Pki) -> None:
    token = {**make_token(pki.leaf("p256")), "future_field": {"x": 1}}
    assert check(pki, token).algorithm == "ES256"


def test_identity_is_frozen(pki: Pki) -> None:
    ident = check(pki, make_token(pki.leaf("p256")))
    with pytest.raises(AttributeError):
        ident.subject_cn = "x"  # type: ignore[misc]
    assert "certificate_der" not in repr(ident)


def test_signed_bytes_match_the_protocol() -> None:
    assert signed_bytes(ORIGIN, CHALLENGE) == _tbs(ORIGIN, CHALLENGE)
    assert signed_bytes("https://办事大厅.example", CHALLENGE) == (
        hashlib.sha256("https://办事大厅.example".encode()).digest()
        + hashlib.sha256(CHALLENGE.encode("ascii")).digest()
    )


def test_padded_challenge_signed_as_sent(pki: Pki) -> None:
    padded = base64.urlsafe_b64encode(bytes(range(34))).decode()  # 34 bytes: ends in "=="
    assert padded.endswith("=")
    token = make_token(pki.leaf("p256"), challenge=padded)
    check(pki, token, challenge=padded)
    fails(V.BadSignature, lambda: check(pki, token, challenge=padded.rstrip("=")))


# --- signature, origin, challenge -----------------------------------------------


def test_token_for_another_origin(pki: Pki) -> None:
    token = make_token(pki.leaf("rsa"), origin=OTHER_ORIGIN)
    err = fails(V.OriginMismatch, lambda: check(pki, token))
    assert OTHER_ORIGIN in str(err)


def test_origin_compared_exactly(pki: Pki) -> None:
    for claimed in (ORIGIN + "/", ORIGIN.upper(), "http://localhost:9010", ORIGIN + " "):
        token = make_token(pki.leaf("p256"), origin=claimed)
        fails(V.OriginMismatch, lambda t=token: check(pki, t))


def test_tampered_origin_in_the_token(pki: Pki) -> None:
    token = make_token(pki.leaf("rsa"), origin=OTHER_ORIGIN)
    token["origin"] = ORIGIN  # claims our origin; the signature binds the other one
    fails(V.BadSignature, lambda: check(pki, token))


def test_tampered_challenge(pki: Pki) -> None:
    token = make_token(pki.leaf("rsa"))
    other = new_challenge()
    fails(V.BadSignature, lambda: check(pki, token, challenge=other))


def test_swapped_certificate(pki: Pki) -> None:
    token = make_token(pki.leaf("rsa"))
    token["certificate"] = make_token(pki.leaf("rsa2"))["certificate"]
    fails(V.BadSignature, lambda: check(pki, token))
    ec_token = make_token(pki.leaf("p256"))
    ec_token["certificate"] = make_token(pki.leaf("nr_only"))["certificate"]
    fails(V.BadSignature, lambda: check(pki, ec_token))


@pytest.mark.parametrize("name", ["rsa", "p256", "p384"])
def test_truncated_signature(pki: Pki, name: str) -> None:
    token = make_token(pki.leaf(name))
    sig = base64.b64decode(token["signature"])
    token["signature"] = _b64(sig[:-1])
    fails(V.BadSignature, lambda: check(pki, token))


def test_overlong_rsa_signature(pki: Pki) -> None:
    token = make_token(pki.leaf("rsa"))
    token["signature"] = _b64(base64.b64decode(token["signature"]) + b"\0")
    fails(V.BadSignature, lambda: check(pki, token))
    token["signature"] = _b64(b"\0" + base64.b64decode(make_token(pki.leaf("rsa"))["signature"]))
    fails(V.BadSignature, lambda: check(pki, token))


@pytest.mark.parametrize("name", ["rsa", "p256", "p384"])
def test_flipped_signature_bit(pki: Pki, name: str) -> None:
    token = make_token(pki.leaf(name))
    sig = bytearray(base64.b64decode(token["signature"]))
    sig[len(sig) // 2] ^= 0x01
    token["signature"] = _b64(bytes(sig))
    fails(V.BadSignature, lambda: check(pki, token))


@pytest.mark.parametrize(
    ("name", "hash_alg"), [("p256", hashes.SHA256()), ("p384", hashes.SHA384())]
)
def test_der_ecdsa_signature_is_a_bad_signature(pki: Pki, name: str, hash_alg) -> None:
    leaf = pki.leaf(name)
    der_sig = leaf.key.sign(_tbs(ORIGIN, CHALLENGE), ec.ECDSA(hash_alg))
    fails(V.BadSignature, lambda: check(pki, make_token(leaf, signature=der_sig)))


def test_zero_ecdsa_signature(pki: Pki) -> None:
    token = make_token(pki.leaf("p256"), signature=bytes(64))
    fails(V.BadSignature, lambda: check(pki, token))


def test_ecdsa_over_the_bare_challenge_fails(pki: Pki) -> None:
    """Signing the challenge alone (no origin binding) is not a valid token."""
    leaf = pki.leaf("p256")
    sig = _raw_ecdsa(leaf.key.sign(CHALLENGE.encode(), ec.ECDSA(hashes.SHA256())), 256)
    fails(V.BadSignature, lambda: check(pki, make_token(leaf, signature=sig)))


@pytest.mark.parametrize(
    "challenge",
    [
        base64.urlsafe_b64encode(bytes(31)).rstrip(b"=").decode(),  # 31 bytes
        "",
        "abc+def/" * 8,  # base64, not base64url
        CHALLENGE + "!",
        CHALLENGE + "\n",
        " " + CHALLENGE,
        "A" * 1025,  # too long
        "A" * 45,  # not a whole number of bytes
        CHALLENGE + "===",
    ],
)
def test_challenge_invalid(pki: Pki, challenge: str) -> None:
    token = make_token(pki.leaf("p256"))
    fails(V.ChallengeInvalid, lambda: check(pki, token, challenge=challenge))


def test_challenge_must_be_a_string(pki: Pki) -> None:
    token = make_token(pki.leaf("p256"))
    fails(V.ChallengeInvalid, lambda: check(pki, token, challenge=CHALLENGE.encode()))


def test_new_challenge() -> None:
    values = {new_challenge() for _ in range(50)}
    assert len(values) == 50
    for value in values:
        assert len(value) == 43 and "=" not in value
        assert len(base64.urlsafe_b64decode(value + "=")) == 32
    assert len(base64.urlsafe_b64decode(new_challenge(48))) == 48
    for bad in (0, 16, 31, 769):
        with pytest.raises(ValueError):
            new_challenge(bad)


def test_new_challenge_round_trip(pki: Pki) -> None:
    challenge = new_challenge(64)
    assert check(pki, make_token(pki.leaf("p256"), challenge=challenge), challenge=challenge)


# --- algorithms ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "algorithm"),
    [
        ("p256", "RS256"),  # RS256 with an EC key
        ("rsa", "ES256"),
        ("p256", "ES384"),  # ES384 is P-384 only (as in JWS)
        ("p384", "ES256"),
        ("p521", "ES256"),
        ("rsa", "PS256"),
        ("rsa", "HS256"),
        ("rsa", "none"),
        ("rsa", "rs256"),
        ("rsa", ""),
    ],
)
def test_algorithm_mismatch(pki: Pki, name: str, algorithm: str) -> None:
    leaf = pki.leaf(name)
    # a signature that would be valid for the key, only the declared algorithm is off
    real = _jws_alg(leaf.key)
    sig = _sign(leaf.key, _tbs(ORIGIN, CHALLENGE), real)
    token = make_token(leaf, algorithm=algorithm, signature=sig)
    fails(V.AlgorithmMismatch, lambda: check(pki, token))


def test_sm2_certificate_is_an_algorithm_mismatch(pki: Pki) -> None:
    """An SM2 (国密) key: the helper cannot sign with it, the verifier cannot check it."""
    cert = asn1_x509.Certificate.load(_der(pki.leaf("p256").cert))
    spki = cert["tbs_certificate"]["subject_public_key_info"]
    spki["algorithm"]["parameters"] = asn1_keys.ECDomainParameters(
        name="named", value="1.2.156.10197.1.301"
    )
    sm2 = Issuer(x509.load_der_x509_certificate(cert.dump(force=True)), pki.leaf("p256").key)
    for algorithm in ("ES256", "RS256", "SM2"):
        token = make_token(sm2, algorithm=algorithm, signature=bytes(64))
        fails(V.AlgorithmMismatch, lambda t=token: check(pki, t))


# --- validity --------------------------------------------------------------------


def test_expired_leaf(pki: Pki) -> None:
    fails(V.CertExpired, lambda: check(pki, make_token(pki.leaf("expired"))))


def test_not_yet_valid_leaf(pki: Pki) -> None:
    fails(V.CertNotYetValid, lambda: check(pki, make_token(pki.leaf("future"))))


def test_validity_bounds_are_inclusive(pki: Pki) -> None:
    leaf = pki.leaf("p256")
    token = make_token(leaf)
    check(pki, token, now=leaf.cert.not_valid_after_utc)
    check(pki, token, now=leaf.cert.not_valid_before_utc)
    after = leaf.cert.not_valid_after_utc + timedelta(seconds=1)
    fails(V.CertExpired, lambda: check(pki, token, now=after))
    before = leaf.cert.not_valid_before_utc - timedelta(seconds=1)
    fails(V.CertNotYetValid, lambda: check(pki, token, now=before))


def test_now_in_another_timezone(pki: Pki) -> None:
    leaf = pki.leaf("p256")
    token = make_token(leaf)
    beijing = timezone(timedelta(hours=8))
    assert check(pki, token, now=leaf.cert.not_valid_after_utc.astimezone(beijing))
    after = (leaf.cert.not_valid_after_utc + timedelta(seconds=1)).astimezone(beijing)
    fails(V.CertExpired, lambda: check(pki, token, now=after))


def test_naive_now_rejected(pki: Pki) -> None:
    with pytest.raises(ValueError, match="timezone"):
        check(pki, make_token(pki.leaf("p256")), now=datetime(2026, 3, 1, 12))


def test_default_now_is_the_clock(pki: Pki) -> None:
    """Without ``now`` the real clock is used."""
    clock = datetime.now(UTC)
    current = _issue(_name("当前时钟测试"), _ec(), pki.issuing, days=(-1, 1), at=clock)
    expired = _issue(_name("当前时钟过期测试"), _ec(), pki.issuing, days=(-2, -1), at=clock)
    args = (CHALLENGE, ORIGIN, [pki.root.cert])
    assert verify_auth_token(make_token(current), *args, intermediates=[pki.issuing.cert])
    fails(
        V.CertExpired,
        lambda: verify_auth_token(make_token(expired), *args, intermediates=[pki.issuing.cert]),
    )


# --- key usage -------------------------------------------------------------------


def test_encryption_certificate_refused(pki: Pki) -> None:
    """The encryption half of a HEBCA pair: same key, keyEncipherment only."""
    leaf = pki.leaf("encrypt")
    fails(V.WrongKeyUsage, lambda: check(pki, make_token(leaf)))


def test_non_repudiation_only_accepted_by_default(pki: Pki) -> None:
    token = make_token(pki.leaf("nr_only"))
    assert check(pki, token).subject_cn == "仅不可否认测试"
    fails(
        V.WrongKeyUsage,
        lambda: check(pki, token, required_key_usage=("digital_signature",)),
    )
    assert check(pki, token, required_key_usage=("non_repudiation",))


def test_no_key_usage_extension_is_unrestricted(pki: Pki) -> None:
    assert check(pki, make_token(pki.leaf("no_ku"))).subject_cn == "无密钥用法测试"


def test_key_usage_without_any_bit_is_not_unrestricted(pki: Pki) -> None:
    leaf = _issue(_name("空密钥用法测试"), _ec(), pki.issuing, usage={"crl_sign": False})
    assert leaf.cert.extensions.get_extension_for_class(x509.KeyUsage)
    fails(V.WrongKeyUsage, lambda: check(pki, make_token(leaf)))


def test_empty_required_key_usage_skips_the_check(pki: Pki) -> None:
    assert check(pki, make_token(pki.leaf("encrypt")), required_key_usage=())


def test_unknown_key_usage_name_is_a_programming_error(pki: Pki) -> None:
    token = make_token(pki.leaf("p256"))
    with pytest.raises(ValueError, match="unknown key usage"):
        check(pki, token, required_key_usage=("signing",))
    with pytest.raises(TypeError):
        check(pki, token, required_key_usage="digital_signature")


# --- chains ----------------------------------------------------------------------


def test_missing_intermediate_is_untrusted(pki: Pki) -> None:
    token = make_token(pki.leaf("rsa"))
    err = fails(V.UntrustedChain, lambda: check(pki, token, intermediates=()))
    assert "no issuer" in str(err)


def test_intermediate_supplied_in_either_list(pki: Pki) -> None:
    token = make_token(pki.leaf("rsa"))
    assert check(pki, token, intermediates=[pki.issuing.cert])
    # the issuing CA itself may be the anchor
    assert check(pki, token, trust_anchors=[pki.issuing.cert], intermediates=())
    # both CAs as anchors, nothing else
    assert check(pki, token, trust_anchors=[pki.root.cert, pki.issuing.cert], intermediates=())


def test_anchors_as_pem_and_der_bytes(pki: Pki) -> None:
    token = make_token(pki.leaf("p384"))
    pem = pki.root.cert.public_bytes(serialization.Encoding.PEM)
    issuing_pem = pki.issuing.cert.public_bytes(serialization.Encoding.PEM)
    assert check(pki, token, trust_anchors=[pem], intermediates=[issuing_pem])
    assert check(
        pki, token, trust_anchors=[_der(pki.root.cert)], intermediates=[_der(pki.issuing.cert)]
    )
    # a chain.pem-style file (issuing, then root) as one bytes value
    assert check(pki, token, trust_anchors=[issuing_pem + pem], intermediates=())


def test_bad_trust_anchor_arguments(pki: Pki) -> None:
    token = make_token(pki.leaf("p256"))
    with pytest.raises(ValueError, match="no trust anchors"):
        check(pki, token, trust_anchors=[])
    with pytest.raises(ValueError, match="not a certificate"):
        check(pki, token, trust_anchors=[b"junk"])
    with pytest.raises(TypeError):
        check(pki, token, trust_anchors=["/path/to/root-ca.pem"])


def test_leaf_from_another_root(pki: Pki) -> None:
    token = make_token(pki.leaf("other_root"))
    fails(V.UntrustedChain, lambda: check(pki, token))
    # even when its look-alike issuing CA (same name as ours) comes along
    other_issuing = pki.leaf("other_issuing").cert
    fails(
        V.UntrustedChain,
        lambda: check(pki, token, intermediates=[pki.issuing.cert, other_issuing]),
    )


def test_look_alike_issuer_without_key_ids(pki: Pki) -> None:
    """Same issuer name, no AKI to tell them apart: the signature check still refuses."""
    other_issuing = pki.leaf("other_issuing")
    fake = (
        x509.CertificateBuilder()
        .subject_name(_name("假冒无 AKI 测试"))
        .issuer_name(ISSUING_NAME)
        .public_key(_ec().public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 30 * DAY)
        .not_valid_after(NOW + 30 * DAY)
        .sign(other_issuing.key, hashes.SHA256())
    )
    both = [pki.issuing.cert, other_issuing.cert]
    fails(V.UntrustedChain, lambda: check_chain_of(fake, [pki.root.cert], both, NOW))
    # the same certificate is fine where the look-alike's own root is trusted
    check_chain_of(fake, [pki.leaf("other_root_ca").cert], both, NOW)


def test_leaf_signed_by_a_non_ca(pki: Pki) -> None:
    token = make_token(pki.leaf("by_leaf"))
    err = fails(
        V.UntrustedChain,
        lambda: check(pki, token, intermediates=[pki.issuing.cert, pki.leaf("p256").cert]),
    )
    assert "not a CA" in str(err)


def test_path_length_enforced(pki: Pki) -> None:
    token = make_token(pki.leaf("below_sub_ca"))
    chain = [pki.issuing.cert, pki.leaf("sub_ca").cert]
    err = fails(V.UntrustedChain, lambda: check(pki, token, intermediates=chain))
    assert "path length" in str(err)


def test_issuer_without_key_cert_sign(pki: Pki) -> None:
    token = make_token(pki.leaf("by_no_kcs"))
    err = fails(
        V.UntrustedChain, lambda: check(pki, token, intermediates=[pki.leaf("no_kcs_ca").cert])
    )
    assert "keyCertSign" in str(err)


def test_expired_intermediate(pki: Pki) -> None:
    token = make_token(pki.leaf("by_old_ca"))
    err = fails(
        V.UntrustedChain, lambda: check(pki, token, intermediates=[pki.leaf("old_ca").cert])
    )
    assert "not valid at this time" in str(err)


def test_expired_trust_anchor(pki: Pki) -> None:
    token = make_token(pki.leaf("by_old_ca"))
    fails(V.UntrustedChain, lambda: check(pki, token, trust_anchors=[pki.leaf("old_ca").cert]))


def test_ecdsa_issuing_ca(pki: Pki) -> None:
    token = make_token(pki.leaf("ec_ca_leaf"))
    assert check(pki, token, intermediates=[pki.leaf("ec_ca").cert]).subject_cn == "EC CA 签发测试"
    fails(V.UntrustedChain, lambda: check(pki, token))


def test_ecdsa_root(pki: Pki) -> None:
    """The look-alike hierarchy has an ECDSA root: anchored there, its leaf verifies."""
    token = make_token(pki.leaf("other_root"))
    anchors = [pki.leaf("other_root_ca").cert]
    chain = [pki.leaf("other_issuing").cert]
    assert check(pki, token, trust_anchors=anchors, intermediates=chain)


def test_unknown_critical_extension_refused(pki: Pki) -> None:
    err = fails(V.UntrustedChain, lambda: check(pki, make_token(pki.leaf("critical"))))
    assert "1.2.3.4.5" in str(err)


def test_sha1_signed_certificate_refused(pki: Pki) -> None:
    err = fails(V.UntrustedChain, lambda: check(pki, make_token(pki.leaf("sha1"))))
    assert "sha1" in str(err)


_END_ENTITIES = [
    "rsa", "rsa2", "p256", "p384", "p521", "encrypt", "nr_only", "no_ku", "expired", "future",
    "critical", "sha1", "other_root", "ec_ca_leaf", "by_leaf", "below_sub_ca", "by_no_kcs",
    "by_old_ca",
]  # fmt: skip


@pytest.mark.parametrize("name", _END_ENTITIES)
def test_chain_verdict_agrees_with_cryptography(pki: Pki, name: str) -> None:
    """cryptography's own path validation (Web-PKI rules, subjectAltName made optional)
    is an independent oracle for the chain builder on this PKI."""
    from cryptography.x509 import verification  # ExtensionPolicy: cryptography >= 45

    ee_policy = verification.ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, None
    )
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([pki.root.cert]))
        .time(NOW)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy
        )
        .build_client_verifier()
    )
    pool = [pki.issuing.cert, pki.leaf("p256").cert] + [
        pki.leaf(n).cert for n in ("other_issuing", "ec_ca", "sub_ca", "no_kcs_ca", "old_ca")
    ]
    leaf = pki.leaf(name).cert
    try:
        verifier.verify(leaf, pool)
        theirs = True
    except verification.VerificationError:
        theirs = False
    try:
        check_chain_of(leaf, [pki.root.cert], pool, NOW)
        ours = True
    except V.UntrustedChain:
        ours = False
    assert ours == theirs


# --- malformed tokens ------------------------------------------------------------


def _mutated(pki: Pki, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    token = make_token(pki.leaf("rsa"))
    change(token)
    return token


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.update(format="certhelper-auth:2"),
        lambda t: t.update(format="CERTHELPER-AUTH:1"),
        lambda t: t.pop("format"),
        lambda t: t.pop("certificate"),
        lambda t: t.pop("algorithm"),
        lambda t: t.pop("signature"),
        lambda t: t.pop("origin"),
        lambda t: t.pop("app_version"),
        lambda t: t.update(app_version=1),
        lambda t: t.update(origin=None),
        lambda t: t.update(algorithm=["RS256"]),
        lambda t: t.update(certificate=base64.b64decode(t["certificate"]).hex()[:-1]),
        lambda t: t.update(certificate=t["certificate"].rstrip("=") + "!"),
        lambda t: t.update(certificate=base64.urlsafe_b64encode(b"\xfb\xff" * 400).decode()),
        lambda t: t.update(certificate=_b64(b"not a certificate")),
        lambda t: t.update(certificate=""),
        lambda t: t.update(certificate=_b64(base64.b64decode(t["certificate"]) + b"junk")),
        lambda t: t.update(certificate=_b64(base64.b64decode(t["certificate"])[:-10])),
        lambda t: t.update(signature="not base64!"),
        lambda t: t.update(signature=""),
        lambda t: t.update(signature=t["signature"] + "\n"),
    ],
)
def test_unknown_format(pki: Pki, change: Callable[[dict[str, Any]], None]) -> None:
    token = _mutated(pki, change)
    fails(V.UnknownTokenFormat, lambda: check(pki, token))


@pytest.mark.parametrize(
    "raw",
    ["", "not json", "[]", '"certhelper-auth:1"', "null", "{", b"\xff\xfe", "x" * 70000],
)
def test_unknown_format_raw(pki: Pki, raw: str | bytes) -> None:
    fails(V.UnknownTokenFormat, lambda: check(pki, raw))


def test_unknown_format_not_a_mapping(pki: Pki) -> None:
    fails(V.UnknownTokenFormat, lambda: check(pki, [make_token(pki.leaf("rsa"))]))
    fails(V.UnknownTokenFormat, lambda: check(pki, None))


def test_duplicate_json_fields(pki: Pki) -> None:
    token = make_token(pki.leaf("rsa"))
    text = json.dumps(token)[:-1] + ', "origin": "https://evil.example"}'
    fails(V.UnknownTokenFormat, lambda: check(pki, text))


def test_zero_padding_after_the_certificate_is_tolerated(pki: Pki) -> None:
    """Some tokens store CKA_VALUE with trailing zeros; the helper may pass it on."""
    token = make_token(pki.leaf("rsa"))
    token["certificate"] = _b64(base64.b64decode(token["certificate"]) + bytes(16))
    assert check(pki, token).certificate_der == _der(pki.leaf("rsa").cert)


# --- order of the checks -----------------------------------------------------------


def test_checks_run_in_the_documented_order(pki: Pki) -> None:
    expired_elsewhere = make_token(pki.leaf("expired"), origin=OTHER_ORIGIN)
    fails(V.ChallengeInvalid, lambda: check(pki, {"format": "x"}, challenge="short"))
    fails(V.UnknownTokenFormat, lambda: check(pki, {**expired_elsewhere, "format": "x"}))
    fails(V.OriginMismatch, lambda: check(pki, expired_elsewhere))
    wrong_alg = make_token(pki.leaf("expired"), algorithm="RS256", signature=b"\x00" * 64)
    fails(V.AlgorithmMismatch, lambda: check(pki, wrong_alg))
    bad_sig = make_token(pki.leaf("expired"), signature=bytes(64))
    fails(V.BadSignature, lambda: check(pki, bad_sig))
    # expired and untrusted: the expiry is reported
    expired = make_token(pki.leaf("expired"))
    fails(V.CertExpired, lambda: check(pki, expired, intermediates=()))
    # encryption-only and untrusted: the chain is reported
    fails(V.UntrustedChain, lambda: check(pki, make_token(pki.leaf("encrypt")), intermediates=()))


# --- the error classes ---------------------------------------------------------------


def test_error_classes_are_registered() -> None:
    classes = [
        V.UnknownTokenFormat,
        V.OriginMismatch,
        V.BadSignature,
        V.AlgorithmMismatch,
        V.CertExpired,
        V.CertNotYetValid,
        V.UntrustedChain,
        V.WrongKeyUsage,
        V.ChallengeInvalid,
    ]
    codes = [c.code for c in classes]
    assert len(set(codes)) == len(codes)
    for cls in [V.VerifyError, *classes]:
        assert cls in ALL_ERRORS
        assert cls.code.startswith("verify_")
        assert issubclass(cls, V.VerifyError) and issubclass(cls, CertHelperError)
        assert cls.message_zh and cls.message_en
    assert sum(c.code == "verify_failed" for c in ALL_ERRORS) == 1


def test_error_rows_in_the_docs() -> None:
    """test_docs.py sees these codes only when helper.verify is imported: check here too."""
    errors_md = (ROOT / "docs" / "errors.md").read_text("utf-8")
    verifier_md = (ROOT / "docs" / "verifier.md").read_text("utf-8")
    for cls in ALL_ERRORS:
        if issubclass(cls, V.VerifyError):
            row = f"| `{cls.code}` | {cls.exit_code} | {cls.message_zh} | {cls.message_en} |"
            assert row in errors_md, row
            assert f"| `{cls.code}` | {cls.message_zh} | {cls.message_en} |" in verifier_md


# --- the backend example of docs/verifier.md ------------------------------------------


def _doc_example() -> str:
    text = (ROOT / "docs" / "verifier.md").read_text("utf-8")
    start = text.index("```python\n", text.index("## Backend example")) + len("```python\n")
    return text[start : text.index("\n```", start)]


def test_backend_example_runs(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, issuer in (("root-ca.pem", pki.root), ("issuing-ca.pem", pki.issuing)):
        (tmp_path / name).write_bytes(issuer.cert.public_bytes(serialization.Encoding.PEM))
    monkeypatch.setenv("HALL_CA_DIR", str(tmp_path))
    example: dict[str, Any] = {"__name__": "hall_login"}
    exec(compile(_doc_example(), "docs/verifier.md", "exec"), example)
    clock = datetime.now(UTC)
    leaf = _issue(
        _name(COMPANY, company=True),
        _ec(),
        pki.issuing,
        days=(-1, 30),
        at=clock,
        extensions=(_unique_id(UNIQUE_ID),),
    )
    origin = example["HALL_ORIGIN"]

    challenge = example["get_login_challenge"]("session-1")["challenge"]
    body = json.dumps(make_token(leaf, challenge=challenge, origin=origin)).encode()
    result = example["post_login"]("session-1", body)
    assert result["ok"] and result["account"] == f"hebca:{UNIQUE_ID}"
    assert result["company"] == COMPANY
    # single use: the same token again finds no challenge
    assert example["post_login"]("session-1", body)["code"] == "challenge_expired"
    # another session's challenge does not fit
    example["get_login_challenge"]("session-2")
    assert example["post_login"]("session-2", body)["code"] == "verify_bad_signature"
    # a token for another site
    challenge = example["get_login_challenge"]("session-3")["challenge"]
    other = json.dumps(make_token(leaf, challenge=challenge, origin=OTHER_ORIGIN))
    refused = example["post_login"]("session-3", other.encode())
    assert refused == {
        "ok": False,
        "code": "verify_origin_mismatch",
        "message": V.OriginMismatch.message_zh,
    }
    # expired challenge (the example's functions read its globals: no global patching)
    example["CHALLENGE_LIFETIME"] = -1.0
    example["get_login_challenge"]("session-4")
    assert example["post_login"]("session-4", body)["code"] == "challenge_expired"


# --- a real SoftHSM key --------------------------------------------------------------


def _token_cert_der(driver, fixtures: Fixtures, name: str) -> bytes:  # type: ignore[no-untyped-def]
    c = fixtures.cert(name)
    contents = driver.read_objects(c["token_serial"])
    return next(o.value for o in contents.certificates if o.key_id.hex() == c["key_id"])


@pytest.mark.parametrize(
    ("name", "algorithm", "jws"),
    [
        ("company_sign", SignAlgorithm.RSA_PKCS1_SHA256, "RS256"),
        ("trade_ec", SignAlgorithm.ECDSA_SHA256, "ES256"),
    ],
)
def test_token_from_a_softhsm_key(
    driver,  # type: ignore[no-untyped-def]
    fixtures: Fixtures,
    name: str,
    algorithm: SignAlgorithm,
    jws: str,
) -> None:
    c = fixtures.cert(name)
    der = _token_cert_der(driver, fixtures, name)
    challenge = new_challenge()
    data = _tbs(ORIGIN, challenge)  # the driver hashes it again (SHA-256)
    driver.login(c["token_serial"], Pin(USER_PIN))
    try:
        sig = driver.sign(c["token_serial"], bytes.fromhex(c["key_id"]), data, algorithm)
    finally:
        driver.logout(c["token_serial"])
    if jws == "ES256":
        sig = _raw_ecdsa(sig, 256)
    token = {
        "format": "certhelper-auth:1",
        "certificate": _b64(der),
        "algorithm": jws,
        "signature": _b64(sig),
        "origin": ORIGIN,
        "app_version": "0.1.0",
    }
    anchors = [Path(fixtures.manifest["ca"]["root"]).read_bytes()]
    chain = [Path(fixtures.manifest["ca"]["issuing"]).read_bytes()]
    ident = verify_auth_token(json.dumps(token), challenge, ORIGIN, anchors, intermediates=chain)
    assert ident.sha256 == c["sha256"]
    assert ident.serial_hex == c["serial_hex"]
    assert ident.subject_cn == c["subject_cn"]
    assert ident.algorithm == jws
    assert ident.issuer_dn.startswith("CN=河北CA测试二级证书 HEBCA Test Issuing CA")
    assert ident.hebca_unique_id == (UNIQUE_ID if name == "company_sign" else None)
    fails(V.OriginMismatch, lambda: verify_auth_token(token, challenge, OTHER_ORIGIN, anchors))
    fails(
        V.BadSignature,
        lambda: verify_auth_token(token, new_challenge(), ORIGIN, anchors, intermediates=chain),
    )
    fails(V.UntrustedChain, lambda: verify_auth_token(token, challenge, ORIGIN, anchors))
