"""Verify what certhelper produced: the check a hall backend runs (docs/verifier.md).

Pure Python on ``cryptography``, ``asn1crypto`` and ``gmalg`` (SM2); needs no daemon, no
USB key and no network. Login tokens (:func:`verify_auth_token`), legacy HEBCA signatures
(:func:`verify_legacy_signature`), CMS SignedData (:func:`verify_cms_signature`) and
certificate chains (:func:`check_chain`) — RSA, ECDSA and SM2 alike.
"""

from helper.verify.chain import check_chain
from helper.verify.errors import (
    AlgorithmMismatch,
    BadSignature,
    CertExpired,
    CertNotYetValid,
    ChallengeInvalid,
    OriginMismatch,
    UnknownTokenFormat,
    UntrustedChain,
    VerifyError,
    WrongKeyUsage,
)
from helper.verify.legacy import verify_legacy_signature
from helper.verify.signed_data import verify_cms_signature
from helper.verify.signer import ALGORITHMS, DEFAULT_KEY_USAGE, Identity
from helper.verify.token import TOKEN_FORMAT, new_challenge, signed_bytes, verify_auth_token

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
    "verify_cms_signature",
    "verify_legacy_signature",
]
