"""Login tokens from ``auth.authenticate`` (docs/bridge-protocol.md): the check a hall
backend runs. The key signed ``SHA-256(origin) || SHA-256(challenge)``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from helper.verify.errors import ChallengeInvalid, OriginMismatch, UnknownTokenFormat
from helper.verify.signer import (
    DEFAULT_KEY_USAGE,
    Identity,
    TrustSettings,
    check_signature,
    check_signer,
    identity,
    load_leaf,
    public_key,
)

TOKEN_FORMAT = "certhelper-auth:1"
MIN_CHALLENGE_BYTES = 32
MAX_CHALLENGE_CHARS = 1024
MAX_TOKEN_CHARS = 64 * 1024

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_STRING_FIELDS = ("format", "certificate", "algorithm", "signature", "origin", "app_version")


@dataclass(frozen=True)
class _Token:
    cert_der: bytes
    algorithm: str
    signature: bytes
    origin: str


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
    trust = TrustSettings.of(trust_anchors, now, intermediates, required_key_usage)
    if not isinstance(origin, str) or not origin:
        raise ValueError("origin must be a non-empty string")

    _check_challenge(challenge)
    parsed = _parse_token(token)
    if parsed.origin != origin:
        raise OriginMismatch(detail=f"token for {parsed.origin[:200]!r}, expected {origin!r}")
    model, cert = load_leaf(parsed.cert_der)
    key = public_key(model, parsed.algorithm)
    check_signature(key, parsed.algorithm, parsed.signature, signed_bytes(origin, challenge))
    check_signer(model, cert, trust)
    return identity(model, parsed.algorithm, origin)
