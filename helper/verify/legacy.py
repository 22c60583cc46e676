"""Legacy HEBCA ``SignText`` logins (docs/hebca-compat.md): a signature over the
page's text by the key of the selected certificate."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from helper.errors import SigningUnsupported
from helper.verify.errors import AlgorithmMismatch, BadSignature
from helper.verify.signer import (
    DEFAULT_KEY_USAGE,
    Identity,
    TrustSettings,
    check_signer,
    identity,
    load_leaf,
)


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
    trust = TrustSettings.of(trust_anchors, now, intermediates, required_key_usage)
    model, cert = load_leaf(certificate)
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
    check_signer(model, cert, trust)
    return identity(model, algorithm, "")
