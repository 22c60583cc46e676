"""The signer's certificate and signature: load the leaf, check the signature with the
algorithm it names (the one place an algorithm is dispatched), then validity, chain
and key usage — the same for a login token, a legacy signature and a CMS SignedData.

SM2 keys (which ``cryptography`` cannot load) are checked with :func:`drivers.sm2.verify`
(gmalg) over ``e = SM3(Z ‖ M)``, Z from the default ID ``1234567812345678``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from drivers import sm2
from helper.domain.certificate import CertificateModel
from helper.errors import CertificateUnreadable, SigningUnsupported
from helper.verify.chain import check_chain_of, extension
from helper.verify.errors import (
    AlgorithmMismatch,
    BadSignature,
    CertExpired,
    CertNotYetValid,
    UnknownTokenFormat,
    WrongKeyUsage,
)
from helper.verify.inputs import check_now, key_usage_wanted, load_certs

#: JWS name -> (key type, curve or None, hash)
ALGORITHMS: dict[str, tuple[str, str | None, type[hashes.HashAlgorithm]]] = {
    "RS256": ("RSA", None, hashes.SHA256),
    "ES256": ("EC", "secp256r1", hashes.SHA256),
    "ES384": ("EC", "secp384r1", hashes.SHA384),
    "SM2SM3": ("SM2", "sm2p256v1", hashes.SM3),
}
#: a leaf passes when its keyUsage holds ANY of these (or has no keyUsage extension)
DEFAULT_KEY_USAGE = ("digital_signature", "non_repudiation")


@dataclass(frozen=True)
class Identity:
    """Who signed in: the verified leaf certificate's identity."""

    subject: tuple[tuple[str, str], ...]
    subject_cn: str
    subject_dn: str
    serial_hex: str
    hebca_unique_id: str | None
    sha256: str
    not_after: datetime
    issuer_dn: str
    certificate_der: bytes = field(repr=False)
    algorithm: str
    origin: str


@dataclass(frozen=True)
class TrustSettings:
    """What the backend trusts, checked once per call."""

    now: datetime
    anchors: list[x509.Certificate]
    intermediates: list[x509.Certificate]
    key_usage: frozenset[str]

    @classmethod
    def of(
        cls,
        trust_anchors: Sequence[bytes | x509.Certificate],
        now: datetime | None,
        intermediates: Sequence[bytes | x509.Certificate],
        required_key_usage: Sequence[str],
    ) -> TrustSettings:
        when = check_now(now)
        anchors = load_certs(trust_anchors, "trust_anchors")
        if not anchors:
            raise ValueError("no trust anchors given")
        return cls(
            when,
            anchors,
            load_certs(intermediates, "intermediates"),
            key_usage_wanted(required_key_usage),
        )


def load_leaf(der: bytes) -> tuple[CertificateModel, x509.Certificate]:
    try:
        model = CertificateModel.from_der(der)
    except CertificateUnreadable as exc:
        raise UnknownTokenFormat(detail=f"certificate: {exc.detail}") from None
    if der[len(model.der) :].strip(b"\0"):  # zero padding (seen in CKA_VALUE) is tolerated
        raise UnknownTokenFormat(detail="data after the certificate")
    try:
        cert = x509.load_der_x509_certificate(model.der)
        cert.subject, cert.issuer  # noqa: B018  (parsed lazily: fail here, not later)
    except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is no ValueError
        raise UnknownTokenFormat(detail=f"certificate: {exc}") from None
    return model, cert


@dataclass(frozen=True)
class Sm2PublicKey:
    """An SM2 public key (``cryptography`` has none): the point from the certificate."""

    x: int
    y: int

    @classmethod
    def of(cls, model: CertificateModel) -> Sm2PublicKey:
        try:
            return cls(*sm2.point_from_spki(model.spki_der))
        except ValueError as exc:  # a point off the curve: nothing can verify with it
            raise BadSignature(detail=f"SM2 public key: {exc}") from None

    def verify(self, message: bytes, r: int, s: int, uid: bytes = sm2.DEFAULT_ID) -> bool:
        return sm2.verify((self.x, self.y), message, r, s, uid)


VerifyingKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | Sm2PublicKey


def signing_key(model: CertificateModel) -> VerifyingKey:
    """The certificate's public key, SM2 included; AlgorithmMismatch for other types."""
    if model.key_type == "SM2":
        return Sm2PublicKey.of(model)
    try:
        key = model.public_key()
    except SigningUnsupported as exc:
        raise AlgorithmMismatch(detail=exc.detail) from None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise AlgorithmMismatch(detail=f"unsupported key {type(key).__name__}")
    return key


