"""Test doubles for what SoftHSM cannot do: report a locked PIN, a final try,
or a PIN to be changed. The double sits where the driver reads token flags
(its RawModule), so the real driver code and everything above it react."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from drivers.pkcs11.ckraw import RawModule, RawTokenInfo
from drivers.pkcs11.driver import Pkcs11Driver


class FlagsRaw:
    """Wraps the driver's real RawModule and ORs extra bits into token flags,
    for the tokens whose slot ids are given (all tokens when None)."""

    def __init__(self, inner: RawModule, extra: int, slot_ids: set[int] | None = None) -> None:
        self.inner = inner
        self.extra = extra
        self.slot_ids = slot_ids

    def token_info(self, slot_id: int) -> RawTokenInfo | None:
        info = self.inner.token_info(slot_id)
        if info is None or (self.slot_ids is not None and slot_id not in self.slot_ids):
            return info
        return RawTokenInfo(info.flags | self.extra, info.min_pin_len, info.max_pin_len)

    def close_all_sessions(self, slot_id: int) -> bool:
        return self.inner.close_all_sessions(slot_id)


@contextlib.contextmanager
def token_flags(
    driver: Pkcs11Driver, extra: int, slot_ids: set[int] | None = None
) -> Iterator[None]:
    """While active, the driver sees ``extra`` flag bits on the given slots."""
    real = driver._raw
    assert real is not None
    driver._raw = FlagsRaw(real, extra, slot_ids)  # type: ignore[assignment]
    try:
        yield
    finally:
        driver._raw = real
