"""What the helper layer needs from a token driver — the only face of a key
family that services see (PKCS#11 today, SKF next, test doubles alike).

Every method is blocking and thread-safe: the driver hands the work to its
library's single worker thread (``worker``) and waits. Async code never calls
these directly; it awaits them through :class:`drivers.aio.AsyncDriver`, which
submits them to that worker — the one async way to reach a key.

What a family cannot do is declared in :class:`Capabilities`, so callers ask
instead of guessing from the module's name or catching surprises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from drivers.sm2 import DEFAULT_ID
from drivers.types import (
    CertObject,
    KeyPairSpec,
    NewCertificate,
    Pin,
    PublicKeyObject,
    SignAlgorithm,
    TokenContents,
    TokenInfo,
)
from drivers.worker import Worker


@dataclass(frozen=True)
class Capabilities:
    """What a driver family (or one loaded library) can do."""

    #: signature algorithms the driver can produce
    algorithms: frozenset[SignAlgorithm]
    #: ``TokenInfo.pin_retries_left`` is exact (SKF's GetPINInfo), not only flags
    pin_retry_counts: bool = False
    #: ``TokenInfo.pin_is_default`` says whether the PIN is still the initial one
    default_pin_flag: bool = False
    #: key types ``generate_key_pair`` can make ("RSA", "EC", "SM2")
    key_generation: frozenset[str] = frozenset()
    #: ``write_certificate`` is available
    certificate_writes: bool = False
    #: a key has one certificate slot and the family cannot relabel or delete a certificate
    #: alone (SKF): ``write_certificate`` for a key that has a certificate replaces it in
    #: place (``archive_label`` cannot apply), and the certificate of another key that the
    #: new one renews is then reported archived by the driver itself (superseded), never
    #: removed, since removing it would delete its key
    one_certificate_per_key: bool = False
    #: ``write_certificate`` needs the user logged in (SKF_ImportCertificate does)
    writes_need_login: bool = False
    #: the library reports insertion and removal itself (else: poll list_tokens)
    device_events: bool = False


class TokenDriver(Protocol):
    #: the family's registry name: "pkcs11", "skf"
    family: str
    module_path: str
    library_description: str
    manufacturer: str
    #: the library's one thread; its timeout is how long one key operation may take
    worker: Worker

    @property
    def capabilities(self) -> Capabilities: ...

    def list_tokens(self, *, rescan: bool = False) -> list[TokenInfo]: ...
    def token_info(self, serial: str) -> TokenInfo: ...
    def read_objects(self, serial: str) -> TokenContents: ...
    def login(self, serial: str, pin: Pin | None) -> None: ...
    def logout(self, serial: str) -> None: ...
    def is_logged_in(self, serial: str) -> bool:
        """From the driver's own bookkeeping (no library call, any thread)."""
        ...

    def sign(
        self,
        serial: str,
        key_id: bytes,
        data: bytes,
        algorithm: SignAlgorithm,
        *,
        sm2_id: bytes = DEFAULT_ID,
    ) -> bytes:
        """A signature over ``data`` (hashed by the driver, never by the caller):
        PKCS#1 v1.5 for RSA, DER ``SEQUENCE{r, s}`` for ECDSA and SM2. For SM2 the
        driver computes e = SM3(Z ‖ data) with ``sm2_id`` and the key's public key."""
        ...

    def change_pin(self, serial: str, old: Pin, new: Pin) -> None: ...
    def public_keys(self, serial: str) -> list[PublicKeyObject]: ...
    def generate_key_pair(self, serial: str, spec: KeyPairSpec, label: str) -> PublicKeyObject: ...
    def write_certificate(
        self,
        serial: str,
        new: NewCertificate,
        *,
        replace: CertObject | None = None,
        archive_label: str | None = None,
    ) -> None: ...
    def close(self) -> None: ...
