"""Reading parameters that pages send (native API, renewal): one strict decoder each."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from helper.errors import BadParams


def b64decode_param(value: Any, name: str, *, urlsafe: bool = False) -> bytes:
    """Base64 (or base64url) text to bytes; missing padding is fine, junk is not."""
    if not isinstance(value, str):
        raise BadParams(detail=f"'{name}' must be a base64 string")
    try:
        text = value + "=" * (-len(value) % 4)
        if urlsafe:
            return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadParams(detail=f"'{name}' is not valid base64") from None


def sha256_prefix(value: Any, name: str = "certificate") -> str:
    """A certificate named by 16+ hex digits of its SHA-256, lower-cased."""
    if not isinstance(value, str):
        raise BadParams(detail=f"'{name}' must be the certificate's SHA-256 (hex)")
    f = value.strip().lower()
    if len(f) < 16 or any(ch not in "0123456789abcdef" for ch in f):
        raise BadParams(detail=f"'{name}' must be 16+ hex digits of a SHA-256")
    return f
