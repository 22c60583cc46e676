"""Host-side SM2 preprocessing (GM/T 0003.2 / GM/T 0009) for ``SKF_ECCSignData``.

An SKF key signs the 32-byte ``e`` it is given; the host computes it, as GmSSL's
``tools/skfutil.c`` does::

    Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA)     ENTL = bit length of ID, 2 bytes
    e = SM3(Z ‖ M)

with the signer's public key ``(xA, yA)`` and the distinguishing ID, ``1234567812345678`` by
default (GM/T 0009). OpenSSL 3's own default ID is empty: pass
``-sigopt distid:1234567812345678`` to compare with it.

Pure functions; SM3 comes from hashlib (OpenSSL 3), else ``cryptography``.
"""

from __future__ import annotations

import hashlib

from asn1crypto import algos as asn1_algos
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


def signature_from_der(der: bytes) -> tuple[int, int]:
    parsed = asn1_algos.DSASignature.load(der)
    return int(parsed["r"].native), int(parsed["s"].native)


def signature_raw(r: int, s: int) -> bytes:
    """``r ‖ s``, 64 bytes: the compact form an API can carry."""
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")
