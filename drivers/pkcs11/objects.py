"""Reading PKCS#11 objects: attributes, public keys as SPKI, key descriptions."""

from __future__ import annotations

import logging
import os
from typing import Any

import pkcs11.exceptions as pe
from asn1crypto import keys as asn1_keys
from pkcs11 import Attribute, KeyType
from pkcs11.util.ec import encode_ec_public_key
from pkcs11.util.rsa import encode_rsa_public_key

from drivers import errors as E
from drivers.types import KeyObject

log = logging.getLogger(__name__)


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


def key_object(obj: Any, key_id: bytes, *, from_public: bool) -> KeyObject:
    key_type = attr(obj, Attribute.KEY_TYPE, None)
    bits: int | None = None
    ec_params: bytes | None = None
    if key_type == KeyType.RSA:
        modulus = attr(obj, Attribute.MODULUS, None)
        bits = len(modulus) * 8 if modulus else attr(obj, Attribute.MODULUS_BITS, None)
        type_name = "RSA"
    elif key_type == KeyType.EC:
        ec_params = attr(obj, Attribute.EC_PARAMS, None)
        type_name = "EC"
    else:
        type_name = getattr(key_type, "name", str(key_type))
    return KeyObject(
        key_id=key_id,
        label=text(attr(obj, Attribute.LABEL, "")),
        key_type=type_name,
        key_bits=bits,
        ec_params=ec_params,
        from_public_key=from_public,
    )
