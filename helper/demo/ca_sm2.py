"""The demo CA's SM2 side: renewal requests signed with SM2 and renewed certificates
signed SM2-with-SM3 (GM/T 0015, OID 1.2.156.10197.1.501) by the SM2 issuing CA.

``cryptography`` can neither load SM2 keys nor check SM2 signatures, so this path uses
asn1crypto for the structures and gmalg for SM2 (Z with the default ID
``1234567812345678``). The rules are ca_issue.py's: the old certificate is this CA's,
the request proves possession of its key and names the old subject byte for byte, the new
certificate copies subject, key usage, extended key usage and the HEBCA unique ID, and runs
a year from the old expiry.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import gmalg
from asn1crypto import algos as asn1_algos
from asn1crypto import core as asn1_core
from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509

from drivers import sm2
from helper.demo.ca_issue import IssueError
from helper.domain.renewal import renewed_validity

DEFAULT_ID = sm2.DEFAULT_ID
SM2_CURVE = sm2.CURVE_OID
SM2_WITH_SM3 = sm2.SM2_WITH_SM3_OID
HEBCA_UNIQUE_ID = "1.2.156.112586.1.4"
#: extensions of the old certificate that the renewed one carries over (same criticality)
COPIED = frozenset({"key_usage", "extended_key_usage", HEBCA_UNIQUE_ID})


class _EcPrivateKey(asn1_core.Sequence):
    """RFC 5915 ECPrivateKey, read without registering the SM2 curve in asn1crypto."""

    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("version", asn1_core.Integer),
        ("private_key", asn1_core.OctetString),
        ("parameters", asn1_core.Any, {"explicit": 0, "optional": True}),
        ("public_key", asn1_core.Any, {"explicit": 1, "optional": True}),
    ]


class _PrivateKeyInfo(asn1_core.Sequence):
    _fields = [  # noqa: RUF012
        ("version", asn1_core.Integer),
        ("private_key_algorithm", asn1_keys.PrivateKeyAlgorithm),
        ("private_key", asn1_core.OctetString),
    ]


def load_sm2_private_key(data: bytes) -> int:
    """The secret scalar of a PKCS#8 SM2 key (PEM or DER, unencrypted)."""
    if asn1_pem.detect(data):
        _, _, data = asn1_pem.unarmor(data)
    info = _PrivateKeyInfo.load(data)
    algorithm = info["private_key_algorithm"]
    if algorithm["algorithm"].native != "ec" or algorithm["parameters"].chosen.dotted != SM2_CURVE:
        raise ValueError("not an SM2 private key")
    inner = _EcPrivateKey.load(info["private_key"].native)
    d = int.from_bytes(bytes(inner["private_key"]), "big")
    if not 0 < d < sm2.N:
        raise ValueError("not an SM2 private key")
    return d


def spki_point(spki: asn1_keys.PublicKeyInfo) -> bytes | None:
    """``04‖x‖y`` of an SM2 SubjectPublicKeyInfo (id-ecPublicKey, SM2 curve), else None."""
    algorithm = spki["algorithm"]
    if algorithm["algorithm"].native != "ec":
        return None
    params = algorithm["parameters"]
    if params.name != "named" or params.chosen.dotted != SM2_CURVE:
        return None
    point = bytes(spki["public_key"])
    return point if len(point) == 65 and point[0] == 4 else None


def is_sm2_certificate(der: bytes) -> bool:
    try:
        cert = asn1_x509.Certificate.load(der)
        return spki_point(cert["tbs_certificate"]["subject_public_key_info"]) is not None
    except (ValueError, TypeError, KeyError):
        return False


def sm2_verifies(point: bytes, message: bytes, signature_der: bytes) -> bool:
    """SM2 with SM3 over ``message``, Z from ``point`` and the default ID (gmalg)."""
    try:
        parsed = asn1_algos.DSASignature.load(signature_der)
        r, s = int(parsed["r"].native), int(parsed["s"].native)
        if parsed.dump() != signature_der or not (0 < r < 2**256 and 0 < s < 2**256):
            return False
        verifier = gmalg.SM2(pk=point, uid=DEFAULT_ID)
        return bool(verifier.verify(message, r.to_bytes(32, "big"), s.to_bytes(32, "big")))
    except (ValueError, TypeError, ArithmeticError):
        return False


@dataclass(frozen=True)
class Sm2Issuer:
    """The SM2 issuing CA: its certificate (DER) and private key."""

    der: bytes
    d: int

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> Sm2Issuer:
        data = cert_path.read_bytes()
        if asn1_pem.detect(data):
            _, _, data = asn1_pem.unarmor(data)
        issuer = cls(data, load_sm2_private_key(key_path.read_bytes()))
        if not is_sm2_certificate(data):
            raise ValueError(f"{cert_path}: not an SM2 certificate")
        return issuer

    def __repr__(self) -> str:  # never the key
        return f"Sm2Issuer({hashlib.sha256(self.der).hexdigest()[:16]})"

    @property
    def certificate(self) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(self.der)

    @property
    def point(self) -> bytes:
        point = spki_point(self.certificate["tbs_certificate"]["subject_public_key_info"])
        assert point is not None
        return point

    @property
    def key_identifier(self) -> bytes:
        ski = self.certificate.key_identifier
        return ski if ski else hashlib.sha1(self.point).digest()

    def sign(self, message: bytes) -> bytes:
        """SM2 with SM3, default ID: DER ``SEQUENCE{r, s}``."""
        signer = gmalg.SM2(sk=self.d.to_bytes(32, "big"), uid=DEFAULT_ID, pk=self.point)
        r, s = signer.sign(message)
        return asn1_algos.DSASignature(
            {"r": int.from_bytes(r, "big"), "s": int.from_bytes(s, "big")}
        ).dump()

    def issued(self, der: bytes) -> bool:
        """Whether this CA signed ``der`` (issuer name, SM2-with-SM3 signature)."""
        try:
            cert = asn1_x509.Certificate.load(der)
            tbs = cert["tbs_certificate"]
            if cert["signature_algorithm"]["algorithm"].dotted != SM2_WITH_SM3:
                return False
            if tbs["issuer"] != self.certificate["tbs_certificate"]["subject"]:
                return False
            return sm2_verifies(self.point, tbs.dump(), bytes(cert["signature_value"]))
        except (ValueError, TypeError, KeyError):
            return False


