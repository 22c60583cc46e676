"""CMS (PKCS#7) SignedData around a signature made elsewhere (on the USB key).

The caller supplies ``sign``: it receives the DER of the signed attributes (a SET)
and returns the raw signature — PKCS#1 v1.5 for RSA, DER ``Ecdsa-Sig-Value`` for
ECDSA, DER ``SEQUENCE{r, s}`` for SM2. The hash of the data is computed here; the
key only ever signs the attributes, so the content never goes to the token.

SM2 follows GM/T 0010 with the RFC 8998 names: digest SM3 (1.2.156.10197.1.401),
signature SM2-with-SM3 (1.2.156.10197.1.501) over the attributes with the default
ID ``1234567812345678``; content types stay the PKCS#7 ones, which OpenSSL reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from asn1crypto import algos, cms, x509

from drivers import sm2
from drivers.errors import BadInput
from drivers.types import SignAlgorithm
from helper.domain.certificate import CertificateModel
from helper.errors import SigningUnsupported

__all__ = ["build_signed_data", "digest_for", "verify_signed_data"]


# RFC 3370 §3.2: rsaEncryption as the SignerInfo signature algorithm is what
# openssl writes and what every verifier accepts.
_SIGNATURE_ALGORITHMS = {
    SignAlgorithm.RSA_PKCS1_SHA256: "rsassa_pkcs1v15",
    SignAlgorithm.RSA_PKCS1_SHA1: "rsassa_pkcs1v15",
    SignAlgorithm.ECDSA_SHA256: "sha256_ecdsa",
    SignAlgorithm.ECDSA_SHA384: "sha384_ecdsa",
    SignAlgorithm.SM2_SM3: sm2.SM2_WITH_SM3_OID,
}

_KEY_TYPES = {
    SignAlgorithm.RSA_PKCS1_SHA256: "RSA",
    SignAlgorithm.RSA_PKCS1_SHA1: "RSA",
    SignAlgorithm.ECDSA_SHA256: "EC",
    SignAlgorithm.ECDSA_SHA384: "EC",
    SignAlgorithm.SM2_SM3: "SM2",
}
#: asn1crypto knows no SM3: its OID goes in dotted form
_DIGEST_OIDS = {"sm3": sm2.SM3_OID}


def digest_for(algorithm: SignAlgorithm) -> str:
    """The hashlib name of the digest ``algorithm`` uses (sha256, sha1, sha384)."""
    return SignAlgorithm(algorithm).hash_name


def _signing_time(value: datetime | None) -> cms.Time:
    if value is None:
        value = datetime.now(UTC)
    elif value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError("signing_time must be timezone-aware")
    value = value.astimezone(UTC).replace(microsecond=0)
    # RFC 5652 §11.3: UTCTime for 1950..2049, GeneralizedTime otherwise
    kind = "utc_time" if 1950 <= value.year < 2050 else "generalized_time"
    return cms.Time(name=kind, value=value)


def _check_ecdsa_der(signature: bytes) -> None:
    try:
        algos.DSASignature.load(signature, strict=True).native  # noqa: B018
    except (ValueError, TypeError) as exc:
        raise BadInput(detail="ECDSA signature is not DER-encoded") from exc


def build_signed_data(
    data: bytes,
    cert_der: bytes,
    sign: Callable[[bytes], bytes],
    *,
    algorithm: SignAlgorithm,
    detached: bool = True,
    signing_time: datetime | None = None,
) -> bytes:
    """DER of a ContentInfo holding SignedData over ``data``, signed by ``sign``.

    ``signing_time`` defaults to now. The signer certificate is embedded; the
    content is embedded only when ``detached`` is false. Raises
    :class:`CertificateUnreadable` for a bad certificate, :class:`SigningUnsupported`
    for keys no algorithm here fits (Ed25519, DSA…), :class:`BadInput` when ``algorithm``
    does not fit the key.
    """
    algorithm = SignAlgorithm(algorithm)
    digest_name = digest_for(algorithm)
    model = CertificateModel.from_der(cert_der)
    if not model.signing_supported:
        raise SigningUnsupported(detail=model.signing_note)
    if model.key_type != _KEY_TYPES[algorithm]:
        raise BadInput(detail=f"{algorithm.value} does not fit a {model.key_type} certificate")
    cert = x509.Certificate.load(model.der)

    digest = hashlib.new(digest_name, bytes(data)).digest()
    signed_attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
            cms.CMSAttribute({"type": "signing_time", "values": [_signing_time(signing_time)]}),
            cms.CMSAttribute({"type": "message_digest", "values": [digest]}),
        ]
    )
    # RFC 5652 §5.4: the signature covers the attributes DER-encoded as a SET,
    # not with the [0] IMPLICIT tag they carry inside SignerInfo.
    signature = sign(signed_attrs.dump())
    if not isinstance(signature, bytes | bytearray):
        raise TypeError("sign() must return bytes")
    signature = bytes(signature)
    if model.key_type in ("EC", "SM2"):
        _check_ecdsa_der(signature)

    digest_algorithm = algos.DigestAlgorithm(
        {"algorithm": _DIGEST_OIDS.get(digest_name, digest_name)}
    )
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                name="issuer_and_serial_number",
                value=cms.IssuerAndSerialNumber(
                    {
                        "issuer": cert.issuer,
                        "serial_number": cert.serial_number,
                    }
                ),
            ),
            "digest_algorithm": digest_algorithm,
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm(
                {
                    "algorithm": _SIGNATURE_ALGORITHMS[algorithm],
                }
            ),
            "signature": signature,
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [digest_algorithm],
            "encap_content_info": {
                "content_type": "data",
                "content": None if detached else bytes(data),
            },
            "certificates": [cms.CertificateChoices(name="certificate", value=cert)],
            "signer_infos": [signer_info],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


_HASHES = {
    "sha1": "sha1",
    "sha256": "sha256",
    "sha384": "sha384",
    "sha512": "sha512",
    sm2.SM3_OID: "sm3",
}


def verify_signed_data(cms_der: bytes, content: bytes | None = None) -> bool:
    """Check every SignerInfo of a SignedData against the certificate it carries:
    the message digest over the content (encapsulated, or ``content`` when
    detached) and the signature over the signed attributes. No chain check.

    Returns False for a wrong signature or digest; raises ``BadInput`` when the
    blob is not a SignedData at all or a part of it cannot be read.
    """
    try:
        info = cms.ContentInfo.load(cms_der)
        if info["content_type"].native != "signed_data":
            raise BadInput(detail="not a SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]["content"]
        data = encap.native if encap.native is not None else content
        if data is None:
            raise BadInput(detail="detached SignedData without its content")
        certs = [c.chosen for c in signed["certificates"] if c.name == "certificate"]
        signers = list(signed["signer_infos"])
    except (ValueError, TypeError, KeyError) as exc:
        raise BadInput(detail=f"unreadable SignedData: {type(exc).__name__}") from None
    if not signers:
        return False
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.x509 import InvalidVersion

    try:
        return _signers_verify(signers, certs, data)
    except UnsupportedAlgorithm:  # a key or curve cryptography lacks: cannot verify
        return False
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, InvalidVersion) as exc:
        raise BadInput(detail=f"unreadable SignedData: {type(exc).__name__}") from None


def _signers_verify(
    signers: list[cms.SignerInfo], certs: list[x509.Certificate], data: bytes
) -> bool:
    from cryptography import x509 as cx509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    for si in signers:
        sid = si["sid"].chosen
        cert = next(
            (
                c
                for c in certs
                if c.issuer == sid["issuer"] and c.serial_number == sid["serial_number"].native
            ),
            None,
        )
        oid_name = si["digest_algorithm"]["algorithm"].native
        if cert is None or oid_name not in _HASHES:
            return False
        name = _HASHES[oid_name]
        digest = hashlib.new(name, data).digest()
        attrs = si["signed_attrs"]
        if len(attrs):
            found = [a["values"][0].native for a in attrs if a["type"].native == "message_digest"]
            if found != [digest]:
                return False
            tbs = attrs.untag().dump(force=True)
        else:
            tbs = data
        model = CertificateModel.from_der(cert.dump())
        if model.key_type == "SM2":
            if not verify_sm2(model.spki_der, tbs, si["signature"].native):
                return False
            continue
        key = cx509.load_der_x509_certificate(cert.dump()).public_key()
        h = getattr(hashes, name.upper())()
        try:
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(si["signature"].native, tbs, padding.PKCS1v15(), h)
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(si["signature"].native, tbs, ec.ECDSA(h))
            else:
                return False
        except InvalidSignature:
            return False
    return True


def verify_sm2(
    spki_der: bytes, message: bytes, signature_der: bytes, uid: bytes = sm2.DEFAULT_ID
) -> bool:
    """An SM2-with-SM3 signature (DER ``SEQUENCE{r, s}``) over ``message`` by the key in
    ``spki_der``, checked with gmalg (cryptography has no SM2): :func:`drivers.sm2.verify`."""
    try:
        point = sm2.point_from_spki(spki_der)
        r, s = sm2.signature_from_der(signature_der)
    except (ValueError, TypeError, KeyError):
        return False
    return sm2.verify(point, message, r, s, uid)
