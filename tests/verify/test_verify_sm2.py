"""helper.verify with SM2 (国密): login tokens (SM2SM3), legacy HEBCA signatures
(SM3SM2), CMS SignedData per GM/T 0010 and SM2-with-SM3 certificate chains.

Signatures come from the soft SKF key (libsoftskf, through SkfDriver, which computes
e = SM3(Z ‖ M) itself), from gmalg with keys the test holds, and from the OpenSSL
command line; the ones the verifier accepts are also checked with gmalg and
``openssl dgst -sm3 -verify -sigopt distid:1234567812345678`` (tests/support/sm2.py), so
the verifier is not only agreeing with itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gmalg
import pytest
from asn1crypto import algos as asn1_algos
from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from drivers import sm2
from drivers.skf.driver import SkfDriver, key_id
from drivers.types import Pin, SignAlgorithm
from helper import verify as V
from helper.cms import build_signed_data
from helper.verify import (
    check_chain,
    new_challenge,
    signed_bytes,
    verify_auth_token,
    verify_cms_signature,
    verify_legacy_signature,
)
from tests.support.skf import GmKeys
from tests.support.sm2 import gmalg_verifies, openssl_verifies, spki_of, verified_both_ways
from tests.support.tokens import USER_PIN, Fixtures

ORIGIN = "http://127.0.0.1:9010"
OTHER_ORIGIN = "https://hall.example.cn"
GM_ID = b"1234567812345678"  # GM/T 0009 default ID, written out (not taken from drivers.sm2)
OTHER_ID = b"HB130900000000001"
TEXT = "登录挑战 2026-12-05 沧州公积金 nonce=8f3a"
DATA = "沧州公积金 汇缴 2026-12 单位 1301 金额 12,345.00".encode()
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def fails(cls: type[V.VerifyError], call: Callable[[], Any], detail: str = "") -> V.VerifyError:
    """``call`` raises exactly ``cls`` (not a sibling), with ``detail`` in its detail."""
    with pytest.raises(V.VerifyError) as info:
        call()
    assert type(info.value) is cls, f"{type(info.value).__name__}: {info.value.detail}"
    assert detail in (info.value.detail or ""), info.value.detail
    return info.value


def der_to_rs(sig_der: bytes) -> bytes:
    parsed = asn1_algos.DSASignature.load(sig_der)
    return parsed["r"].native.to_bytes(32, "big") + parsed["s"].native.to_bytes(32, "big")


def rs_to_der(rs: bytes) -> bytes:
    r, s = int.from_bytes(rs[:32], "big"), int.from_bytes(rs[32:], "big")
    return asn1_algos.DSASignature({"r": r, "s": s}).dump()


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def pem_certs(path: str | Path) -> list[bytes]:
    return [der for _, _, der in asn1_pem.unarmor(Path(path).read_bytes(), multiple=True)]


# --- the soft SKF key ----------------------------------------------------------------------


@dataclass
class SoftKey:
    """A logged-in soft SKF device and its SM2 PKI (manifest "skf" section)."""

    drv: SkfDriver
    keys: GmKeys
    rsa_anchors: list[bytes]
    rsa_intermediates: list[bytes]

    @property
    def anchors(self) -> list[bytes]:
        return pem_certs(self.keys.section["ca"]["root"])

    @property
    def intermediates(self) -> list[bytes]:
        return pem_certs(self.keys.section["ca"]["issuing"])

    def _where(self, cert: str) -> tuple[str, bytes, bool]:
        entry = self.keys.cert(cert)
        return (
            self.keys.serial(entry["device"]),
            key_id(entry["container"], sign=entry["usage"] == "sign"),
            entry["usage"] == "sign",
        )

    def cert_der(self, cert: str) -> bytes:
        serial, kid, _ = self._where(cert)
        found = [c.value for c in self.drv.read_objects(serial).certificates if c.key_id == kid]
        assert len(found) == 1
        assert hashlib.sha256(found[0]).hexdigest() == self.keys.cert(cert)["sha256"]
        return found[0]

    def sign(
        self,
        cert: str,
        message: bytes,
        algorithm: SignAlgorithm = SignAlgorithm.SM2_SM3,
        uid: bytes = GM_ID,
    ) -> bytes:
        """DER SEQUENCE{r, s} for SM2 (the driver computes e = SM3(Z ‖ M) with ``uid``)."""
        serial, kid, _ = self._where(cert)
        if not self.drv.is_logged_in(serial):
            self.drv.login(serial, Pin(USER_PIN))
        return self.drv.sign(serial, kid, message, algorithm, sm2_id=uid)


@pytest.fixture
def soft(skf_driver: SkfDriver, gm_keys: GmKeys, fixtures: Fixtures) -> SoftKey:
    return SoftKey(
        skf_driver,
        gm_keys,
        pem_certs(fixtures.manifest["ca"]["root"]),
        pem_certs(fixtures.manifest["ca"]["issuing"]),
    )


# --- an SM2 PKI of the test's own (gmalg keys) ---------------------------------------------


@dataclass
class GmKey:
    sk: bytes
    point: bytes  # 04 ‖ x ‖ y

    @classmethod
    def new(cls) -> GmKey:
        sk, pk = gmalg.SM2().generate_keypair()
        return cls(sk, pk)

    def sign(self, message: bytes, uid: bytes = GM_ID) -> bytes:
        r, s = gmalg.SM2(sk=self.sk, pk=self.point, uid=uid).sign(message)
        return asn1_algos.DSASignature(
            {"r": int.from_bytes(r, "big"), "s": int.from_bytes(s, "big")}
        ).dump()

    def spki(self) -> asn1_keys.PublicKeyInfo:
        return asn1_keys.PublicKeyInfo(
            {
                "algorithm": {"algorithm": "ec", "parameters": ("named", "1.2.156.10197.1.301")},
                "public_key": self.point,
            }
        )


@dataclass
class GmCert:
    der: bytes
    key: GmKey | None  # None: a key the test does not hold (OpenSSL's)

    @property
    def subject(self) -> asn1_x509.Name:
        return asn1_x509.Certificate.load(self.der).subject

    @property
    def ski(self) -> bytes:
        return asn1_x509.Certificate.load(self.der).key_identifier


def _name(cn: str) -> asn1_x509.Name:
    return asn1_x509.Name.build(
        {
            "country_name": "CN",
            "organization_name": "河北省数字证书认证中心（测试）",
            "common_name": cn,
        }
    )


CA_USAGE = {"key_cert_sign", "crl_sign"}
SIGN_USAGE = {"digital_signature", "non_repudiation"}


def issue(
    subject: asn1_x509.Name | str,
    issuer: GmCert | None,
    *,
    key: GmKey | None = None,
    spki: asn1_keys.PublicKeyInfo | None = None,
    ca: bool = False,
    path_length: int | None = None,
    usage: set[str] | None = None,
    days: tuple[int, int] = (-30, 335),
    uid: bytes = GM_ID,
    with_aki: bool = True,
    signer: GmKey | None = None,
) -> GmCert:
    """An SM2-with-SM3 certificate; ``issuer`` None: self-signed. ``signer`` overrides the
    key that signs (a forged issuer)."""
    if spki is None:
        key = key or GmKey.new()
        spki = key.spki()
    name = _name(subject) if isinstance(subject, str) else subject
    point = spki["public_key"].native
    ski = hashlib.sha1(point).digest()
    constraints: dict[str, Any] = {"ca": ca}
    if path_length is not None:
        constraints["path_len_constraint"] = path_length
    exts = [
        {"extn_id": "basic_constraints", "critical": True, "extn_value": constraints},
        {"extn_id": "key_identifier", "critical": False, "extn_value": ski},
    ]
    usage = (CA_USAGE if ca else SIGN_USAGE) if usage is None else usage
    if usage:
        exts.append({"extn_id": "key_usage", "critical": True, "extn_value": usage})
    if with_aki:
        aki = issuer.ski if issuer else ski
        exts.append(
            {
                "extn_id": "authority_key_identifier",
                "critical": False,
                "extn_value": {"key_identifier": aki},
            }
        )
    tbs = asn1_x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": secrets.randbits(126) | 1 << 125,
            "signature": {"algorithm": "1.2.156.10197.1.501"},
            "issuer": issuer.subject if issuer else name,
            "validity": {
                "not_before": asn1_x509.Time(name="utc_time", value=NOW + days[0] * DAY),
                "not_after": asn1_x509.Time(name="utc_time", value=NOW + days[1] * DAY),
            },
            "subject": name,
            "subject_public_key_info": spki,
            "extensions": exts,
        }
    )
    sign_key = signer or (issuer.key if issuer else key)
    assert sign_key is not None
    der = asn1_x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": {"algorithm": "1.2.156.10197.1.501"},
            "signature_value": sign_key.sign(tbs.dump(), uid),
        }
    ).dump()
    return GmCert(der, key)


@dataclass
class GmPki:
    root: GmCert
    issuing: GmCert
    leaf: GmCert


@pytest.fixture(scope="module")
def gm_pki() -> GmPki:
    root = issue("河北CA测试SM2根证书 (本测试)", None, ca=True, days=(-400, 7305))
    issuing = issue(
        "河北CA测试SM2二级证书 (本测试)", root, ca=True, path_length=0, days=(-395, 3653)
    )
    company = asn1_x509.Name.build(
        {
            "country_name": "CN",
            "state_or_province_name": "河北省",
            "locality_name": "沧州市",
            "organization_name": "沧州市测试科技有限公司",
            "common_name": "沧州市测试科技有限公司",
        }
    )
    return GmPki(root, issuing, issue(company, issuing))


def own_token(leaf: GmCert, challenge: str, *, origin: str = ORIGIN, uid: bytes = GM_ID) -> dict:
    assert leaf.key is not None
    sig = der_to_rs(leaf.key.sign(signed_bytes(origin, challenge), uid))
    return make_token(leaf.der, sig, origin=origin)


def make_token(
    cert_der: bytes, sig: bytes, *, origin: str = ORIGIN, algorithm: str = "SM2SM3"
) -> dict:
    return {
        "format": "certhelper-auth:1",
        "certificate": base64.b64encode(cert_der).decode(),
        "algorithm": algorithm,
        "signature": base64.b64encode(sig).decode(),
        "origin": origin,
        "app_version": "0.1.0",
    }


# --- login tokens (SM2SM3) -----------------------------------------------------------------


def test_sm2_token_from_the_soft_skf_key(soft: SoftKey) -> None:
    challenge = new_challenge()
    tbs = signed_bytes(ORIGIN, challenge)
    sig_der = soft.sign("gm_company_sign", tbs)
    cert = soft.cert_der("gm_company_sign")
    # the signature is an ordinary SM2-with-SM3 one over signed_bytes, as OpenSSL and gmalg
    # see it: the verifier's answer below is checked against theirs
    assert verified_both_ways(cert, tbs, sig_der)
    token = make_token(cert, der_to_rs(sig_der))

    ident = verify_auth_token(
        json.dumps(token), challenge, ORIGIN, soft.anchors, intermediates=soft.intermediates
    )
    assert ident.algorithm == "SM2SM3"
    assert ident.subject_cn == "沧州市测试科技有限公司"
    assert ident.hebca_unique_id == "HB130900000000001"
    assert ident.sha256 == soft.keys.cert("gm_company_sign")["sha256"]
    assert ident.origin == ORIGIN
    assert "SM2SM3" in V.ALGORITHMS
    # trusting the issuing CA alone is enough, as for RSA
    verify_auth_token(token, challenge, ORIGIN, soft.intermediates)


def test_sm2_token_tampered_field_by_field(soft: SoftKey) -> None:
    challenge = new_challenge()
    tbs = signed_bytes(ORIGIN, challenge)
    cert = soft.cert_der("gm_company_sign")
    sig_der = soft.sign("gm_company_sign", tbs)
    rs = der_to_rs(sig_der)
    good = make_token(cert, rs)

    def check(token: dict, ch: str = challenge, origin: str = ORIGIN) -> V.Identity:
        return verify_auth_token(token, ch, origin, soft.anchors, intermediates=soft.intermediates)

    check(good)
    # origin: the field edited to another site, or verified for it
    fails(V.OriginMismatch, lambda: check({**good, "origin": OTHER_ORIGIN}))
    fails(V.BadSignature, lambda: check({**good, "origin": OTHER_ORIGIN}, origin=OTHER_ORIGIN))
    # another challenge (a replay)
    fails(V.BadSignature, lambda: check(good, ch=new_challenge()))
    # every byte of r ‖ s matters
    for i in (0, 1, 16, 31, 32, 33, 48, 63):
        fails(V.BadSignature, lambda i=i: check(make_token(cert, flip(rs, i))))
    fails(V.BadSignature, lambda: check(make_token(cert, rs[32:] + rs[:32])))  # s ‖ r
    # encodings: DER where r ‖ s belongs, truncated, padded
    fails(V.BadSignature, lambda: check(make_token(cert, sig_der)), "r||s, 64 bytes")
    fails(V.BadSignature, lambda: check(make_token(cert, rs[:63])), "64 bytes")
    fails(V.BadSignature, lambda: check(make_token(cert, b"\0" + rs)), "64 bytes")
    fails(V.BadSignature, lambda: check(make_token(cert, bytes(64))))  # r = s = 0
    n = sm2.N.to_bytes(32, "big")
    fails(V.BadSignature, lambda: check(make_token(cert, n + rs[32:])))  # r = n
    # certificates swapped: another company's SM2 key, and the same company's encryption key
    for other in ("gm2_sign", "gm_company_enc"):
        fails(V.BadSignature, lambda o=other: check(make_token(soft.cert_der(o), rs)))
    # signed with another distinguishing ID: Z differs, so does e
    other_id = der_to_rs(soft.sign("gm_company_sign", tbs, uid=OTHER_ID))
    assert openssl_verifies(spki_of(cert), tbs, rs_to_der(other_id), OTHER_ID)
    fails(V.BadSignature, lambda: check(make_token(cert, other_id)))
    # e = SM3(Z ‖ SM3(signed_bytes)) or the bare signed_bytes hashed: not this format
    fails(V.BadSignature, lambda: check(make_token(cert, der_to_rs(
        soft.sign("gm_company_sign", hashlib.new("sm3", tbs).digest()))
    )))  # fmt: skip


def test_sm2_and_other_keys_do_not_mix_algorithms(soft: SoftKey, gm_pki: GmPki) -> None:
    challenge = new_challenge()
    tbs = signed_bytes(ORIGIN, challenge)
    sm2_cert = soft.cert_der("gm_company_sign")
    rs = der_to_rs(soft.sign("gm_company_sign", tbs))
    for algorithm in ("RS256", "ES256", "ES384", "SM2", "sm2sm3", "SM3SM2"):
        fails(
            V.AlgorithmMismatch,
            lambda a=algorithm: verify_auth_token(
                make_token(sm2_cert, rs, algorithm=a), challenge, ORIGIN, soft.anchors
            ),
        )
    # an RSA certificate (the RSA container of the same SKF device) with SM2SM3
    rsa_cert = soft.cert_der("gm_rsa_sign")
    rsa_sig = soft.sign("gm_rsa_sign", tbs, SignAlgorithm.RSA_PKCS1_SHA256)
    fails(
        V.AlgorithmMismatch,
        lambda: verify_auth_token(
            make_token(rsa_cert, rsa_sig), challenge, ORIGIN, soft.rsa_anchors
        ),
        "SM2SM3 does not fit the certificate's RSA",
    )
    ident = verify_auth_token(  # and as RS256 it is fine: RSA is unchanged
        make_token(rsa_cert, rsa_sig, algorithm="RS256"),
        challenge,
        ORIGIN,
        soft.rsa_anchors,
        intermediates=soft.rsa_intermediates,
    )
    assert ident.algorithm == "RS256"
    # an EC P-256 certificate with SM2SM3 (its ES256 signature as r ‖ s, 64 bytes too)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "P-256 测试")])
    ec_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ec_key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + DAY)
        .sign(ec_key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(ec_key.sign(tbs, ec.ECDSA(hashes.SHA256())))
    ec_rs = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    fails(
        V.AlgorithmMismatch,
        lambda: verify_auth_token(
            make_token(ec_cert.public_bytes(Encoding.DER), ec_rs), challenge, ORIGIN, [ec_cert]
        ),
        "SM2SM3 does not fit the certificate's EC secp256r1",
    )


def test_sm2_token_validity_chain_and_key_usage(soft: SoftKey, gm_pki: GmPki) -> None:
    challenge = new_challenge()
    tbs = signed_bytes(ORIGIN, challenge)
    # the SKF certificate that expires within 7 days: fine now, expired a day after
    expiring = make_token(soft.cert_der("gm_expiring"), der_to_rs(soft.sign("gm_expiring", tbs)))
    verify_auth_token(expiring, challenge, ORIGIN, soft.anchors, intermediates=soft.intermediates)
    not_after = datetime.fromisoformat(soft.keys.cert("gm_expiring")["not_after"])
    fails(
        V.CertExpired,
        lambda: verify_auth_token(
            expiring, challenge, ORIGIN, soft.anchors, not_after + DAY,
            intermediates=soft.intermediates,
        ),
    )  # fmt: skip
    # an SM2 leaf against the RSA hierarchy, or without its issuing CA: untrusted
    good = make_token(
        soft.cert_der("gm_company_sign"), der_to_rs(soft.sign("gm_company_sign", tbs))
    )
    fails(V.UntrustedChain, lambda: verify_auth_token(good, challenge, ORIGIN, soft.rsa_anchors))
    fails(V.UntrustedChain, lambda: verify_auth_token(good, challenge, ORIGIN, soft.anchors))
    fails(  # the test's own SM2 root is not the fixture's
        V.UntrustedChain,
        lambda: verify_auth_token(
            good, challenge, ORIGIN, [gm_pki.root.der], intermediates=soft.intermediates
        ),
    )
    # an encryption-only SM2 certificate (its key held here) cannot log in
    enc = issue("沧州市测试科技有限公司", gm_pki.issuing, usage={"key_encipherment"})
    token = own_token(enc, challenge)
    fails(
        V.WrongKeyUsage,
        lambda: verify_auth_token(
            token, challenge, ORIGIN, [gm_pki.root.der], NOW, intermediates=[gm_pki.issuing.der]
        ),
    )
    ident = verify_auth_token(
        own_token(gm_pki.leaf, challenge), challenge, ORIGIN, [gm_pki.root.der], NOW,
        intermediates=[gm_pki.issuing.der],
    )  # fmt: skip
    assert ident.algorithm == "SM2SM3"


# --- legacy HEBCA SignText (algorithm 2, SM3SM2) ----------------------------------------


def test_legacy_sm2_signature_from_the_soft_skf_key(soft: SoftKey) -> None:
    cert = soft.cert_der("gm_company_sign")
    sig = soft.sign("gm_company_sign", TEXT.encode("utf-8"))
    assert verified_both_ways(cert, TEXT.encode("utf-8"), sig)

    def check(c: bytes, s: bytes, text: str = TEXT) -> V.Identity:
        return verify_legacy_signature(c, s, text, soft.anchors, intermediates=soft.intermediates)

    ident = check(cert, sig)
    assert (ident.algorithm, ident.origin) == ("SM2SM3", "")
    assert ident.hebca_unique_id == "HB130900000000001"
    fails(V.BadSignature, lambda: check(cert, sig, TEXT + " "))
    fails(V.BadSignature, lambda: check(cert, sig, TEXT.encode("utf-8").decode("latin-1")))
    fails(V.BadSignature, lambda: check(cert, der_to_rs(sig)), "DER")  # r ‖ s is not DER
    fails(V.BadSignature, lambda: check(cert, sig + b"\0"), "DER")  # trailing data
    fails(V.BadSignature, lambda: check(cert, flip(sig, len(sig) - 1)))
    fails(V.BadSignature, lambda: check(soft.cert_der("gm2_sign"), sig))
    other = soft.sign("gm_company_sign", TEXT.encode("utf-8"), uid=OTHER_ID)
    assert gmalg_verifies(spki_of(cert), TEXT.encode("utf-8"), other, OTHER_ID)
    fails(V.BadSignature, lambda: check(cert, other))
    # a GBK signature is not a UTF-8 one (verify_legacy_signature takes UTF-8 text)
    gbk = soft.sign("gm_company_sign", TEXT.encode("gbk"))
    fails(V.BadSignature, lambda: check(cert, gbk))
    # the encryption certificate of the pair (same subject, another key)
    fails(V.BadSignature, lambda: check(soft.cert_der("gm_company_enc"), sig))


def test_legacy_rsa_unchanged_on_the_same_device(soft: SoftKey) -> None:
    cert = soft.cert_der("gm_rsa_sign")
    sig = soft.sign("gm_rsa_sign", TEXT.encode("utf-8"), SignAlgorithm.RSA_PKCS1_SHA256)
    ident = verify_legacy_signature(
        cert, sig, TEXT, soft.rsa_anchors, intermediates=soft.rsa_intermediates
    )
    assert ident.algorithm == "RS256"
    fails(
        V.BadSignature,
        lambda: verify_legacy_signature(
            cert, sig, TEXT + "!", soft.rsa_anchors, intermediates=soft.rsa_intermediates
        ),
    )


def _openssl(*args: str, stdin: bytes | None = None) -> bytes:
    done = subprocess.run(
        ["openssl", *args], input=stdin, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


@pytest.fixture(scope="module")
def openssl_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SM2 key OpenSSL made (PEM, in a temporary directory; a test key)."""
    path = tmp_path_factory.mktemp("openssl-sm2") / "sm2.key"
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", str(path))
    return path


