"""Legacy HEBCA ``SignText`` logins (docs/hebca-compat.md): a signature over the
page's text by the key of the selected certificate — RSA PKCS#1 v1.5 with SHA-256,
ECDSA with SHA-256, or SM2 with SM3 (HEBCA algorithm 2, ``SM3SM2``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from helper.verify.signer import (
    DEFAULT_KEY_USAGE,
    Identity,
    Sm2PublicKey,
    TrustSettings,
    check_der_signature,
    check_signer,
    identity,
    load_leaf,
    signing_key,
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
    the key of ``certificate`` (DER), as docs/hebca-compat.md signs it: RSA PKCS#1 v1.5
    with SHA-256, ECDSA with SHA-256 (DER-encoded signature), or for an SM2 certificate
    SM2 over ``e = SM3(Z ‖ text)`` with Z from the default ID ``1234567812345678``
    (DER ``SEQUENCE {r, s}``; HEBCA algorithm 2, ``SM3SM2``).

    The certificate is checked exactly as :func:`verify_auth_token` checks
    a token's (same leaf loader, validity, chain builder and key-usage rule). Raises a
    :class:`VerifyError` subclass. The returned identity has
    ``origin == ""``: this signature binds no origin; its ``algorithm`` is ``RS256``,
    ``ES256`` or ``SM2SM3``.
    """
    trust = TrustSettings.of(trust_anchors, now, intermediates, required_key_usage)
    model, cert = load_leaf(certificate)
    key = signing_key(model)  # AlgorithmMismatch for keys other than RSA, EC and SM2
    check_der_signature(key, hashes.SHA256(), signature, text.encode("utf-8"))
    if isinstance(key, Sm2PublicKey):
        algorithm = "SM2SM3"
    elif isinstance(key, rsa.RSAPublicKey):
        algorithm = "RS256"
    else:
        algorithm = "ES256"
    check_signer(model, cert, trust)
    return identity(model, algorithm, "")
