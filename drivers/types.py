"""Plain data passed up from the driver: tokens, objects, PIN state, secrets."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class PinState(StrEnum):
    """The user PIN's state as the token flags report it (worst first)."""

    LOCKED = "locked"
    FINAL_TRY = "final_try"
    COUNT_LOW = "count_low"
    TO_BE_CHANGED = "to_be_changed"
    OK = "ok"


class SignAlgorithm(StrEnum):
    """Signature algorithms the driver offers; the hash is always computed in Python."""

    RSA_PKCS1_SHA256 = "rsa-pkcs1-sha256"
    RSA_PKCS1_SHA1 = "rsa-pkcs1-sha1"
    ECDSA_SHA256 = "ecdsa-sha256"
    ECDSA_SHA384 = "ecdsa-sha384"
    #: SM2 over e = SM3(Z ‖ M) with the signer's ID (GM/T 0009); DER SEQUENCE{r, s}
    SM2_SM3 = "sm2-sm3"

    @property
    def hash_name(self) -> str:
        """The hashlib name of the digest this algorithm signs (sha256, sha1, sha384, sm3)."""
        return self.value.rsplit("-", 1)[1]


class Pin:
    """A PIN in memory. Its repr and str never show the value.

    Only the driver calls :meth:`reveal`, at the PKCS#11 boundary. Comparison
    with a known constant (the initial PIN) goes through :meth:`equals`.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("PIN must be str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def equals(self, other: str | Pin) -> bool:
        import hmac

        o = other.reveal() if isinstance(other, Pin) else other
        return hmac.compare_digest(self._value.encode(), o.encode())

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return "Pin(***)"

    __str__ = __repr__

    def __reduce__(self):  # never pickle a PIN
        raise TypeError("a Pin cannot be pickled")


@dataclass(frozen=True)
class TokenInfo:
    """One initialised token in one slot of one module."""

    module_path: str
    slot_id: int
    label: str
    serial: str
    manufacturer: str
    model: str
    flags: int
    pin_state: PinState
    pin_min_len: int | None = None
    pin_max_len: int | None = None
    protected_auth_path: bool = False
    login_required: bool = True
    #: the driver family that reads this token ("pkcs11", "skf")
    family: str = "pkcs11"
    #: exact PIN tries, where the family can tell (Capabilities.pin_retry_counts)
    pin_retries_left: int | None = None
    pin_max_retries: int | None = None
    #: the PIN is still the issuer's initial one (Capabilities.default_pin_flag)
    pin_is_default: bool | None = None


@dataclass(frozen=True)
class CertObject:
    """A certificate object as stored; ``value`` may be anything, even not DER."""

    key_id: bytes
    label: str
    value: bytes


@dataclass(frozen=True)
class KeyObject:
    """A private key object (never its value: keys are not extractable)."""

    key_id: bytes
    label: str
    key_type: str  # "RSA", "EC", or the PKCS#11 key-type name / number for others
    key_bits: int | None = None  # modulus size or curve size when the token tells
    ec_params: bytes | None = None  # DER of CKA_EC_PARAMS for EC keys
    #: seen only through its public-key twin (private keys hide until login)
    from_public_key: bool = False


@dataclass(frozen=True)
class TokenContents:
    token: TokenInfo
    certificates: list[CertObject] = field(default_factory=list)
    private_keys: list[KeyObject] = field(default_factory=list)


@dataclass(frozen=True)
class PublicKeyObject:
    """A public-key object on a token, as DER SubjectPublicKeyInfo."""

    key_id: bytes
    label: str
    spki: bytes


@dataclass(frozen=True)
class KeyPairSpec:
    """A key pair to generate: ``"RSA"`` with ``bits``, or ``"EC"`` with ``ec_params``
    (the DER CKA_EC_PARAMS of a named curve, i.e. its OID)."""

    key_type: str
    bits: int | None = None
    ec_params: bytes | None = None


@dataclass(frozen=True)
class NewCertificate:
    """A certificate to write to a token, with the attributes PKCS#11 stores beside it."""

    key_id: bytes
    label: str
    der: bytes
    subject: bytes  # DER Name
    issuer: bytes  # DER Name
    serial_number: bytes  # DER INTEGER (tag and length included), as CKA_SERIAL_NUMBER wants

    @classmethod
    def from_der(cls, der: bytes, *, key_id: bytes, label: str) -> NewCertificate:
        """Take subject, issuer and serial number from the certificate itself."""
        from asn1crypto import x509

        tbs = x509.Certificate.load(der)["tbs_certificate"]
        return cls(
            key_id=key_id,
            label=label,
            der=der,
            subject=tbs["subject"].dump(),
            issuer=tbs["issuer"].dump(),
            serial_number=tbs["serial_number"].dump(),
        )