def openssl_sign(key: Path, message: bytes, uid: bytes = GM_ID) -> bytes:
    """``openssl dgst -sm3 -sign … -sigopt distid:…``: DER SEQUENCE {r, s}."""
    return _openssl(
        "dgst", "-sm3", "-sign", str(key), "-sigopt", f"distid:{uid.decode()}", stdin=message
    )


def openssl_cert(key: Path, issuer: GmCert, cn: str = "沧州市OpenSSL测试有限公司") -> GmCert:
    spki_der = _openssl("pkey", "-in", str(key), "-pubout", "-outform", "DER")
    return issue(cn, issuer, spki=asn1_keys.PublicKeyInfo.load(spki_der))


def test_signatures_made_by_openssl(gm_pki: GmPki, openssl_key: Path) -> None:
    """Neither the signature nor Z comes from certhelper or gmalg: OpenSSL computes both."""
    leaf = openssl_cert(openssl_key, gm_pki.issuing)
    message = TEXT.encode("utf-8")
    sig = openssl_sign(openssl_key, message)

    def check(s: bytes, text: str = TEXT) -> V.Identity:
        return verify_legacy_signature(
            leaf.der, s, text, [gm_pki.root.der], NOW, intermediates=[gm_pki.issuing.der]
        )

    assert check(sig).subject_cn == "沧州市OpenSSL测试有限公司"
    fails(V.BadSignature, lambda: check(sig, TEXT[:-1]))
    # OpenSSL's own default ID is empty (the distid trap): such a signature is refused
    fails(V.BadSignature, lambda: check(_openssl("dgst", "-sm3", "-sign", str(openssl_key),
                                                 stdin=message)))  # fmt: skip
    fails(V.BadSignature, lambda: check(openssl_sign(openssl_key, message, OTHER_ID)))
    # and a login token whose r ‖ s OpenSSL computed
    challenge = new_challenge()
    rs = der_to_rs(openssl_sign(openssl_key, signed_bytes(ORIGIN, challenge)))
    ident = verify_auth_token(
        make_token(leaf.der, rs), challenge, ORIGIN, [gm_pki.root.der], NOW,
        intermediates=[gm_pki.issuing.der],
    )  # fmt: skip
    assert ident.algorithm == "SM2SM3"
    fails(
        V.BadSignature,
        lambda: verify_auth_token(
            make_token(leaf.der, rs), new_challenge(), ORIGIN, [gm_pki.root.der], NOW,
            intermediates=[gm_pki.issuing.der],
        ),
    )  # fmt: skip


