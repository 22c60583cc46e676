"""The certificates on the inserted keys, as the daemon's transports see them.

Reading and parsing every certificate costs far more than a signature, so the
list is cached; hot-plug events and token errors invalidate it, and it ages
out after ``CACHE_TTL`` seconds. Which entries may be used is the one rule on
:class:`~helper.services.tokens.CertEntry` (``in_use``, ``usable``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from drivers.aio import AsyncDriver
from drivers.errors import CertHelperError, register
from drivers.types import SignAlgorithm
from helper.errors import SigningUnsupported
from helper.services.params import sha256_prefix
from helper.services.summary import iso
from helper.services.tokens import CertEntry, TokenService, algorithm_for

log = logging.getLogger(__name__)

CACHE_TTL = 10.0


@register
class NoCertificate(CertHelperError):
    code = "no_certificate"
    message_zh = "没有可用的证书，请插入 USB Key"
    message_en = "No usable certificate; insert your USB key"
    exit_code = 5


class CertificateCache:
    def __init__(self, tokens: TokenService) -> None:
        self.tokens = tokens
        self._cache: tuple[float, list[CertEntry]] | None = None
        self._lock = asyncio.Lock()

    async def entries(self) -> list[CertEntry]:
        """Every certificate object on every token (archived and unusable ones too)."""
        cached = self._cache
        if cached is not None and time.monotonic() - cached[0] < CACHE_TTL:
            return cached[1]
        async with self._lock:
            cached = self._cache
            if cached is not None and time.monotonic() - cached[0] < CACHE_TTL:
                return cached[1]
            views = await self.tokens.snapshot_async()
            entries = [c for v in views for c in v.certificates]
            self._cache = (time.monotonic(), entries)
            return entries

    def invalidate(self) -> None:
        self._cache = None

    async def rescan(self) -> None:
        """Re-enumerate the keys (HEBCA ``ReloadDevice``)."""
        self.invalidate()
        for d in self.tokens.drivers:
            try:
                await AsyncDriver(d).list_tokens(rescan=True)
            except CertHelperError as exc:
                log.warning("rescan of %s failed: %s", d.module_path, exc.code)

    async def in_use(self) -> list[CertEntry]:
        """Certificates with their key on a token, archived ones left out."""
        return [e for e in await self.entries() if e.in_use]

    async def usable(self, cert_filter: str | None = None) -> list[CertEntry]:
        """What may be offered for login and signing now, optionally only the
        certificates whose SHA-256 starts with ``cert_filter``."""
        now = self.tokens.clock()
        found = [e for e in await self.entries() if e.usable(now)]
        if cert_filter is not None:  # named: kept, so its signing_unsupported is told
            prefix = sha256_prefix(cert_filter)
            return [e for e in found if e.model and e.model.sha256.startswith(prefix)]
        # an SM2 certificate on a PKCS#11 module without SM2 is listed, never offered
        return [e for e in found if e.driver_signs]

    def algorithm(self, entry: CertEntry, *, legacy_sha1: bool = False) -> SignAlgorithm:
        """The signature algorithm for the entry's key, when its driver can make it."""
        assert entry.model is not None
        algorithm = algorithm_for(entry.model, legacy_sha1=legacy_sha1)
        driver = self.tokens.driver_for(entry.token)
        if algorithm not in driver.capabilities.algorithms:
            raise SigningUnsupported(detail=f"{algorithm.value} ({driver.family})")
        return algorithm

    async def expiring(self, serial: str | None = None) -> list[dict[str, Any]]:
        """certificate.expiring event payloads (warning, urgent or expired)."""
        now = self.tokens.clock()
        out = []
        for e in await self.in_use():
            if e.model is None or (serial is not None and e.token.serial != serial):
                continue
            state = e.model.expiry_state(now)
            if state.value == "ok":
                continue
            out.append(
                {
                    "id": e.id,
                    "sha256": e.model.sha256,
                    "subject_cn": e.model.subject_cn,
                    "not_after": iso(e.model.not_after),
                    "days_left": e.model.days_left(now),
                    "expiry_state": state.value,
                }
            )
        return out