def load_sm2_request(der: bytes) -> asn1_csr.CertificationRequest:
    try:
        request = asn1_csr.CertificationRequest.load(der)
        request.native  # noqa: B018 - parses it fully or raises
    except (ValueError, TypeError):
        raise IssueError(
            "bad_csr", "证书请求无法解析，不是 PKCS#10 格式 (not a DER PKCS#10 request)"
        ) from None
    return request


def check_sm2_request(old_der: bytes, request: asn1_csr.CertificationRequest) -> bytes:
    """The SM2 point the request carries, after its checks (:class:`IssueError`)."""
    info = request["certification_request_info"]
    point = spki_point(info["subject_pk_info"])
    if point is None:
        raise IssueError(
            "unsupported_key",
            "国密证书的延期请求必须使用 SM2 密钥 (an SM2 certificate is renewed with an SM2 key)",
        )
    algorithm = request["signature_algorithm"]["algorithm"].dotted
    if algorithm != SM2_WITH_SM3 or not sm2_verifies(
        point, info.dump(), bytes(request["signature"])
    ):
        raise IssueError(
            "bad_csr_signature",
            "证书请求的签名无效，无法证明持有私钥 (the request's signature does not verify)",
        )
    old = asn1_x509.Certificate.load(old_der)["tbs_certificate"]
    if info["subject"].dump() != old["subject"].dump():
        raise IssueError(
            "subject_mismatch",
            "证书请求的使用者与原证书不一致 (the request's subject differs from the certificate's)",
        )
    return point


def _time(moment: datetime) -> asn1_x509.Time:
    if moment.year < 2050:  # RFC 5280: UTCTime until 2049
        return asn1_x509.Time({"utc_time": moment})
    return asn1_x509.Time({"general_time": moment})


def _extension(extn_id: str, value: Any, critical: bool = False) -> asn1_x509.Extension:
    return asn1_x509.Extension({"extn_id": extn_id, "critical": critical, "extn_value": value})


@dataclass(frozen=True)
class Sm2Renewal:
    der: bytes
    same_key: bool


def issue_sm2_renewal(
    old_der: bytes, request_der: bytes, issuer: Sm2Issuer, now: datetime
) -> Sm2Renewal:
    """Check the request against ``old_der`` and issue the renewed SM2 certificate."""
    if not issuer.issued(old_der):
        raise IssueError(
            "not_our_certificate", "该证书不是本CA签发的，不能在此延期 (not issued by this CA)"
        )
    request = load_sm2_request(request_der)
    check_sm2_request(old_der, request)
    spki = request["certification_request_info"]["subject_pk_info"].dump()
    return sm2_renewed_certificate(old_der, spki, issuer, now)


def sm2_renewed_certificate(
    old_der: bytes, spki_der: bytes, issuer: Sm2Issuer, now: datetime
) -> Sm2Renewal:
    """The renewed certificate of ``old_der`` for the SM2 key ``spki_der`` (checked by the
    caller: a verified request, or HEBCA ``GenKeyPair``'s public key)."""
    spki = asn1_keys.PublicKeyInfo.load(spki_der)
    point = spki_point(spki)
    if point is None:
        raise IssueError("unsupported_key", "不是 SM2 公钥 (not an SM2 public key)")
    old = asn1_x509.Certificate.load(old_der)
    old_tbs = old["tbs_certificate"]
    not_before, not_after = renewed_validity(old_tbs["validity"]["not_after"].native, now)
    extensions = [_extension("basic_constraints", {"ca": False}, critical=True)]
    for ext in old_tbs["extensions"]:
        if ext["extn_id"].native in COPIED or ext["extn_id"].dotted in COPIED:
            extensions.append(ext.copy())
    extensions += [
        _extension("key_identifier", hashlib.sha1(point).digest()),
        _extension("authority_key_identifier", {"key_identifier": issuer.key_identifier}),
    ]
    tbs = asn1_x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": secrets.randbits(127) | 1 << 126,
            "signature": {"algorithm": SM2_WITH_SM3},
            "issuer": issuer.certificate["tbs_certificate"]["subject"].copy(),
            "validity": {"not_before": _time(not_before), "not_after": _time(not_after)},
            "subject": old_tbs["subject"].copy(),
            "subject_public_key_info": spki,
            "extensions": extensions,
        }
    )
    der = asn1_x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": {"algorithm": SM2_WITH_SM3},
            "signature_value": issuer.sign(tbs.dump()),
        }
    ).dump()
    new_subject = asn1_x509.Certificate.load(der)["tbs_certificate"]["subject"].dump()
    if new_subject != old_tbs["subject"].dump():  # never seen; be sure
        raise IssueError("subject_encoding", "无法原样复制证书使用者 (subject not reproducible)")
    old_point = spki_point(old_tbs["subject_public_key_info"])
    return Sm2Renewal(der, same_key=old_point == point)
