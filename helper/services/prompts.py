"""What the bridge asks a person, and the prompter interface that answers.

The bridge never reads a PIN from the network: it asks a :class:`Prompter`.
The real one (helper.ui.prompter.TkPrompter) runs a native dialog in a child
process; tests inject doubles through the app factory. Nothing in config or
the API can substitute a PIN.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from drivers.types import Pin, PinState


class ConsentChoice(StrEnum):
    ONCE = "once"
    ALWAYS = "always"
    DENY = "deny"


@dataclass(frozen=True)
class PinRequest:
    origin: str
    insecure_origin: bool  # plain http: the dialog marks it 不安全 (not secure)
    operation: str  # "auth.authenticate", "sign.data", …
    token_label: str
    token_serial: str
    cert_subject: str
    pin_state: PinState  # count_low / final_try are shown as warnings
    pin_min_len: int | None = None
    pin_max_len: int | None = None
    #: exact tries, where the key tells them (SKF): shown once some were spent
    pin_retries_left: int | None = None
    pin_max_retries: int | None = None
    #: set when the PIN just typed was wrong: 「密码错误，还可以尝试 N 次」 (the dialog asks again)
    retry_note: str | None = None


@dataclass(frozen=True)
class ConsentRequest:
    origin: str
    insecure_origin: bool
    operation: str  # "certificates.list", "auth.authenticate", "sign.data", "renewal.*"
    cert_subject: str | None = None
    cert_issuer: str | None = None
    #: for sign.data: the text the page says it signs (shown), else size and digest
    text: str | None = None
    #: the codec that turned text into the signed bytes ("UTF-8", "GBK")
    text_encoding: str | None = None
    data_size: int | None = None
    data_sha256: str | None = None
    #: whether "always" may be offered (never for sign.data: each signature is shown)
    allow_always: bool = True
    #: more (label, value) rows the dialog shows, e.g. what a renewal will write
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CertChoice:
    id: str
    subject_cn: str
    issuer_cn: str
    serial_hex: str
    not_after: str  # ISO 8601 UTC
    days_left: int
    token_label: str


class Prompter(Protocol):
    """Each method raises helper.errors.Cancelled when the person cancels and
    helper.errors.UserTimeout when nobody answers in time."""

    async def ask_pin(self, request: PinRequest) -> Pin: ...

    async def ask_consent(self, request: ConsentRequest) -> ConsentChoice: ...

    async def pick_certificate(
        self, origin: str, insecure_origin: bool, choices: list[CertChoice]
    ) -> str:
        """Return the chosen CertChoice.id."""
        ...
