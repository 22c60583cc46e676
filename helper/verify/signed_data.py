"""CMS (PKCS#7) SignedData as ``sign.data`` with ``format: "cms"`` and HEBCA
``P7SignB64`` make it (helper/cms.py): one SignerInfo, the signer certificate inside,
attached or detached content. RSA and ECDSA with SHA-2, and SM2 per GM/T 0010: digest
SM3, signature SM2-with-SM3 (or ``sm2sign``) with Z from the default ID.

:func:`helper.cms.verify_signed_data` answers true/false for ``P7VerifyB64`` without any
trust; this module is the backend's check (chain, validity, key usage, specific errors).
The two cannot share code (``helper.verify`` and ``helper.cms`` are independent layers);
what they share is the SM2 primitive, :func:`drivers.sm2.verify`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import parser as asn1_parser
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from drivers import sm2
from helper.verify.errors import AlgorithmMismatch, BadSignature, UnknownTokenFormat
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

#: GM/T 0010 content types, used by some Chinese stacks instead of the PKCS#7 ones
GMT_DATA_OID = "1.2.156.10197.6.1.4.2.1"
GMT_SIGNED_DATA_OID = "1.2.156.10197.6.1.4.2.2"
_DATA_TYPES = frozenset({"1.2.840.113549.1.7.1", GMT_DATA_OID})
_SIGNED_DATA_TYPES = frozenset({"1.2.840.113549.1.7.2", GMT_SIGNED_DATA_OID})

#: digest OID -> (hashlib name, JWS-style suffix); SHA-1 and MD5 are refused
_DIGESTS = {
    "2.16.840.1.101.3.4.2.1": ("sha256", "256"),
    "2.16.840.1.101.3.4.2.2": ("sha384", "384"),
    "2.16.840.1.101.3.4.2.3": ("sha512", "512"),
    sm2.SM3_OID: ("sm3", "SM3"),
}
#: SignerInfo signature algorithm OID -> (key type, digest it implies or None)
_SIGNATURES: dict[str, tuple[str, str | None]] = {
    "1.2.840.113549.1.1.1": ("RSA", None),  # rsaEncryption (RFC 3370 §3.2, what openssl writes)
    "1.2.840.113549.1.1.11": ("RSA", "sha256"),
    "1.2.840.113549.1.1.12": ("RSA", "sha384"),
    "1.2.840.113549.1.1.13": ("RSA", "sha512"),
    "1.2.840.10045.2.1": ("EC", None),  # id-ecPublicKey, seen in the wild
    "1.2.840.10045.4.3.2": ("EC", "sha256"),
    "1.2.840.10045.4.3.3": ("EC", "sha384"),
    "1.2.840.10045.4.3.4": ("EC", "sha512"),
    sm2.SM2_WITH_SM3_OID: ("SM2", "sm3"),
    sm2.SM2_SIGN_OID: ("SM2", "sm3"),
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True)
class _Signer:
    cert_der: bytes
    others: list[bytes]
    digest_oid: str
    signature_oid: str
    signature: bytes
    signed: bytes  # what the signature covers: the attributes as a SET, or the content
    content_digest: bytes | None  # the messageDigest attribute, when there are attributes
    content_type_ok: bool


def _signed_data(cms_der: bytes) -> asn1_cms.SignedData:
    """ContentInfo { contentType, [0] EXPLICIT content } read by hand: asn1crypto cannot
    parse a ContentInfo whose type (the GM/T 0010 one) it does not know."""
    tag_class, _, tag, _, body, _ = asn1_parser.parse(cms_der, strict=True)
    if (tag_class, tag) != (0, 16):
        raise ValueError("not a SEQUENCE")
    tag_class, _, tag, header, oid, trailer = asn1_parser.parse(body)
    if (tag_class, tag) != (0, 6):
        raise ValueError("no content type")
    kind = asn1_core.ObjectIdentifier.load(header + oid).dotted
    if kind not in _SIGNED_DATA_TYPES:
        raise UnknownTokenFormat(detail=f"content type {kind}, not SignedData")
    rest = body[len(header) + len(oid) + len(trailer) :]
    tag_class, _, tag, _, inner, _ = asn1_parser.parse(rest, strict=True)
    if (tag_class, tag) != (2, 0):
        raise ValueError("content is not [0]")
    return asn1_cms.SignedData.load(inner, strict=True)


def _find_cert(sid: asn1_cms.SignerIdentifier, certs: list[asn1_cms.Certificate]) -> bytes:
    for c in certs:
        if sid.name == "issuer_and_serial_number":
            ias = sid.chosen
            if c.issuer == ias["issuer"] and c.serial_number == ias["serial_number"].native:
                return c.dump()
        elif c.key_identifier == sid.chosen.native:
            return c.dump()
    raise UnknownTokenFormat(detail="the signer's certificate is not in the SignedData")


def _read(cms_der: bytes, content: bytes | None) -> tuple[_Signer, bytes]:
    signed = _signed_data(cms_der)
    encap = signed["encap_content_info"]
    if encap["content_type"].dotted not in _DATA_TYPES:
        raise UnknownTokenFormat(detail=f"signed content type {encap['content_type'].dotted}")
    inner = encap["content"].native
    if inner is not None and not isinstance(inner, bytes):
        inner = encap["content"].contents  # an unknown eContentType's octets
    if content is None:
        if inner is None:
            raise UnknownTokenFormat(detail="detached SignedData: pass the signed content")
        content = inner
    elif inner is not None and inner != content:
        raise BadSignature(detail="the encapsulated content is not the expected data")
    infos = list(signed["signer_infos"])
    if len(infos) != 1:
        raise UnknownTokenFormat(detail=f"{len(infos)} SignerInfos; exactly one is accepted")
    si = infos[0]
    certs = [c.chosen for c in signed["certificates"] if c.name == "certificate"]
    cert_der = _find_cert(si["sid"], certs)
    attrs = si["signed_attrs"]
    digest_value: bytes | None = None
    content_type_ok = True
    if not isinstance(attrs, asn1_core.Void) and len(attrs):
        found = [a for a in attrs if a["type"].dotted == "1.2.840.113549.1.9.4"]
        if len(found) != 1 or len(found[0]["values"]) != 1:
            raise UnknownTokenFormat(detail="signed attributes without one messageDigest")
        digest_value = found[0]["values"][0].native
        types = [a for a in attrs if a["type"].dotted == "1.2.840.113549.1.9.3"]
        ctype = encap["content_type"].dotted
        content_type_ok = all(v.dotted == ctype for a in types for v in a["values"])
        raw = attrs.dump()
        to_sign = b"\x31" + raw[1:]  # RFC 5652 §5.4: the DER SET, not the [0] tag
    else:
        to_sign = content
    return (
        _Signer(
            cert_der=cert_der,
            others=[c.dump() for c in certs if c.dump() != cert_der],
            digest_oid=si["digest_algorithm"]["algorithm"].dotted,
            signature_oid=si["signature_algorithm"]["algorithm"].dotted,
            signature=si["signature"].native,
            signed=to_sign,
            content_digest=digest_value,
            content_type_ok=content_type_ok,
        ),
        content,
    )


def _digest(name: str, data: bytes) -> bytes:
    return sm2.sm3(data) if name == "sm3" else hashlib.new(name, data).digest()


def _algorithm(key_type: str, digest_oid: str, signature_oid: str) -> tuple[str, str]:
    """(hashlib name, algorithm name like RS256 / ES384 / SM2SM3) or AlgorithmMismatch."""
    digest = _DIGESTS.get(digest_oid)
    if digest is None:
        raise AlgorithmMismatch(detail=f"digest algorithm {digest_oid} is not accepted")
    sig = _SIGNATURES.get(signature_oid)
    if sig is None:
        raise AlgorithmMismatch(detail=f"signature algorithm {signature_oid} is not accepted")
    sig_key, implied = sig
    name, suffix = digest
    if sig_key != key_type or (implied is not None and implied != name):
        raise AlgorithmMismatch(
            detail=f"{signature_oid} with digest {name} does not fit the {key_type} certificate"
        )
    if key_type == "SM2":
        return name, "SM2SM3"
    if name == "sm3":
        raise AlgorithmMismatch(detail=f"SM3 with a {key_type} key is not accepted")
    return name, ("RS" if key_type == "RSA" else "ES") + suffix


def verify_cms_signature(
    cms_der: bytes,
    content: bytes | None,
    trust_anchors: Sequence[bytes | x509.Certificate],
    now: datetime | None = None,
    *,
    intermediates: Sequence[bytes | x509.Certificate] = (),
    required_key_usage: Sequence[str] = DEFAULT_KEY_USAGE,
) -> Identity:
    """Verify a CMS SignedData (DER) with one signer; return who signed.

    ``content``: the data that must have been signed — required for a detached
    SignedData; for an attached one, None (take the encapsulated content) or the expected
    data (then the encapsulated content must equal it). The signer's certificate must be in
    the SignedData; other certificates there may serve as intermediates (never as trust
    anchors). The signer is checked as :func:`verify_auth_token` checks a token's. Raises a
    :class:`VerifyError` subclass; the identity's ``origin`` is ``""``.
    """
    trust = TrustSettings.of(trust_anchors, now, intermediates, required_key_usage)
    if not isinstance(cms_der, bytes | bytearray):
        raise TypeError("cms_der must be bytes")
    if content is not None and not isinstance(content, bytes | bytearray):
        raise TypeError("content must be bytes or None")
    try:
        signer, data = _read(bytes(cms_der), None if content is None else bytes(content))
    except (ValueError, TypeError, KeyError) as exc:
        raise UnknownTokenFormat(detail=f"unreadable SignedData ({type(exc).__name__})") from None
    model, cert = load_leaf(signer.cert_der)
    key = signing_key(model)
    hash_name, algorithm = _algorithm(model.key_type, signer.digest_oid, signer.signature_oid)
    if signer.content_digest is not None:
        if _digest(hash_name, data) != signer.content_digest:
            raise BadSignature(detail="messageDigest does not match the content")
        if not signer.content_type_ok:
            raise BadSignature(detail="contentType attribute differs from the content's type")
    hash_alg = None if isinstance(key, Sm2PublicKey) else _HASHES[hash_name]()
    check_der_signature(key, hash_alg, signer.signature, signer.signed)
    extra = list(trust.intermediates)
    for der in signer.others:  # an unreadable extra certificate is no path; skip it
        with contextlib.suppress(ValueError):
            extra.append(x509.load_der_x509_certificate(der))
    check_signer(model, cert, dataclasses.replace(trust, intermediates=extra))
    return identity(model, algorithm, "")
