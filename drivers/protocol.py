"""What the helper layer needs from a token driver (the real one or a test double)."""

from __future__ import annotations

from typing import Protocol

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


class TokenDriver(Protocol):
    module_path: str
    library_description: str
    manufacturer: str

    def list_tokens(self, *, rescan: bool = False) -> list[TokenInfo]: ...
    def token_info(self, serial: str) -> TokenInfo: ...
    def read_objects(self, serial: str) -> TokenContents: ...
    def login(self, serial: str, pin: Pin | None) -> None: ...
    def logout(self, serial: str) -> None: ...
    def is_logged_in(self, serial: str) -> bool: ...
    def sign(self, serial: str, key_id: bytes, data: bytes, algorithm: SignAlgorithm) -> bytes: ...
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
