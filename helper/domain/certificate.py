"""What the helper knows about one X.509 certificate, read once from its DER.

Parsing goes through asn1crypto rather than cryptography because certificates on
Chinese USB keys are often SM2 (a curve cryptography cannot load) or slightly
odd; only the fields used here are touched, so a malformed extension we do not
read cannot make the whole certificate unreadable. cryptography is used only to
load RSA/EC public keys.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from asn1crypto import core, keys
from asn1crypto import x509 as asn1_x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_der_public_key

from helper.domain import expiry
from helper.domain.expiry import ExpiryState
from helper.errors import CertificateUnreadable, SigningUnsupported

__all__ = [
    "HEBCA_UNIQUE_ID_OID",
    "SM2_CURVE_OID",
    "CertificateModel",
    "rfc4514_escape",
]

#: HEBCA (河北 CA) per-holder unique identifier extension
HEBCA_UNIQUE_ID_OID = "1.2.156.112586.1.4"
#: sm2p256v1; also seen (wrongly) as the SPKI algorithm OID itself
SM2_CURVE_OID = "1.2.156.10197.1.301"

_ATTR_SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.6": "C",
    "1.2.840.113549.1.9.1": "E",
    "2.5.4.5": "SERIALNUMBER",
    "2.5.4.42": "G",
    "2.5.4.4": "SN",
    "2.5.4.12": "T",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}

_EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "server_auth",
    "1.3.6.1.5.5.7.3.2": "client_auth",
    "1.3.6.1.5.5.7.3.3": "code_signing",
    "1.3.6.1.5.5.7.3.4": "email_protection",
    "1.3.6.1.5.5.7.3.5": "ipsec_end_system",
    "1.3.6.1.5.5.7.3.6": "ipsec_tunnel",
    "1.3.6.1.5.5.7.3.7": "ipsec_user",
    "1.3.6.1.5.5.7.3.8": "time_stamping",
    "1.3.6.1.5.5.7.3.9": "ocsp_signing",
    "1.3.6.1.5.5.7.3.36": "document_signing",
    "2.5.29.37.0": "any_extended_key_usage",
    "1.3.6.1.4.1.311.20.2.2": "smart_card_logon",
    "1.3.6.1.4.1.311.10.3.12": "document_signing_ms",
    "1.3.6.1.4.1.311.10.3.4": "encrypting_file_system",
}

#: KeyUsage bit names in RFC 5280 order (key_usage keeps this order)
KEY_USAGE_NAMES = (
    "digital_signature",
    "non_repudiation",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)

# curve OID -> (name, bits)
_CURVES = {
    "1.2.840.10045.3.1.7": ("secp256r1", 256),
    "1.3.132.0.34": ("secp384r1", 384),
    "1.3.132.0.35": ("secp521r1", 521),
    "1.3.132.0.10": ("secp256k1", 256),
    "1.2.840.10045.3.1.1": ("secp192r1", 192),
    "1.3.132.0.33": ("secp224r1", 224),
    "1.3.36.3.3.2.8.1.1.7": ("brainpoolP256r1", 256),
    "1.3.36.3.3.2.8.1.1.11": ("brainpoolP384r1", 384),
    "1.3.36.3.3.2.8.1.1.13": ("brainpoolP512r1", 512),
    SM2_CURVE_OID: ("sm2p256v1", 256),
}
_SIGNABLE_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})

_RSA_OIDS = frozenset({"1.2.840.113549.1.1.1", "1.2.840.113549.1.1.10"})
_EC_OID = "1.2.840.10045.2.1"
_OTHER_KEY_TYPES = {
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
    "1.2.840.10040.4.1": "DSA",
}

_TEXT_TYPES = (
    core.UTF8String,
    core.PrintableString,
    core.IA5String,
    core.BMPString,
    core.VisibleString,
    core.UniversalString,
    core.TeletexString,
)

_DN_SPECIALS = frozenset('"+,;<>\\')


def rfc4514_escape(value: str) -> str:
    """Escape an attribute value per RFC 4514 §2.4; non-ASCII text is kept as-is."""
    last = len(value) - 1
    out = []
    for i, ch in enumerate(value):
        if ch == "\0":
            out.append("\\00")
        elif ch in _DN_SPECIALS or (i == 0 and ch in "# ") or (i == last and ch == " "):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True)
class _Attr:
    short: str
    value: str
    #: value is RFC 4514 "#<hex of BER>" form (not a string), so it must not be escaped
    is_hex: bool = False

    def rfc4514(self) -> str:
        return f"{self.short}={self.value if self.is_hex else rfc4514_escape(self.value)}"


@dataclass(frozen=True)
class _NameParts:
    attrs: list[tuple[str, str]]
    cn: str
    dn: str


def _attr_value(value: Any) -> tuple[str, bool]:
    try:
        native = value.native
    except (ValueError, TypeError, UnicodeError):
        native = None
    if isinstance(native, str):
        return native, False
    return "#" + value.dump().hex(), True


def _read_name(name: asn1_x509.Name) -> _NameParts:
    rdns: list[list[_Attr]] = []
    for rdn in name.chosen:
        group = []
        for atv in rdn:
            oid = atv["type"].dotted
            text, is_hex = _attr_value(atv["value"])
            group.append(_Attr(_ATTR_SHORT_NAMES.get(oid, oid), text, is_hex))
        rdns.append(group)
    flat = [a for group in rdns for a in group]
    cn = next((a.value for a in flat if a.short == "CN" and not a.is_hex), "")
    dn = ",".join("+".join(a.rfc4514() for a in group) for group in reversed(rdns))
    return _NameParts([(a.short, a.value) for a in flat], cn, dn)


def _utc(value: Any, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise CertificateUnreadable(detail=f"unsupported {what} date: {value!r}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _decode_text_value(raw: bytes) -> str | None:
    """Decode DER holding one string (or an OCTET STRING of UTF-8 text); None if not."""
    try:
        obj = core.load(raw, strict=True)
        if isinstance(obj, _TEXT_TYPES):
            text = obj.native
            return text if isinstance(text, str) else None
        if isinstance(obj, core.OctetString):
            text = obj.native.decode("utf-8")
            return text if text.isprintable() else None
    except (ValueError, TypeError, UnicodeError):
        return None
    return None


class _AnySpki(core.Sequence):
    """SubjectPublicKeyInfo with an opaque key, so unknown algorithms (SM2) still parse.

    asn1crypto's own PublicKeyInfo raises KeyError for an algorithm OID it does not know.
    """

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("algorithm", keys.PublicKeyAlgorithm),
        ("public_key", core.OctetBitString),
    ]


@dataclass(frozen=True)
class _KeyInfo:
    key_type: str
    key_bits: int | None
    curve: str | None


def _read_key(spki_der: bytes) -> _KeyInfo:
    spki = _AnySpki.load(spki_der, strict=True)
    alg = spki["algorithm"]
    oid = alg["algorithm"].dotted
    if oid in _RSA_OIDS:
        rsa = keys.RSAPublicKey.load(spki["public_key"].native, strict=True)
        modulus = rsa["modulus"].native
        return _KeyInfo("RSA", modulus.bit_length(), None)
    if oid == SM2_CURVE_OID:
        return _KeyInfo("SM2", 256, "sm2p256v1")
    if oid == _EC_OID:
        params = alg["parameters"]
        if isinstance(params, core.Void) or params.name != "named":
            return _KeyInfo("EC", None, None)  # implicit or explicit domain parameters
        curve_oid = params.chosen.dotted
        name, bits = _CURVES.get(curve_oid, (curve_oid, None))
        if curve_oid == SM2_CURVE_OID:
            return _KeyInfo("SM2", bits, name)
        return _KeyInfo("EC", bits, name)
    return _KeyInfo(_OTHER_KEY_TYPES.get(oid, "unknown"), None, None)


class _OpaqueExtension(core.Sequence):
    """An Extension whose value is left as bytes.

    asn1crypto's own Extension parses the value of every extension it knows while
    iterating, so a malformed extension we never use would make the certificate fail.
    """

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("extn_id", core.ObjectIdentifier),
        ("critical", core.Boolean, {"default": False}),
        ("extn_value", core.OctetString),
    ]


class _OpaqueExtensions(core.SequenceOf):
    _child_spec = _OpaqueExtension


@dataclass(frozen=True)
class _Extensions:
    key_usage: tuple[str, ...] = ()
    extended_key_usage: tuple[str, ...] = ()
    is_ca: bool = False
    hebca_unique_id: str | None = None


def _read_extensions(tbs: Any) -> _Extensions:
    exts = tbs["extensions"]
    if isinstance(exts, core.Void):
        return _Extensions()
    found: dict[str, Any] = {}
    for ext in _OpaqueExtensions.load(exts.untag().dump(), strict=True):
        oid = ext["extn_id"].dotted
        raw = ext["extn_value"].native
        try:
            if oid == "2.5.29.15":
                bits = asn1_x509.KeyUsage.load(raw).native
                found["key_usage"] = tuple(u for u in KEY_USAGE_NAMES if u in bits)
            elif oid == "2.5.29.37":
                ekus = asn1_x509.ExtKeyUsageSyntax.load(raw)
                found["extended_key_usage"] = tuple(
                    _EKU_NAMES.get(p.dotted, p.dotted) for p in ekus
                )
            elif oid == "2.5.29.19":
                found["is_ca"] = bool(asn1_x509.BasicConstraints.load(raw)["ca"].native)
            elif oid == HEBCA_UNIQUE_ID_OID:
                text = _decode_text_value(raw)
                found["hebca_unique_id"] = raw.hex() if text is None else text
        except (ValueError, TypeError, KeyError) as exc:
            raise CertificateUnreadable(detail=f"malformed extension {oid}: {exc}") from exc
    return _Extensions(**found)


def _signing_support(key: _KeyInfo) -> tuple[bool, str | None]:
    if key.key_type == "RSA":
        return True, None
    if key.key_type == "EC" and key.curve in _SIGNABLE_CURVES:
        return True, None
    if key.key_type == "SM2":  # signed by the key's driver when it speaks SM2 (SKF, vendors)
        return True, None
    if key.key_type == "EC":
        curve = key.curve or "explicit parameters"
        return False, (
            f"暂不支持该椭圆曲线 ({curve}) 的证书签名 (signing with curve {curve} is not supported)"
        )
    return False, (
        f"暂不支持 {key.key_type} 类型证书签名 "
        f"(signing with {key.key_type} certificates is not supported)"
    )


def _serial_hex(serial_int: int, encoded: bytes) -> str:
    if serial_int < 0:  # not allowed by RFC 5280, but shown as the DER two's complement
        return encoded.hex().upper()
    text = f"{serial_int:X}"
    return text if len(text) % 2 == 0 else "0" + text


@dataclass(frozen=True)
class CertificateModel:
    """A parsed certificate. Build with :meth:`from_der`."""

    der: bytes = field(repr=False)
    subject: list[tuple[str, str]]
    subject_cn: str
    subject_dn: str
    issuer: list[tuple[str, str]]
    issuer_cn: str
    issuer_dn: str
    serial_hex: str
    serial_int: int
    not_before: datetime
    not_after: datetime
    key_type: str
    key_bits: int | None
    curve: str | None
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[str, ...]
    is_ca: bool
    sha256: str
    sha1: str
    hebca_unique_id: str | None
    spki_der: bytes = field(repr=False)
    signing_supported: bool
    signing_note: str | None

    @classmethod
    def from_der(cls, der: bytes) -> CertificateModel:
        """Parse DER; raise :class:`CertificateUnreadable` if it is not an X.509 certificate.

        Bytes after a complete certificate (zero padding some tokens store in
        CKA_VALUE) are ignored; ``der`` is then the certificate's own encoding.
        """
        if not isinstance(der, bytes | bytearray | memoryview):
            raise CertificateUnreadable(detail=f"expected bytes, got {type(der).__name__}")
        data = bytes(der)
        if not data:
            raise CertificateUnreadable(detail="empty certificate value")
        try:
            return cls._parse(data)
        except CertificateUnreadable:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise CertificateUnreadable(detail=str(exc) or type(exc).__name__) from exc

    @classmethod
    def _parse(cls, data: bytes) -> CertificateModel:
        cert = asn1_x509.Certificate.load(data)
        own_der = cert.dump()
        tbs = cert["tbs_certificate"]
        subject = _read_name(tbs["subject"])
        issuer = _read_name(tbs["issuer"])
        serial_field = tbs["serial_number"]
        serial_int = serial_field.native
        validity = tbs["validity"]
        not_before = _utc(validity["not_before"].native, "not-before")
        not_after = _utc(validity["not_after"].native, "not-after")
        spki_der = tbs["subject_public_key_info"].dump()
        key = _read_key(spki_der)
        exts = _read_extensions(tbs)
        # Touch the outer fields too, so a certificate truncated after the TBS fails here.
        cert["signature_algorithm"]["algorithm"].dotted  # noqa: B018
        cert["signature_value"].contents  # noqa: B018
        supported, note = _signing_support(key)
        return cls(
            der=own_der,
            subject=subject.attrs,
            subject_cn=subject.cn,
            subject_dn=subject.dn,
            issuer=issuer.attrs,
            issuer_cn=issuer.cn,
            issuer_dn=issuer.dn,
            serial_hex=_serial_hex(serial_int, serial_field.contents),
            serial_int=serial_int,
            not_before=not_before,
            not_after=not_after,
            key_type=key.key_type,
            key_bits=key.key_bits,
            curve=key.curve,
            key_usage=exts.key_usage,
            extended_key_usage=exts.extended_key_usage,
            is_ca=exts.is_ca,
            sha256=hashlib.sha256(own_der).hexdigest(),
            sha1=hashlib.sha1(own_der).hexdigest(),
            hebca_unique_id=exts.hebca_unique_id,
            spki_der=spki_der,
            signing_supported=supported,
            signing_note=note,
        )

    @property
    def is_signing_cert(self) -> bool:
        """Usable for signatures: no key-usage extension, or one allowing signing."""
        if not self.key_usage:
            return True
        return "digital_signature" in self.key_usage or "non_repudiation" in self.key_usage

    @property
    def is_encryption_cert(self) -> bool:
        """An encryption-only certificate (the HEBCA "crypt" half of a key pair)."""
        if self.is_signing_cert:
            return False
        wanted = ("key_encipherment", "data_encipherment", "key_agreement")
        return any(u in self.key_usage for u in wanted)

    @property
    def usage(self) -> str:
        """ "sign", "enc" (the encryption half of a 双证书 pair) or "other"."""
        if self.is_signing_cert:
            return "sign"
        return "enc" if self.is_encryption_cert else "other"

    def public_key(self) -> PublicKeyTypes:
        """The cryptography public key; :class:`SigningUnsupported` for SM2 (cryptography
        cannot load SM2 keys: use :attr:`spki_der`) and the unknown."""
        if self.key_type in ("SM2", "unknown"):
            raise SigningUnsupported(detail=self.signing_note or f"{self.key_type} public key")
        try:
            return load_der_public_key(self.spki_der)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise SigningUnsupported(detail=str(exc)) from exc

    def days_left(self, now: datetime) -> int:
        return expiry.days_left(self.not_after, now)

    def expiry_state(self, now: datetime) -> ExpiryState:
        return expiry.expiry_state(self.not_after, now)
