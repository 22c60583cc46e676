"""Verify a certhelper login token: the check a hall backend runs (docs/verifier.md).

Pure Python on ``cryptography`` and ``asn1crypto``; needs no daemon, no USB key and
no network. The token format is ``auth.authenticate`` in docs/bridge-protocol.md.

Chain validation is a small path builder of our own rather than
``cryptography.x509.verification``: its client verifier applies Web-PKI (CA/B Forum)
rules and refuses every certificate of the fixture PKI ("missing required extension"
subjectAltName; Chinese CA leaves have none), relaxing that needs ``ExtensionPolicy``
(cryptography >= 45, the project supports >= 42), and its single ``VerificationError``
cannot tell an expired issuer from an unknown one. The builder here checks, for each
issuer: name chaining, the signature, basicConstraints CA, path length, keyCertSign,
validity at ``now``, SHA-1/MD5 signatures refused, and unknown critical extensions
refused. It does not check revocation, name constraints or certificate policies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtensionOID

from drivers.errors import CertHelperError, register
from helper.domain.certificate import KEY_USAGE_NAMES, CertificateModel
from helper.errors import CertificateUnreadable, SigningUnsupported

__all__ = [
    "ALGORITHMS",
    "DEFAULT_KEY_USAGE",
    "TOKEN_FORMAT",
    "AlgorithmMismatch",
    "BadSignature",
    "CertExpired",
    "CertNotYetValid",
    "ChallengeInvalid",
    "Identity",
    "OriginMismatch",
    "UnknownTokenFormat",
    "UntrustedChain",
    "VerifyError",
    "WrongKeyUsage",
    "check_chain",
    "new_challenge",
    "signed_bytes",
    "verify_auth_token",
]

TOKEN_FORMAT = "certhelper-auth:1"
#: JWS name -> (key type, curve or None, hash)
ALGORITHMS: dict[str, tuple[str, str | None, type[hashes.HashAlgorithm]]] = {
    "RS256": ("RSA", None, hashes.SHA256),
    "ES256": ("EC", "secp256r1", hashes.SHA256),
    "ES384": ("EC", "secp384r1", hashes.SHA384),
}
#: a leaf passes when its keyUsage holds ANY of these (or has no keyUsage extension)
DEFAULT_KEY_USAGE = ("digital_signature", "non_repudiation")
MIN_CHALLENGE_BYTES = 32
MAX_CHALLENGE_CHARS = 1024
MAX_TOKEN_CHARS = 64 * 1024
MAX_CHAIN_LENGTH = 8

_KEY_USAGE_NAMES = frozenset(KEY_USAGE_NAMES)
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_STRING_FIELDS = ("format", "certificate", "algorithm", "signature", "origin", "app_version")
_WEAK_HASHES = (hashes.MD5, hashes.SHA1)
#: critical extensions this module understands (or that cannot make a path invalid)
_HANDLED_CRITICAL = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.CERTIFICATE_POLICIES,
    }
)


# --- errors ------------------------------------------------------------------


@register
class VerifyError(CertHelperError):
    """Base of every verifier error; catch it to refuse any bad token."""

    code = "verify_failed"
    message_zh = "登录凭证验证失败"
    message_en = "The login token could not be verified"
    exit_code = 7


@register
class UnknownTokenFormat(VerifyError):
    code = "verify_unknown_format"
    message_zh = "登录凭证格式无法识别"
    message_en = "The login token's format is not recognised"


@register
class OriginMismatch(VerifyError):
    code = "verify_origin_mismatch"
    message_zh = "登录凭证不是为本网站生成的"
    message_en = "The login token was made for another site"


@register
class BadSignature(VerifyError):
    code = "verify_bad_signature"
    message_zh = "登录凭证的签名无效"
    message_en = "The login token's signature is invalid"


@register
class AlgorithmMismatch(VerifyError):
    code = "verify_algorithm_mismatch"
    message_zh = "签名算法与证书密钥不符或不被接受"
    message_en = "The signature algorithm does not fit the certificate's key or is not accepted"


@register
class CertExpired(VerifyError):
    code = "verify_cert_expired"
    message_zh = "证书已过期，请到 CA 办事处更新证书"
    message_en = "The certificate has expired; renew it at the CA office"


@register
class CertNotYetValid(VerifyError):
    code = "verify_cert_not_yet_valid"
    message_zh = "证书尚未生效（请检查电脑时间）"
    message_en = "The certificate is not valid yet (check the computer's clock)"


@register
class UntrustedChain(VerifyError):
    code = "verify_untrusted_chain"
    message_zh = "证书不是由受信任的 CA 签发的"
    message_en = "The certificate was not issued by a trusted CA"


@register
class WrongKeyUsage(VerifyError):
    code = "verify_wrong_key_usage"
    message_zh = "该证书不能用于签名登录（可能是加密证书）"
    message_en = "This certificate may not be used to sign in (an encryption certificate?)"


@register
class ChallengeInvalid(VerifyError):
    code = "verify_challenge_invalid"
    message_zh = "挑战值无效"
    message_en = "The challenge is invalid"


# --- results -----------------------------------------------------------------


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
class _Token:
    cert_der: bytes
    algorithm: str
    signature: bytes
    origin: str


# --- public helpers ----------------------------------------------------------


def new_challenge(nbytes: int = MIN_CHALLENGE_BYTES) -> str:
    """A fresh random challenge: base64url of ``nbytes`` random bytes, no padding."""
    max_bytes = MAX_CHALLENGE_CHARS * 3 // 4
    if not MIN_CHALLENGE_BYTES <= nbytes <= max_bytes:
        raise ValueError(f"nbytes must be {MIN_CHALLENGE_BYTES}..{max_bytes}")
    return base64.urlsafe_b64encode(secrets.token_bytes(nbytes)).rstrip(b"=").decode("ascii")


def signed_bytes(origin: str, challenge: str) -> bytes:
    """SHA-256(origin as UTF-8) || SHA-256(challenge as ASCII): what the key signs."""
    return (
        hashlib.sha256(origin.encode("utf-8")).digest()
        + hashlib.sha256(challenge.encode("ascii")).digest()
    )


# --- argument checks ---------------------------------------------------------


def _check_now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if not isinstance(now, datetime):
        raise TypeError("now must be a datetime")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _load_certs(items: Iterable[bytes | x509.Certificate], what: str) -> list[x509.Certificate]:
    """Certificates from objects, DER or PEM bytes (a PEM may hold several)."""
    out: list[x509.Certificate] = []
    for item in items:
        if isinstance(item, x509.Certificate):
            out.append(item)
            continue
        if not isinstance(item, bytes | bytearray | memoryview):
            raise TypeError(f"{what}: expected bytes or x509.Certificate, got {type(item)}")
        data = bytes(item)
        try:
            if b"-----BEGIN" in data:
                out.extend(x509.load_pem_x509_certificates(data))
            else:
                out.append(x509.load_der_x509_certificate(data))
        except ValueError as exc:
            raise ValueError(f"{what}: not a certificate: {exc}") from exc
    return out


def _key_usage_wanted(required: Sequence[str]) -> frozenset[str]:
    if isinstance(required, str):
        raise TypeError("required_key_usage must be a sequence of names, not a string")
    unknown = set(required) - _KEY_USAGE_NAMES
    if unknown:
        raise ValueError(f"unknown key usage names: {sorted(unknown)}")
    return frozenset(required)


def _check_challenge(challenge: Any) -> None:
    if not isinstance(challenge, str):
        raise ChallengeInvalid(detail="the challenge must be a string")
    if len(challenge) > MAX_CHALLENGE_CHARS or not _BASE64URL.fullmatch(challenge):
        raise ChallengeInvalid(detail="not base64url")
    text = challenge.rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ChallengeInvalid(detail="not base64url") from None
    if len(raw) < MIN_CHALLENGE_BYTES:
        raise ChallengeInvalid(detail=f"{len(raw)} bytes, at least {MIN_CHALLENGE_BYTES} needed")


# --- token parsing -----------------------------------------------------------


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise UnknownTokenFormat(detail=f"duplicate field {key!r}")
        out[key] = value
    return out


def _token_dict(token: Any) -> dict[str, Any]:
    if isinstance(token, bytes | bytearray):
        try:
            token = bytes(token).decode("utf-8")
        except UnicodeDecodeError:
            raise UnknownTokenFormat(detail="not UTF-8") from None
    if isinstance(token, str):
        if len(token) > MAX_TOKEN_CHARS:
            raise UnknownTokenFormat(detail="too long")
        try:
            token = json.loads(token, object_pairs_hook=_no_duplicate_keys)
        except ValueError:  # json.JSONDecodeError is a ValueError
            raise UnknownTokenFormat(detail="not JSON") from None
    if not isinstance(token, dict):
        raise UnknownTokenFormat(detail="not a JSON object")
    return token


def _b64(value: str, name: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise UnknownTokenFormat(detail=f"{name!r} is not base64") from None
    if not raw:
        raise UnknownTokenFormat(detail=f"{name!r} is empty")
    return raw


def _parse_token(token: Any) -> _Token:
    data = _token_dict(token)
    for name in _STRING_FIELDS:
        if not isinstance(data.get(name), str):
            raise UnknownTokenFormat(detail=f"{name!r} missing or not a string")
    if data["format"] != TOKEN_FORMAT:
        raise UnknownTokenFormat(detail=f"format {data['format'][:40]!r}")
    return _Token(
        cert_der=_b64(data["certificate"], "certificate"),
        algorithm=data["algorithm"],
        signature=_b64(data["signature"], "signature"),
        origin=data["origin"],
    )


def _load_leaf(der: bytes) -> tuple[CertificateModel, x509.Certificate]:
    try:
        model = CertificateModel.from_der(der)
    except CertificateUnreadable as exc:
        raise UnknownTokenFormat(detail=f"certificate: {exc.detail}") from None
    if der[len(model.der) :].strip(b"\0"):  # zero padding (seen in CKA_VALUE) is tolerated
        raise UnknownTokenFormat(detail="data after the certificate")
    try:
        cert = x509.load_der_x509_certificate(model.der)
        cert.subject, cert.issuer  # noqa: B018  (parsed lazily: fail here, not later)
    except ValueError as exc:
        raise UnknownTokenFormat(detail=f"certificate: {exc}") from None
    return model, cert


# --- signature ---------------------------------------------------------------


def _public_key(
    model: CertificateModel, algorithm: str
) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    spec = ALGORITHMS.get(algorithm)
    if spec is None:
        raise AlgorithmMismatch(detail=f"algorithm {algorithm[:20]!r} is not accepted")
    key_type, curve, _ = spec
    if model.key_type != key_type or (curve is not None and model.curve != curve):
        have = f"{model.key_type} {model.curve or ''}".strip()
        raise AlgorithmMismatch(detail=f"{algorithm} does not fit the certificate's {have} key")
    try:
        key = model.public_key()
    except SigningUnsupported as exc:
        raise AlgorithmMismatch(detail=exc.detail) from None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise AlgorithmMismatch(detail=f"{algorithm} does not fit {type(key).__name__}")
    return key


def _check_signature(
    key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, algorithm: str, signature: bytes, data: bytes
) -> None:
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


# --- validity and key usage --------------------------------------------------


def _check_leaf_validity(model: CertificateModel, now: datetime) -> None:
    if now < model.not_before:
        raise CertNotYetValid(detail=f"valid from {model.not_before.isoformat()}")
    if now > model.not_after:
        raise CertExpired(detail=f"expired {model.not_after.isoformat()}")


def _check_key_usage(
    model: CertificateModel, cert: x509.Certificate, wanted: frozenset[str]
) -> None:
    if not wanted or _ext(cert, x509.KeyUsage) is None:  # no keyUsage: unrestricted (RFC 5280)
        return
    if wanted.isdisjoint(model.key_usage):
        have, need = ", ".join(model.key_usage), ", ".join(sorted(wanted))
        raise WrongKeyUsage(detail=f"key usage {have}; needs one of {need}")


# --- chain building ----------------------------------------------------------


def _dn(name: x509.Name) -> str:
    try:
        return name.rfc4514_string()
    except ValueError:
        return "<unprintable name>"


def _ext(cert: x509.Certificate, ext_type: type[x509.ExtensionType]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(ext_type).value
    except x509.ExtensionNotFound:
        return None


def _cert_problem(cert: x509.Certificate, now: datetime) -> str | None:
    """Why ``cert`` is unusable in any path (validity, extensions), or None."""
    if now < cert.not_valid_before_utc or now > cert.not_valid_after_utc:
        return "not valid at this time"
    try:
        exts = cert.extensions
    except ValueError as exc:
        return f"malformed extensions ({exc})"
    for ext in exts:
        if ext.critical and ext.oid not in _HANDLED_CRITICAL:
            return f"unsupported critical extension {ext.oid.dotted_string}"
    return None


def _issuer_problem(issuer: x509.Certificate, depth: int) -> str | None:
    """Why ``issuer`` may not issue a certificate ``depth`` CAs below it, or None."""
    bc = _ext(issuer, x509.BasicConstraints)
    if bc is None or not bc.ca:
        return "not a CA (basicConstraints)"
    if bc.path_length is not None and depth > bc.path_length:
        return f"path length {bc.path_length} exceeded"
    ku = _ext(issuer, x509.KeyUsage)
    if ku is not None and not ku.key_cert_sign:
        return "keyUsage lacks keyCertSign"
    return None


def _signature_problem(cert: x509.Certificate, issuer: x509.Certificate) -> str | None:
    try:
        hash_alg = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return "unsupported signature algorithm"
    if isinstance(hash_alg, _WEAK_HASHES):
        return f"weak signature hash {hash_alg.name}"
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return "bad signature"
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return f"cannot check the signature ({exc})"
    return None


def _key_ids_differ(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    aki = _ext(cert, x509.AuthorityKeyIdentifier)
    ski = _ext(issuer, x509.SubjectKeyIdentifier)
    return bool(aki and aki.key_identifier and ski and aki.key_identifier != ski.digest)


class _ChainBuilder:
    """Depth-first search from the leaf to a trust anchor through the intermediates."""

    def __init__(
        self,
        anchors: list[x509.Certificate],
        intermediates: list[x509.Certificate],
        now: datetime,
    ) -> None:
        self.anchors = anchors
        self.intermediates = intermediates
        self.now = now
        self.problems: list[str] = []
        self._anchor_fps = {a.fingerprint(hashes.SHA256()) for a in anchors}

    def _note(self, cert: x509.Certificate, problem: str) -> None:
        text = f"{_dn(cert.subject)}: {problem}"
        if text not in self.problems:
            self.problems.append(text)

    def _candidates(self, cert: x509.Certificate) -> list[tuple[x509.Certificate, bool]]:
        found = [(a, True) for a in self.anchors if a.subject == cert.issuer]
        found += [
            (c, False)
            for c in self.intermediates
            if c.subject == cert.issuer and c.fingerprint(hashes.SHA256()) not in self._anchor_fps
        ]
        return [(c, is_anchor) for c, is_anchor in found if not _key_ids_differ(cert, c)]

    def build(
        self, cert: x509.Certificate, depth: int, seen: frozenset[bytes]
    ) -> list[x509.Certificate] | None:
        """A path [issuer, …, anchor] above ``cert``, or None (reasons in ``problems``)."""
        candidates = self._candidates(cert)
        if not candidates:
            self._note(cert, f"no issuer {_dn(cert.issuer)} among the trusted certificates")
        for issuer, is_anchor in candidates:
            fp = issuer.fingerprint(hashes.SHA256())
            if fp in seen:
                continue
            problem = _cert_problem(issuer, self.now) or _issuer_problem(issuer, depth)
            if problem:
                self._note(issuer, problem)
                continue
            problem = _signature_problem(cert, issuer)
            if problem:
                self._note(cert, f"{problem} (issuer {_dn(issuer.subject)})")
                continue
            if is_anchor:
                return [issuer]
            if depth + 2 >= MAX_CHAIN_LENGTH:
                self._note(issuer, "chain too long")
                continue
            rest = self.build(issuer, depth + 1, seen | {fp})
            if rest is not None:
                return [issuer, *rest]
        return None


def _check_chain(
    leaf: x509.Certificate,
    anchors: list[x509.Certificate],
    intermediates: list[x509.Certificate],
    now: datetime,
) -> None:
    problem = _cert_problem(leaf, now)
    if problem:
        raise UntrustedChain(detail=f"{_dn(leaf.subject)}: {problem}")
    builder = _ChainBuilder(anchors, intermediates, now)
    if builder.build(leaf, 0, frozenset({leaf.fingerprint(hashes.SHA256())})) is None:
        raise UntrustedChain(detail="; ".join(builder.problems[:4]))


def check_chain(
    leaf: bytes | x509.Certificate,
    anchors: Iterable[bytes | x509.Certificate],
    intermediates: Iterable[bytes | x509.Certificate] = (),
    now: datetime | None = None,
) -> None:
    """Raise :class:`UntrustedChain` unless ``leaf`` is valid now and chains to
    one of ``anchors`` (DER, PEM or cryptography certificates)."""
    (cert,) = _load_certs([leaf], "certificate")
    roots = _load_certs(anchors, "trust anchor")
    if not roots:
        raise UntrustedChain(detail="no trust anchor configured")
    _check_chain(cert, roots, _load_certs(intermediates, "intermediate"), _check_now(now))


# --- the verifier --------------------------------------------------------------


def _identity(model: CertificateModel, algorithm: str, origin: str) -> Identity:
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


def verify_auth_token(
    token: dict[str, Any] | str | bytes,
    challenge: str,
    origin: str,
    trust_anchors: Sequence[bytes | x509.Certificate],
    now: datetime | None = None,
    *,
    intermediates: Sequence[bytes | x509.Certificate] = (),
    required_key_usage: Sequence[str] = DEFAULT_KEY_USAGE,
) -> Identity:
    """Verify a login token from ``auth.authenticate``; return who signed in.

    ``challenge`` is the one the backend issued and stored, ``origin`` the backend's
    own public origin. ``trust_anchors`` and ``intermediates`` are certificates (objects,
    DER or PEM bytes). ``required_key_usage``: the leaf's keyUsage must hold at least one
    of these. Raises a :class:`VerifyError` subclass on a bad token; ``ValueError`` or
    ``TypeError`` on bad arguments (a naive ``now``, no trust anchors).
    """
    when = _check_now(now)
    if not isinstance(origin, str) or not origin:
        raise ValueError("origin must be a non-empty string")
    anchors = _load_certs(trust_anchors, "trust_anchors")
    if not anchors:
        raise ValueError("no trust anchors given")
    chain_certs = _load_certs(intermediates, "intermediates")
    wanted_usage = _key_usage_wanted(required_key_usage)

    _check_challenge(challenge)
    parsed = _parse_token(token)
    if parsed.origin != origin:
        raise OriginMismatch(detail=f"token for {parsed.origin[:200]!r}, expected {origin!r}")
    model, cert = _load_leaf(parsed.cert_der)
    key = _public_key(model, parsed.algorithm)
    _check_signature(key, parsed.algorithm, parsed.signature, signed_bytes(origin, challenge))
    _check_leaf_validity(model, when)
    _check_chain(cert, anchors, chain_certs, when)
    _check_key_usage(model, cert, wanted_usage)
    return _identity(model, parsed.algorithm, origin)


def verify_legacy_signature(
    certificate: bytes,
    signature: bytes,
    text: str,
    trust_anchors: Sequence[bytes | x509.Certificate],
    now: datetime | None = None,
    *,
    intermediates: Sequence[bytes | x509.Certificate] = (),
    required_key_usage: Sequence[str] = DEFAULT_KEY_USAGE,
) -> Identity:
    """Verify a legacy (HEBCA ``SignText``) login: ``signature`` over ``text`` as UTF-8 by
    the key of ``certificate`` (DER): RSA PKCS#1 v1.5 with SHA-256, or ECDSA with
    SHA-256 (DER-encoded signature), as docs/hebca-compat.md signs it.

    The certificate is checked exactly as :func:`verify_auth_token` checks
    a token's (same leaf loader, validity, chain builder and key-usage rule). Raises a
    :class:`VerifyError` subclass. The returned identity has
    ``origin == ""``: this signature binds no origin.
    """
    when = _check_now(now)
    anchors = _load_certs(trust_anchors, "trust_anchors")
    if not anchors:
        raise ValueError("no trust anchors given")
    chain_certs = _load_certs(intermediates, "intermediates")
    wanted_usage = _key_usage_wanted(required_key_usage)

    model, cert = _load_leaf(certificate)
    try:
        key = model.public_key()
    except SigningUnsupported as exc:  # SM2: listed by the helper, not verifiable here
        raise AlgorithmMismatch(detail=exc.detail) from None
    data = text.encode("utf-8")
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            algorithm = "RS256"
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))  # DER, as SignText gives
            algorithm = "ES256"
        else:
            raise AlgorithmMismatch(detail=f"unsupported key {type(key).__name__}")
    except (InvalidSignature, ValueError):
        raise BadSignature from None
    _check_leaf_validity(model, when)
    _check_chain(cert, anchors, chain_certs, when)
    _check_key_usage(model, cert, wanted_usage)
    return _identity(model, algorithm, "")