def public_key(model: CertificateModel, algorithm: str) -> VerifyingKey:
    """The key for ``algorithm`` (a name of :data:`ALGORITHMS`), which must fit it."""
    spec = ALGORITHMS.get(algorithm)
    if spec is None:
        raise AlgorithmMismatch(detail=f"algorithm {algorithm[:20]!r} is not accepted")
    key_type, curve, _ = spec
    if model.key_type != key_type or (curve is not None and model.curve != curve):
        have = f"{model.key_type} {model.curve or ''}".strip()
        raise AlgorithmMismatch(detail=f"{algorithm} does not fit the certificate's {have} key")
    return signing_key(model)


def check_signature(key: VerifyingKey, algorithm: str, signature: bytes, data: bytes) -> None:
    """``signature`` in the token's encoding: PKCS#1 v1.5 for RSA, ``r || s`` (fixed
    length) for ECDSA and SM2."""
    if isinstance(key, Sm2PublicKey):
        try:
            r, s = sm2.signature_from_raw(signature)
        except ValueError:
            raise BadSignature(detail="SM2 signature must be r||s, 64 bytes") from None
        if not key.verify(data, r, s):
            raise BadSignature
        return
    hash_alg = ALGORITHMS[algorithm][2]()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hash_alg)
            return
        size = (key.curve.key_size + 7) // 8
        if len(signature) != 2 * size:
            raise BadSignature(detail=f"ECDSA signature must be r||s, {2 * size} bytes")
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hash_alg))
    except InvalidSignature:
        raise BadSignature from None


def check_der_signature(
    key: VerifyingKey, hash_alg: hashes.HashAlgorithm | None, signature: bytes, data: bytes
) -> None:
    """``signature`` as X.509, CMS and HEBCA ``SignText`` carry it: PKCS#1 v1.5 for RSA,
    DER ``SEQUENCE {r, s}`` for ECDSA and SM2 (SM2 always hashes with SM3 after Z;
    ``hash_alg`` is for RSA and ECDSA)."""
    if isinstance(key, Sm2PublicKey):
        try:
            r, s = sm2.signature_from_der(signature, strict=True)
        except (ValueError, TypeError):
            raise BadSignature(detail="SM2 signature must be DER SEQUENCE {r, s}") from None
        if not key.verify(data, r, s):
            raise BadSignature
        return
    if hash_alg is None:
        raise AlgorithmMismatch(detail="no hash algorithm for an RSA or ECDSA signature")
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hash_alg)
        else:
            key.verify(signature, data, ec.ECDSA(hash_alg))
    except (InvalidSignature, ValueError):
        raise BadSignature from None


def _check_leaf_validity(model: CertificateModel, now: datetime) -> None:
    if now < model.not_before:
        raise CertNotYetValid(detail=f"valid from {model.not_before.isoformat()}")
    if now > model.not_after:
        raise CertExpired(detail=f"expired {model.not_after.isoformat()}")


def _check_key_usage(
    model: CertificateModel, cert: x509.Certificate, wanted: frozenset[str]
) -> None:
    if not wanted or extension(cert, x509.KeyUsage) is None:  # no keyUsage: unrestricted (RFC 5280)
        return
    if wanted.isdisjoint(model.key_usage):
        have, need = ", ".join(model.key_usage), ", ".join(sorted(wanted))
        raise WrongKeyUsage(detail=f"key usage {have}; needs one of {need}")


def check_signer(model: CertificateModel, cert: x509.Certificate, trust: TrustSettings) -> None:
    """The leaf is valid now, chains to a trusted anchor, and may sign."""
    _check_leaf_validity(model, trust.now)
    check_chain_of(cert, trust.anchors, trust.intermediates, trust.now)
    _check_key_usage(model, cert, trust.key_usage)


def identity(model: CertificateModel, algorithm: str, origin: str) -> Identity:
    return Identity(
        subject=tuple(model.subject),
        subject_cn=model.subject_cn,
        subject_dn=model.subject_dn,
        serial_hex=model.serial_hex,
        hebca_unique_id=model.hebca_unique_id,
        sha256=model.sha256,
        not_after=model.not_after,
        issuer_dn=model.issuer_dn,
        certificate_der=model.der,
        algorithm=algorithm,
        origin=origin,
    )
