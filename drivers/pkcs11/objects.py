"""Reading PKCS#11 objects: attributes, public keys as SPKI, key descriptions."""

from __future__ import annotations

import logging
import os
from typing import Any

import pkcs11.exceptions as pe
from asn1crypto import keys as asn1_keys
from pkcs11 import Attribute, KeyType
from pkcs11.attributes import AttributeMapper, handle_ulong
from pkcs11.util.ec import encode_ec_public_key
from pkcs11.util.rsa import encode_rsa_public_key

from drivers import errors as E
from drivers.types import KeyObject

log = logging.getLogger(__name__)


# DER of the SM2 curve's OID 1.2.156.10197.1.301, as CKA_EC_PARAMS would hold it
SM2_EC_PARAMS = bytes.fromhex("06082a811ccf5501822d")


def _key_type(raw: bytes) -> KeyType | int:
    value = handle_ulong[1](raw)
    try:
        return KeyType(value)
    except ValueError:
        return int(value)  # vendor-defined (a vendor's SM2): python-pkcs11 would raise


def attribute_mapper() -> AttributeMapper:
    """python-pkcs11's mapper, except that CKA_KEY_TYPE values outside its enum come back
    as plain ints instead of failing the whole read."""
    mapper = AttributeMapper()
    mapper.register_handler(Attribute.KEY_TYPE, handle_ulong[0], _key_type)
    return mapper


def text(value: Any) -> str:
    """A CK_UTF8CHAR field as str, without the blank padding."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).rstrip(" \x00")


def attr(obj: Any, attribute: Attribute, default: Any) -> Any:
    """An attribute's value, or ``default`` when the object has none or hides it."""
    try:
        value = obj[attribute]
    except (pe.AttributeTypeInvalid, pe.AttributeSensitive, KeyError):
        return default
    return default if value is None else value


def spki(obj: Any) -> bytes:
    """DER SubjectPublicKeyInfo of an RSA or EC public-key object."""
    key_type = obj[Attribute.KEY_TYPE]
    if key_type == KeyType.RSA:
        pkcs1 = asn1_keys.RSAPublicKey.load(encode_rsa_public_key(obj))  # PKCS#1, not SPKI
        return asn1_keys.PublicKeyInfo.wrap(pkcs1, "rsa").dump()
    if key_type == KeyType.EC:
        return encode_ec_public_key(obj)
    raise ValueError(f"key type {key_type!r} has no SPKI encoding here")


def unused_id(session: Any) -> bytes:
    """A random 20-byte CKA_ID no object on the token (as the session sees it) has."""
    for _ in range(8):
        key_id = os.urandom(20)
        # list(): an unfinished search would leave C_FindObjects active on the session
        if not list(session.get_objects({Attribute.ID: key_id})):
            return key_id
    raise E.DeviceError(detail="no unused CKA_ID found")


def destroy_quietly(objects: tuple[Any, ...], label: str) -> None:
    for obj in objects:
        try:
            obj.destroy()
        except pe.PKCS11Error as exc:
            log.error("cannot remove key object %r again: %s", label, type(exc).__name__)


def key_object(
    obj: Any, key_id: bytes, *, from_public: bool, sm2_key_type: int | None = None
) -> KeyObject:
    """``sm2_key_type``: the vendor CKK the module's SM2 keys carry (vendors.toml)."""
    key_type = attr(obj, Attribute.KEY_TYPE, None)
    bits: int | None = None
    ec_params: bytes | None = None
    if sm2_key_type is not None and key_type == sm2_key_type:
        type_name, bits, ec_params = "SM2", 256, SM2_EC_PARAMS
    elif key_type == KeyType.RSA:
        modulus = attr(obj, Attribute.MODULUS, None)
        bits = len(modulus) * 8 if modulus else attr(obj, Attribute.MODULUS_BITS, None)
        type_name = "RSA"
    elif key_type == KeyType.EC:
        ec_params = attr(obj, Attribute.EC_PARAMS, None)
        type_name = "EC"
    elif isinstance(key_type, KeyType):
        type_name = key_type.name
    elif isinstance(key_type, int):
        type_name = f"{key_type:#x}"  # vendor-defined, not in the vendor table
    else:
        type_name = str(key_type)
    return KeyObject(
        key_id=key_id,
        label=text(attr(obj, Attribute.LABEL, "")),
        key_type=type_name,
        key_bits=bits,
        ec_params=ec_params,
        from_public_key=from_public,
    )
