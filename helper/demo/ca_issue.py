"""The demo CA's issuing logic: a renewed certificate from a PKCS#10 request.

The rules (a stand-in for what the Hebei CA does on renewal):

* the old certificate must be issued by this CA's issuing certificate (its signature
  verifies with the issuing public key);
* the request's signature must verify with the public key it carries (proof of
  possession), and its subject must be the old certificate's subject, byte for byte;
* the new certificate copies the old subject byte for byte, and the old certificate's
  key usage, extended key usage and HEBCA unique ID (1.2.156.112586.1.4); its subject
  key identifier comes from the new public key, its authority key identifier from
  the issuing CA; serial random; notBefore = now - 5 minutes, notAfter =
  max(old notAfter, now) + 365 days (a year from the old expiry); SHA-256.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding

from helper.csr import subject_der
from helper.domain.renewal import renewed_validity

#: the HEBCA unique ID of a subject, kept across renewals
HEBCA_UNIQUE_ID = x509.ObjectIdentifier("1.2.156.112586.1.4")
MIN_RSA_BITS = 2048
EC_CURVES = (ec.SECP256R1, ec.SECP384R1)

#: extensions of the old certificate that the renewed one carries over (same criticality)
COPIED = (
    x509.oid.ExtensionOID.KEY_USAGE,
    x509.oid.ExtensionOID.EXTENDED_KEY_USAGE,
    HEBCA_UNIQUE_ID,
)


class IssueError(ValueError):
    """A request the CA refuses; ``code`` for programs, ``message`` Chinese + English."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def load_certificate(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise IssueError("bad_certificate", "证书数据无法解析 (not a DER certificate)") from None


def load_request(der: bytes) -> x509.CertificateSigningRequest:
    try:
        return x509.load_der_x509_csr(der)
    except ValueError:
        raise IssueError(
            "bad_csr", "证书请求无法解析，不是 PKCS#10 格式 (not a DER PKCS#10 request)"
        ) from None


def issued_by(cert: x509.Certificate, issuing: x509.Certificate) -> bool:
    """Whether ``issuing`` signed ``cert`` (issuer name and signature)."""
    try:
        cert.verify_directly_issued_by(issuing)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def certificate_subject_der(cert: x509.Certificate) -> bytes:
    """The subject Name exactly as encoded in the certificate."""
    return subject_der(cert.public_bytes(Encoding.DER))


def request_subject_der(request: x509.CertificateSigningRequest) -> bytes:
    """The subject Name exactly as encoded in the request."""
    parsed = asn1_csr.CertificationRequest.load(request.public_bytes(Encoding.DER))
    return bytes(parsed["certification_request_info"]["subject"].dump())


def _check_key(request: x509.CertificateSigningRequest) -> None:
    try:
        key = request.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise IssueError("bad_key", "证书请求中的公钥无法解析 (unreadable public key)") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise IssueError(
                "weak_key", f"RSA 密钥太短，至少 {MIN_RSA_BITS} 位 (RSA key shorter than 2048 bits)"
            )
        return
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, EC_CURVES):
        return
    raise IssueError(
        "unsupported_key",
        "不支持的密钥类型，只支持 RSA 与 ECC P-256/P-384 (unsupported key type)",
    )


def check_request(
    old: x509.Certificate,
    request: x509.CertificateSigningRequest,
    issuing: x509.Certificate,
) -> None:
    """Raise :class:`IssueError` unless ``request`` may renew ``old`` at this CA."""
    if not issued_by(old, issuing):
        raise IssueError(
            "not_our_certificate", "该证书不是本CA签发的，不能在此延期 (not issued by this CA)"
        )
    try:
        valid = request.is_signature_valid
    except (ValueError, UnsupportedAlgorithm):
        valid = False
    if not valid:
        raise IssueError(
            "bad_csr_signature",
            "证书请求的签名无效，无法证明持有私钥 (the request's signature does not verify)",
        )
    _check_key(request)
    if request_subject_der(request) != certificate_subject_der(old):
        raise IssueError(
            "subject_mismatch",
            "证书请求的使用者与原证书不一致 (the request's subject differs from the certificate's)",
        )


def _aki(issuing: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuing.public_key()  # type: ignore[arg-type]
        )
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


@dataclass(frozen=True)
class Renewal:
    certificate: x509.Certificate
    same_key: bool  # the request kept the old certificate's key pair


def issue_renewal(
    old: x509.Certificate,
    request: x509.CertificateSigningRequest,
    issuing: x509.Certificate,
    issuing_key: CertificateIssuerPrivateKeyTypes,
    now: datetime,
) -> Renewal:
    """Check ``request`` (:func:`check_request`) and issue the renewed certificate."""
    check_request(old, request, issuing)
    public_key = request.public_key()
    not_before, not_after = renewed_validity(old.not_valid_after_utc, now)
    builder = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(issuing.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    for oid in COPIED:
        try:
            ext = old.extensions.get_extension_for_oid(oid)
        except x509.ExtensionNotFound:
            continue
        builder = builder.add_extension(ext.value, critical=ext.critical)
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(public_key),
        critical=False,
    ).add_extension(_aki(issuing), critical=False)
    cert = builder.sign(issuing_key, hashes.SHA256())
    if certificate_subject_der(cert) != certificate_subject_der(old):  # never seen; be sure
        raise IssueError("subject_encoding", "无法原样复制证书使用者 (subject not reproducible)")
    return Renewal(cert, same_key=public_key == old.public_key())
