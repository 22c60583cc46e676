"""SM2 through a vendor's PKCS#11 mechanism (an entry of ``vendors.toml``).

The host computes e = SM3(Z ‖ M) (:mod:`drivers.sm2`) from the signer's public key and ID,
as for an SKF key; the token signs e with the vendor's raw mechanism. The public key comes
from the certificate with the key's CKA_ID (what a verifier will use), else from the
vendor's public-key object or the private key's CKA_EC_POINT.
"""

from __future__ import annotations

from typing import Any

from asn1crypto import x509 as asn1_x509
from pkcs11 import Attribute, ObjectClass

from drivers import errors as E
from drivers import sm2
from drivers.pkcs11.objects import attr
from drivers.pkcs11.vendors import SignatureEncoding, VendorEntry


def private_key(session: Any, entry: VendorEntry, key_id: bytes) -> Any:
    """The one SM2 private key (the vendor's key type) with this CKA_ID."""
    found = list(
        session.get_objects(
            {
                Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                Attribute.KEY_TYPE: entry.sm2.key_type,
                Attribute.ID: key_id,
            }
        )
    )
    if len(found) != 1:
        detail = "no" if not found else "several"
        raise E.KeyNotFound(detail=f"{detail} SM2 private key with id {key_id.hex()}")
    return found[0]


def _point_from_certificate(der: bytes) -> bytes | None:
    try:
        info = asn1_x509.Certificate.load(der).public_key
        if info["algorithm"]["algorithm"].native != "ec":
            return None
        if info["algorithm"]["parameters"].chosen.dotted != sm2.CURVE_OID:
            return None
        return bytes(info["public_key"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _point_from_ec_point(value: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the point; some modules store it bare."""
    if len(value) in (66, 67) and value[0] == 0x04 and value[1] == len(value) - 2:
        return value[2:]
    return value


def public_point(session: Any, entry: VendorEntry, key_id: bytes, key: Any) -> tuple[int, int]:
    """(x, y) of the signer's SM2 public key, for Z."""
    certs = session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: key_id})
    for cert in list(certs):
        point = _point_from_certificate(attr(cert, Attribute.VALUE, b""))
        if point is not None:
            return sm2.public_point(point)
    candidates = list(
        session.get_objects(
            {
                Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                Attribute.KEY_TYPE: entry.sm2.key_type,
                Attribute.ID: key_id,
            }
        )
    )
    candidates.append(key)
    for obj in candidates:
        value = attr(obj, Attribute.EC_POINT, None)
        if value:
            try:
                return sm2.public_point(_point_from_ec_point(bytes(value)))
            except ValueError:
                continue
    raise E.KeyNotFound(detail=f"no SM2 public key for id {key_id.hex()}")


def decode_signature(raw: bytes, encoding: SignatureEncoding) -> tuple[int, int]:
    """(r, s) from what C_Sign returned, per the table's encoding."""
    if encoding is SignatureEncoding.AUTO:
        encoding = SignatureEncoding.RAW if len(raw) == 64 else SignatureEncoding.DER
    try:
        if encoding is SignatureEncoding.RAW:
            if len(raw) != 64:
                raise ValueError(f"{len(raw)} bytes, not 64")
            r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        else:
            r, s = sm2.signature_from_der(raw)
        if not (0 < r < sm2.N and 0 < s < sm2.N):
            raise ValueError("r or s out of range")
    except (ValueError, TypeError) as exc:
        detail = f"the module's SM2 signature is not {encoding.value}: {exc}"
        raise E.DeviceError(detail=detail) from None
    return r, s
