"""Host-side SM2 preprocessing (GM/T 0003.2 / GM/T 0009) for ``SKF_ECCSignData``.

An SKF key signs the 32-byte ``e`` it is given; the host computes it, as GmSSL's
``tools/skfutil.c`` does::

    Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA)     ENTL = bit length of ID, 2 bytes
    e = SM3(Z ‖ M)

with the signer's public key ``(xA, yA)`` and the distinguishing ID, ``1234567812345678`` by
default (GM/T 0009). OpenSSL 3's own default ID is empty: pass
``-sigopt distid:1234567812345678`` to compare with it.

Pure functions; SM3 comes from hashlib (OpenSSL 3), else ``cryptography``. Signatures
are checked with gmalg (:func:`verify`), which computes Z itself: the signing side's
:func:`z_value` and the checking side never share code.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from asn1crypto import algos as asn1_algos
from asn1crypto import core as asn1_core
from cryptography.hazmat.primitives import hashes

# The SM2 recommended curve (GM/T 0003.5).
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

DEFAULT_ID = b"1234567812345678"
CURVE_OID = "1.2.156.10197.1.301"
SM3_OID = "1.2.156.10197.1.401"
SM2_WITH_SM3_OID = "1.2.156.10197.1.501"
#: "sm2sign" (GM/T 0006), which some CMS stacks write as the SignerInfo signature algorithm
SM2_SIGN_OID = "1.2.156.10197.1.301.1"
MAX_ID_BYTES = 8191  # ENTL is 16 bits of bit length

PublicKey = tuple[int, int] | bytes


def sm3(data: bytes) -> bytes:
    if _HASHLIB_SM3:
        return hashlib.new("sm3", data).digest()
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def _hashlib_has_sm3() -> bool:
    """OpenSSL 3's default provider has SM3; hashlib reaches it faster than cryptography."""
    try:
        return hashlib.new("sm3", b"abc").hexdigest() == (
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        )
    except ValueError:
        return False


_HASHLIB_SM3 = _hashlib_has_sm3()


def on_curve(x: int, y: int) -> bool:
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def public_point(public_key: PublicKey) -> tuple[int, int]:
    """(x, y) from a pair, an uncompressed point (``04‖x‖y``) or the 64 bytes ``x‖y``."""
    if isinstance(public_key, tuple):
        x, y = public_key
    else:
        raw = bytes(public_key)
        if len(raw) == 65 and raw[0] == 4:
            raw = raw[1:]
        if len(raw) != 64:
            raise ValueError("an SM2 public key is 04‖x‖y (65 bytes) or x‖y (64 bytes)")
        x, y = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    if not on_curve(x, y):
        raise ValueError("the point is not on the SM2 curve")
    return x, y


def z_value(public_key: PublicKey, uid: bytes = DEFAULT_ID) -> bytes:
    """Z_A, the hash of the signer's identity and public key."""
    if len(uid) > MAX_ID_BYTES:
        raise ValueError(f"an SM2 ID holds at most {MAX_ID_BYTES} bytes")
    x, y = public_point(public_key)
    entl = (len(uid) * 8).to_bytes(2, "big")
    parts = (A, B, GX, GY, x, y)
    return sm3(entl + uid + b"".join(v.to_bytes(32, "big") for v in parts))


def e_value(message: bytes, public_key: PublicKey, uid: bytes = DEFAULT_ID) -> bytes:
    """e = SM3(Z ‖ M): the 32 bytes SKF_ECCSignData signs."""
    return sm3(z_value(public_key, uid) + message)


def signature_der(r: int, s: int) -> bytes:
    """DER ``SEQUENCE { INTEGER r, INTEGER s }`` (GM/T 0009): what X.509 and CMS carry."""
    if not (0 < r < N and 0 < s < N):
        raise ValueError("r and s must lie in 1..n-1")
    return asn1_algos.DSASignature({"r": r, "s": s}).dump()


def signature_from_der(der: bytes, *, strict: bool = False) -> tuple[int, int]:
    """(r, s) from DER ``SEQUENCE { INTEGER r, INTEGER s }``; ``strict``: nothing may
    follow it. ValueError (or TypeError) when it is not that."""
    parsed = asn1_algos.DSASignature.load(der, strict=strict)
    r, s = parsed["r"].native, parsed["s"].native
    if not isinstance(r, int) or not isinstance(s, int):
        raise ValueError("not an SM2 signature")
    return r, s


def signature_from_raw(raw: bytes) -> tuple[int, int]:
    """(r, s) from ``r ‖ s`` (64 bytes); ValueError for any other length."""
    if len(raw) != 64:
        raise ValueError("an SM2 r‖s signature is 64 bytes")
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")


def signature_raw(r: int, s: int) -> bytes:
    """``r ‖ s``, 64 bytes: the compact form an API can carry."""
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class _Spki(asn1_core.Sequence):
    """SubjectPublicKeyInfo with the algorithm left opaque (asn1crypto's own class refuses
    some of the OIDs SM2 keys are seen with)."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("algorithm", asn1_core.Any),
        ("public_key", asn1_core.OctetBitString),
    ]


def point_from_spki(spki_der: bytes) -> tuple[int, int]:
    """The public point of an SM2 SubjectPublicKeyInfo; ValueError when it is not on
    the curve (the algorithm identifier is the caller's to check)."""
    try:
        point = _Spki.load(spki_der, strict=True)["public_key"].native
    except (ValueError, TypeError) as exc:
        raise ValueError(f"unreadable public key: {exc}") from None
    return public_point(bytes(point))


def verify(public_key: PublicKey, message: bytes, r: int, s: int, uid: bytes = DEFAULT_ID) -> bool:
    """True when ``(r, s)`` is an SM2 signature over ``e = SM3(Z ‖ message)``, Z from
    ``uid`` and ``public_key`` (GM/T 0003.2). Checked with gmalg; a point off the
    curve or r, s outside 1..n-1 is simply a bad signature."""
    import gmalg  # pure Python; imported on first use

    try:
        x, y = public_point(public_key)
    except ValueError:
        return False
    if not (0 < r < N and 0 < s < N) or len(uid) > MAX_ID_BYTES:
        return False
    point = b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
    checker = gmalg.SM2(pk=point, uid=bytes(uid))
    return bool(checker.verify(bytes(message), r.to_bytes(32, "big"), s.to_bytes(32, "big")))
