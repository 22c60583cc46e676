"""Public keys and signatures as SKF blobs and as DER.

``SKF_ExportPublicKey`` and the key-generation calls return ``ECCPUBLICKEYBLOB`` or
``RSAPUBLICKEYBLOB``; the rest of certhelper wants a DER SubjectPublicKeyInfo. SM2 keys go
under id-ecPublicKey with the SM2 curve (1.2.156.10197.1.301), which ``cryptography`` cannot
load but asn1crypto and OpenSSL can.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

from asn1crypto import keys as asn1_keys

from drivers import sm2
from drivers.skf import abi


def _field_int(field: Any) -> int:
    return int.from_bytes(bytes(field), "big")


@dataclass(frozen=True)
class EccPublicKey:
    """An SM2 public key (a point on the SM2 curve)."""

    x: int
    y: int
    bits: int = 256

    @classmethod
    def from_blob(cls, blob: Any) -> EccPublicKey:
        """From an ECCPUBLICKEYBLOB: 256-bit coordinates right-aligned in 64-byte fields."""
        if blob.BitLen != 256:
            raise ValueError(f"an SM2 key has 256 bits, the blob says {blob.BitLen}")
        x, y = _field_int(blob.XCoordinate), _field_int(blob.YCoordinate)
        sm2.public_point((x, y))  # refuses a point off the curve
        return cls(x, y)

    @classmethod
    def from_raw(cls, raw: bytes) -> EccPublicKey:
        return cls(*sm2.public_point(raw))

    def to_blob(self, layout: abi.Abi = abi.STANDARD) -> Any:
        blob = layout.ECCPUBLICKEYBLOB()
        blob.BitLen = self.bits
        pad = abi.ECC_COORDINATE_LEN - abi.SM2_COORDINATE_LEN
        ctypes.memmove(ctypes.addressof(blob.XCoordinate) + pad, self.x.to_bytes(32, "big"), 32)
        ctypes.memmove(ctypes.addressof(blob.YCoordinate) + pad, self.y.to_bytes(32, "big"), 32)
        return blob

    @property
    def point(self) -> bytes:
        """The uncompressed point ``04 ‖ x ‖ y``."""
        return b"\x04" + self.x.to_bytes(32, "big") + self.y.to_bytes(32, "big")

    def spki_der(self) -> bytes:
        return asn1_keys.PublicKeyInfo(
            {
                "algorithm": {"algorithm": "ec", "parameters": ("named", sm2.CURVE_OID)},
                "public_key": self.point,
            }
        ).dump()


@dataclass(frozen=True)
class RsaPublicKey:
    n: int
    e: int

    @property
    def bits(self) -> int:
        return self.n.bit_length()

    @classmethod
    def from_blob(cls, blob: Any) -> RsaPublicKey:
        """From an RSAPUBLICKEYBLOB: modulus and exponent big-endian, right-aligned."""
        n, e = _field_int(blob.Modulus), _field_int(blob.PublicExponent)
        if n == 0 or e == 0 or n.bit_length() != blob.BitLen:
            raise ValueError(f"RSAPUBLICKEYBLOB is inconsistent (BitLen {blob.BitLen})")
        return cls(n, e)

    def spki_der(self) -> bytes:
        return asn1_keys.PublicKeyInfo(
            {
                "algorithm": {"algorithm": "rsa"},
                "public_key": asn1_keys.RSAPublicKey(
                    {"modulus": self.n, "public_exponent": self.e}
                ),
            }
        ).dump()


PublicKey = EccPublicKey | RsaPublicKey


def signature_from_blob(blob: Any) -> tuple[int, int]:
    """(r, s) from an ECCSIGNATUREBLOB; the upper 32 bytes of each field must be zero."""
    r, s = _field_int(blob.r), _field_int(blob.s)
    if r.bit_length() > 256 or s.bit_length() > 256:
        raise ValueError("an SM2 signature value exceeds 256 bits")
    return r, s


def signature_to_blob(r: int, s: int, layout: abi.Abi = abi.STANDARD) -> Any:
    blob = layout.ECCSIGNATUREBLOB()
    pad = abi.ECC_COORDINATE_LEN - abi.SM2_COORDINATE_LEN
    ctypes.memmove(ctypes.addressof(blob.r) + pad, r.to_bytes(32, "big"), 32)
    ctypes.memmove(ctypes.addressof(blob.s) + pad, s.to_bytes(32, "big"), 32)
    return blob