# --- CMS SignedData (GM/T 0010) ---------------------------------------------------------


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    size = (
        bytes([n])
        if n < 128
        else bytes([0x80 | ((n.bit_length() + 7) // 8)])
        + n.to_bytes((n.bit_length() + 7) // 8, "big")
    )
    return bytes([tag]) + size + body


def _signer_info(blob: bytes) -> asn1_cms.SignerInfo:
    return asn1_cms.ContentInfo.load(blob)["content"]["signer_infos"][0]


def _edit(blob: bytes, edit: Callable[[asn1_cms.SignedData], None]) -> bytes:
    info = asn1_cms.ContentInfo.load(blob)
    edit(info["content"])
    return asn1_cms.ContentInfo({"content_type": "signed_data", "content": info["content"]}).dump(
        force=True
    )


def test_sm2_cms_from_the_soft_skf_key(soft: SoftKey) -> None:
    cert = soft.cert_der("gm_company_sign")

    def sign(attrs: bytes) -> bytes:
        return soft.sign("gm_company_sign", attrs)

    def check(blob: bytes, content: bytes | None = None) -> V.Identity:
        return verify_cms_signature(blob, content, soft.anchors, intermediates=soft.intermediates)

    attached = build_signed_data(DATA, cert, sign, algorithm=SignAlgorithm.SM2_SM3, detached=False)
    detached = build_signed_data(DATA, cert, sign, algorithm=SignAlgorithm.SM2_SM3)
    # what the SignerInfo carries checks out with OpenSSL and gmalg: SM2 over the DER SET of
    # the signed attributes with the default ID, and messageDigest = SM3(content)
    si = _signer_info(attached)
    signed_set = b"\x31" + si["signed_attrs"].dump()[1:]
    assert verified_both_ways(cert, signed_set, si["signature"].native)
    digest = next(a for a in si["signed_attrs"] if a["type"].native == "message_digest")
    assert digest["values"][0].native == hashlib.new("sm3", DATA).digest()
    assert si["digest_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.401"
    assert si["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"

    for ident in (check(attached), check(attached, DATA), check(detached, DATA)):
        assert (ident.algorithm, ident.subject_cn) == ("SM2SM3", "沧州市测试科技有限公司")
        assert ident.hebca_unique_id == "HB130900000000001"
    # content
    fails(V.BadSignature, lambda: check(detached, DATA + b" "), "messageDigest")
    fails(V.BadSignature, lambda: check(attached, DATA + b" "), "encapsulated content")
    fails(V.UnknownTokenFormat, lambda: check(detached), "detached")
    # the signature: a byte, r ‖ s instead of DER, another ID
    sig = si["signature"].native

    def with_signature(value: bytes) -> bytes:
        return _edit(attached, lambda sd: sd["signer_infos"][0].__setitem__("signature", value))

    fails(V.BadSignature, lambda: check(with_signature(flip(sig, len(sig) - 2))))
    fails(V.BadSignature, lambda: check(with_signature(der_to_rs(sig))), "DER")
    other_id = build_signed_data(
        DATA, cert, lambda a: soft.sign("gm_company_sign", a, uid=OTHER_ID),
        algorithm=SignAlgorithm.SM2_SM3, detached=False,
    )  # fmt: skip
    fails(V.BadSignature, lambda: check(other_id))

    # the algorithms: sm2sign (1.2.156.10197.1.301.1) is accepted; ECDSA/SHA-256 names are not
    def with_alg(field: str, oid: str) -> bytes:
        def edit(sd: asn1_cms.SignedData) -> None:
            sd["signer_infos"][0][field] = {"algorithm": oid}

        return _edit(attached, edit)

    assert check(with_alg("signature_algorithm", "1.2.156.10197.1.301.1")).algorithm == "SM2SM3"
    fails(V.AlgorithmMismatch, lambda: check(with_alg("signature_algorithm", "sha256_ecdsa")))
    fails(V.AlgorithmMismatch, lambda: check(with_alg("signature_algorithm", "sha256_rsa")))
    fails(V.AlgorithmMismatch, lambda: check(with_alg("digest_algorithm", "sha256")))
    fails(V.AlgorithmMismatch, lambda: check(with_alg("digest_algorithm", "sha1")))
    # the certificate swapped (with the sid pointing at it): another key
    other = asn1_x509.Certificate.load(soft.cert_der("gm2_sign"))

    def swap(sd: asn1_cms.SignedData) -> None:
        sd["certificates"] = [asn1_cms.CertificateChoices(name="certificate", value=other)]
        sd["signer_infos"][0]["sid"] = asn1_cms.SignerIdentifier(
            name="issuer_and_serial_number",
            value={"issuer": other.issuer, "serial_number": other.serial_number},
        )

    fails(V.BadSignature, lambda: check(_edit(attached, swap)))
    # the certificate removed: nothing to check against
    fails(
        V.UnknownTokenFormat,
        lambda: check(_edit(attached, lambda sd: sd.__setitem__("certificates", []))),
        "certificate",
    )
    fails(V.UnknownTokenFormat, lambda: check(b"\x30\x03\x02\x01\x01"))
    fails(
        V.UnknownTokenFormat,
        lambda: check(_edit(attached, lambda sd: sd["encap_content_info"].__setitem__(
            "content_type", "1.2.840.113549.1.9.16.1.4"))),  # a TSTInfo is no data
        "signed content type",
    )  # fmt: skip
    # trust: the RSA hierarchy does not vouch for it
    fails(V.UntrustedChain, lambda: verify_cms_signature(attached, None, soft.rsa_anchors))


def test_sm2_cms_gmt_content_type_and_openssl_signature(gm_pki: GmPki, openssl_key: Path) -> None:
    """The SignerInfo's signature by OpenSSL (Z computed there), and the GM/T 0010
    SignedData content type some Chinese stacks write."""
    leaf = openssl_cert(openssl_key, gm_pki.issuing)
    blob = build_signed_data(
        DATA, leaf.der, lambda attrs: openssl_sign(openssl_key, attrs),
        algorithm=SignAlgorithm.SM2_SM3, detached=False,
    )  # fmt: skip
    anchors, inter = [gm_pki.root.der], [gm_pki.issuing.der]
    assert verify_cms_signature(blob, None, anchors, NOW, intermediates=inter).algorithm == "SM2SM3"
    explicit_content = asn1_cms.ContentInfo.load(blob)["content"].dump()  # [0] { SignedData }
    oid = asn1_core.ObjectIdentifier("1.2.156.10197.6.1.4.2.2").dump()
    outer = _tlv(0x30, oid + explicit_content)  # ContentInfo with the GM/T 0010 OID
    assert asn1_cms.ContentInfo.load(blob).dump() != outer
    assert verify_cms_signature(outer, None, anchors, NOW, intermediates=inter).algorithm == (
        "SM2SM3"
    )
    stranger = issue("另一个SM2根证书测试", None, ca=True).der
    fails(V.UntrustedChain, lambda: verify_cms_signature(blob, None, [stranger], NOW))
    fails(V.CertExpired, lambda: verify_cms_signature(outer, None, inter, NOW + 400 * DAY))


def test_cms_certificates_inside_serve_as_intermediates(soft: SoftKey) -> None:
    cert = soft.cert_der("gm_company_sign")
    blob = build_signed_data(
        DATA, cert, lambda a: soft.sign("gm_company_sign", a),
        algorithm=SignAlgorithm.SM2_SM3, detached=False,
    )  # fmt: skip
    fails(V.UntrustedChain, lambda: verify_cms_signature(blob, None, soft.anchors))
    issuing = asn1_x509.Certificate.load(soft.intermediates[0])

    def add(sd: asn1_cms.SignedData) -> None:
        sd["certificates"] = [
            *sd["certificates"],
            asn1_cms.CertificateChoices(name="certificate", value=issuing),
        ]

    assert verify_cms_signature(_edit(blob, add), None, soft.anchors).subject_cn
    # but never as anchors
    fails(V.UntrustedChain, lambda: verify_cms_signature(_edit(blob, add), None, soft.rsa_anchors))


def test_rsa_cms_from_the_same_device(soft: SoftKey) -> None:
    cert = soft.cert_der("gm_rsa_sign")
    blob = build_signed_data(
        DATA, cert,
        lambda a: soft.sign("gm_rsa_sign", a, SignAlgorithm.RSA_PKCS1_SHA256),
        algorithm=SignAlgorithm.RSA_PKCS1_SHA256,
    )  # fmt: skip
    ident = verify_cms_signature(blob, DATA, soft.rsa_anchors, intermediates=soft.rsa_intermediates)
    assert ident.algorithm == "RS256"
    fails(
        V.BadSignature,
        lambda: verify_cms_signature(
            blob, DATA[:-1], soft.rsa_anchors, intermediates=soft.rsa_intermediates
        ),
    )


# --- SM2 certificate chains ----------------------------------------------------------------


def test_fixture_sm2_chain_agrees_with_openssl(soft: SoftKey) -> None:
    root, issuing = soft.anchors[0], soft.intermediates[0]
    leaf = soft.cert_der("gm_company_sign")
    check_chain(leaf, [root], [issuing])
    check_chain(issuing, [root])
    # the issuing CA's certificate signature, checked by OpenSSL over the TBSCertificate
    cert = asn1_x509.Certificate.load(issuing)
    tbs, sig = cert["tbs_certificate"].dump(), cert["signature_value"].native
    assert openssl_verifies(spki_of(root), tbs, sig)
    assert not openssl_verifies(spki_of(root), tbs, sig, OTHER_ID)
    # the serial number changed: OpenSSL and the verifier both refuse the signature
    cert["tbs_certificate"]["serial_number"] = cert.serial_number + 1
    forged = cert.dump(force=True)
    assert not openssl_verifies(spki_of(root), cert["tbs_certificate"].dump(), sig)
    with pytest.raises(V.UntrustedChain) as info:
        check_chain(leaf, [root], [forged])
    assert "bad signature" in (info.value.detail or ""), info.value.detail


def test_own_sm2_chain(gm_pki: GmPki) -> None:
    root, issuing, leaf = gm_pki.root.der, gm_pki.issuing.der, gm_pki.leaf.der
    check_chain(leaf, [root], [issuing], NOW)
    check_chain(leaf, [issuing], [], NOW)  # trusting the issuing CA alone


Chain = tuple[bytes, list[bytes], list[bytes], datetime]  # leaf, anchors, intermediates, now


def _under(issuer: GmCert, root: GmCert, **kw: Any) -> Chain:
    """A leaf issued by ``issuer``, which is offered as the intermediate below ``root``."""
    return issue("链测试", issuer, **kw).der, [root.der], [issuer.der], NOW


def _chain_case(case: str, pki: GmPki, soft: SoftKey) -> Chain:
    root = pki.root
    if case == "expired_intermediate":
        return _under(issue("过期二级CA测试", root, ca=True, days=(-400, -1)), root)
    if case == "future_intermediate":
        return _under(issue("未生效二级CA测试", root, ca=True, days=(1, 400)), root)
    if case == "intermediate_not_ca":
        return _under(issue("非CA二级测试", root, ca=False, usage=CA_USAGE), root)
    if case == "intermediate_no_certsign":
        return _under(issue("无签发用途二级测试", root, ca=True, usage={"crl_sign"}), root)
    if case == "path_length":
        mid = issue("中间CA测试", root, ca=True, path_length=0)
        leaf, anchors, inter, now = _under(issue("三级CA测试", mid, ca=True), root)
        return leaf, anchors, [*inter, mid.der], now
    if case == "forged_issuer":  # the right issuer name, no AKI, signed by another key
        return _under(pki.issuing, root, with_aki=False, signer=GmKey.new())
    if case == "wrong_id":  # the issuer's key, Z from another ID
        return _under(pki.issuing, root, uid=OTHER_ID)
    if case == "tampered_leaf":
        leaf, anchors, inter, now = _under(pki.issuing, root)
        cert = asn1_x509.Certificate.load(leaf)
        cert["tbs_certificate"]["serial_number"] = cert.serial_number + 1
        return cert.dump(force=True), anchors, inter, now
    if case == "wrong_issuer":  # issued by a CA that is not offered
        leaf, anchors, _, now = _under(issue("另一个二级CA测试", root, ca=True), root)
        return leaf, anchors, [pki.issuing.der], now
    if case == "expired_root":
        old_root = issue("过期根CA测试", None, ca=True, days=(-400, -1))
        leaf, _, inter, now = _under(issue("过期根下二级CA", old_root, ca=True), old_root)
        return leaf, [old_root.der], inter, now
    if case == "rsa_issuer":  # an SM2-with-SM3 signature claiming the RSA issuing CA
        fake = GmCert(soft.rsa_intermediates[0], GmKey.new())
        leaf = issue("伪造签发者测试", fake, with_aki=False).der
        return leaf, soft.rsa_anchors, soft.rsa_intermediates, datetime.now(UTC)
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "detail"),
    [
        ("expired_intermediate", "not valid at this time"),
        ("future_intermediate", "not valid at this time"),
        ("intermediate_not_ca", "not a CA"),
        ("intermediate_no_certsign", "keyUsage lacks keyCertSign"),
        ("path_length", "path length 0 exceeded"),
        ("forged_issuer", "bad signature"),
        ("wrong_id", "bad signature"),
        ("tampered_leaf", "bad signature"),
        ("wrong_issuer", "no issuer"),
        ("expired_root", "not valid at this time"),
        ("rsa_issuer", "SM2 signature but the issuer's key is RSA"),
    ],
)
def test_bad_sm2_chains(gm_pki: GmPki, soft: SoftKey, case: str, detail: str) -> None:
    leaf, anchors, inter, now = _chain_case(case, gm_pki, soft)
    with pytest.raises(V.UntrustedChain) as info:
        check_chain(leaf, anchors, inter, now)
    assert detail in (info.value.detail or ""), info.value.detail


def test_sm2_leaf_of_an_expired_intermediate_refuses_a_token(gm_pki: GmPki) -> None:
    old = issue("已过期SM2二级CA测试", gm_pki.root, ca=True, days=(-800, -2))
    leaf = issue("过期二级下的证书", old)
    challenge = new_challenge()
    fails(
        V.UntrustedChain,
        lambda: verify_auth_token(
            own_token(leaf, challenge), challenge, ORIGIN, [gm_pki.root.der], NOW,
            intermediates=[old.der],
        ),
        "not valid at this time",
    )  # fmt: skip
    # a token signed with another ID by a key the test holds
    fails(
        V.BadSignature,
        lambda: verify_auth_token(
            own_token(gm_pki.leaf, challenge, uid=OTHER_ID), challenge, ORIGIN,
            [gm_pki.root.der], NOW, intermediates=[gm_pki.issuing.der],
        ),
    )  # fmt: skip
