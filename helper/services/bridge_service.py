"""What the native API does, independent of HTTP: list certificates, log in
with a challenge, sign data, log out — with the dialogs, login sessions,
limits and audit trail around each (docs/bridge-protocol.md).

The origin passed in is always the validated Origin header; nothing from a
message can change it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from drivers.errors import CertHelperError, PinIncorrect, PinLocked, register
from drivers.types import Pin, PinState, SignAlgorithm, TokenInfo
from helper import __version__
from helper.cms import build_signed_data
from helper.domain.pin_policy import INITIAL_PIN
from helper.errors import ConsentDenied
from helper.services.audit import AuditLog
from helper.services.prompts import (
    CertChoice,
    ConsentChoice,
    ConsentRequest,
    PinRequest,
    Prompter,
)
from helper.services.sessions import LoginSession, SessionTable
from helper.services.summary import certificate_summary, iso
from helper.services.tokens import CertEntry, TokenService, algorithm_for
from helper.verify import signed_bytes

if TYPE_CHECKING:
    from helper.services.renewal import RenewalService

log = logging.getLogger(__name__)

AUTH_FORMAT = "certhelper-auth:1"
MIN_CHALLENGE_BYTES = 32
MAX_CHALLENGE_CHARS = 1024
MAX_SIGN_BYTES = 48 * 1024
MAX_TEXT_CHARS = 4000
CACHE_TTL = 10.0
_JWS = {
    SignAlgorithm.RSA_PKCS1_SHA256: "RS256",
    SignAlgorithm.ECDSA_SHA256: "ES256",
    SignAlgorithm.ECDSA_SHA384: "ES384",
}


@register
class BadParams(CertHelperError):
    code = "bad_params"
    message_zh = "请求参数无效"
    message_en = "Invalid request parameters"
    exit_code = 2


@register
class NoCertificate(CertHelperError):
    code = "no_certificate"
    message_zh = "没有可用的证书，请插入 USB Key"
    message_en = "No usable certificate; insert your USB key"
    exit_code = 5


@register
class RateLimited(CertHelperError):
    code = "rate_limited"
    message_zh = "请求过于频繁，请稍后再试"
    message_en = "Too many requests; try again later"
    exit_code = 3


@register
class PinAttemptsExceeded(CertHelperError):
    code = "pin_attempts_exceeded"
    message_zh = "密码错误次数过多，请稍后再试，以免锁定 USB Key"
    message_en = "Too many wrong PINs from this site; wait before trying again"
    exit_code = 4


class SlidingLimit:
    """At most ``count`` events per ``window`` seconds per key."""

    def __init__(self, count: int, window: float) -> None:
        self.count, self.window = count, window
        self._events: dict[str, deque[float]] = defaultdict(deque)

    def _trim(self, key: str, now: float) -> deque[float]:
        q = self._events[key]
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def exceeded(self, key: str) -> bool:
        return len(self._trim(key, time.monotonic())) >= self.count

    def hit(self, key: str) -> None:
        now = time.monotonic()
        self._trim(key, now).append(now)


def b64decode_param(value: Any, name: str, *, urlsafe: bool = False) -> bytes:
    if not isinstance(value, str):
        raise BadParams(detail=f"'{name}' must be a base64 string")
    try:
        text = value + "=" * (-len(value) % 4)
        if urlsafe:
            return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadParams(detail=f"'{name}' is not valid base64") from None


def usable_for_login(entry: CertEntry, now) -> bool:  # type: ignore[no-untyped-def]
    m = entry.model
    return (
        m is not None
        and entry.private_key is not None
        and not entry.archived
        and m.signing_supported
        and m.is_signing_cert
        and m.not_after > now
        and m.not_before <= now
    )


def _raw_ecdsa(der_sig: bytes, key_bits: int | None) -> bytes:
    r, s = decode_dss_signature(der_sig)
    size = ((key_bits or 256) + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


@dataclass(frozen=True)
class BridgeSettings:
    dialog_timeout: float = 120.0
    #: dialogs one origin may open per minute, whatever the answers
    dialogs_per_minute: int = 30
    #: dialogs one origin may have refused (deny, cancel, timeout) per minute
    refusals_per_minute: int = 3
    pin_failures: int = 3
    pin_failure_window: float = 15 * 60


class BridgeService:
    def __init__(
        self,
        tokens: TokenService,
        prompter: Prompter,
        sessions: SessionTable,
        audit: AuditLog,
        settings: BridgeSettings | None = None,
    ) -> None:
        self.tokens = tokens
        self.prompter = prompter
        self.sessions = sessions
        self.audit = audit
        self.settings = settings or BridgeSettings()
        self._dialog_lock = asyncio.Lock()  # one dialog at a time, daemon-wide
        self._dialogs = SlidingLimit(self.settings.dialogs_per_minute, 60.0)
        self._refusals = SlidingLimit(self.settings.refusals_per_minute, 60.0)
        #: called (on the loop) after a login through our PIN dialog with the
        #: initial PIN 123456, so the desktop can ask the person to change it
        self.on_initial_pin: Callable[[TokenInfo], None] | None = None
        self._cache: tuple[float, list[CertEntry]] | None = None
        self._cache_lock = asyncio.Lock()
        self._pin_failures = SlidingLimit(
            self.settings.pin_failures, self.settings.pin_failure_window
        )
        #: certificate renewal for CA origins (helper.services.renewal); None = refused
        self.renewal: RenewalService | None = None

    # --- helpers -----------------------------------------------------------

    async def entries(self) -> list[CertEntry]:
        """Every certificate on every token, cached: reading and parsing them
        costs far more than a signature. Hot-plug events and token errors
        invalidate the cache; it also ages out after ``CACHE_TTL`` seconds."""
        cached = self._cache
        if cached is not None and time.monotonic() - cached[0] < CACHE_TTL:
            return cached[1]
        async with self._cache_lock:
            cached = self._cache
            if cached is not None and time.monotonic() - cached[0] < CACHE_TTL:
                return cached[1]
            views = await asyncio.to_thread(self.tokens.snapshot)
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
                await asyncio.to_thread(lambda d=d: d.list_tokens(rescan=True))
            except CertHelperError as exc:
                log.warning("rescan of %s failed: %s", d.module_path, exc.code)

    async def usable(self, cert_filter: str | None = None) -> list[CertEntry]:
        now = self.tokens.clock()
        found = [e for e in await self.entries() if usable_for_login(e, now)]
        if cert_filter is not None:
            f = cert_filter.strip().lower()
            if len(f) < 16 or any(ch not in "0123456789abcdef" for ch in f):
                raise BadParams(detail="'certificate' must be 16+ hex digits of a SHA-256")
            found = [e for e in found if e.model and e.model.sha256.startswith(f)]
        return found

    async def _dialog(self, origin: str, coro_factory):  # type: ignore[no-untyped-def]
        """One dialog at a time; a page whose prompts keep being refused, or that
        opens too many, is told to wait (rate_limited) instead of asking again."""
        if self._dialogs.exceeded(origin) or self._refusals.exceeded(origin):
            raise RateLimited(detail="dialogs")
        self._dialogs.hit(origin)
        async with self._dialog_lock:
            try:
                answer = await coro_factory()
            except CertHelperError:  # cancelled, timed out, failed
                self._refusals.hit(origin)
                raise
        if answer is ConsentChoice.DENY:
            self._refusals.hit(origin)
        return answer

    async def choose(
        self, origin: str, candidates: list[CertEntry], *, prefer_session: bool = True
    ) -> CertEntry:
        """One of ``candidates``: the only one, the one this origin's login uses
        (unless ``prefer_session`` is off), or the person's pick in the dialog."""
        if not candidates:
            raise NoCertificate()
        if len(candidates) == 1:
            return candidates[0]
        for s in self.sessions.for_origin(origin) if prefer_session else ():
            match = [c for c in candidates if c.model and c.model.sha256 == s.cert_sha256]
            if match:
                return match[0]
        now = self.tokens.clock()
        choices = [
            CertChoice(
                id=c.id,
                subject_cn=c.model.subject_cn if c.model else "",
                issuer_cn=c.model.issuer_cn if c.model else "",
                serial_hex=c.model.serial_hex if c.model else "",
                not_after=iso(c.model.not_after) if c.model else "",
                days_left=c.model.days_left(now) if c.model else 0,
                token_label=c.token.label,
            )
            for c in candidates
        ]
        chosen = await self._dialog(
            origin,
            lambda: self.prompter.pick_certificate(origin, origin.startswith("http:"), choices),
        )
        for c in candidates:
            if c.id == chosen:
                return c
        raise NoCertificate(detail="the picker returned an unknown certificate")

    async def ensure_login(self, origin: str, operation: str, entry: CertEntry) -> LoginSession:
        """The origin's login session on the entry's key, after the PIN dialog
        when there is none. ``just_logged_in`` tells which happened."""
        assert entry.model is not None
        serial = entry.token.serial
        session = self.sessions.get(serial, origin)
        driver = self.tokens.driver_for(entry.token)
        if session is not None and await self._on_worker(driver, driver.is_logged_in, serial):
            return session
        info = await self._check_pin_allowed(origin, entry)
        pin = None
        if not info.protected_auth_path:
            request = PinRequest(
                origin=origin,
                insecure_origin=origin.startswith("http:"),
                operation=operation,
                token_label=info.label,
                token_serial=serial,
                cert_subject=entry.model.subject_cn,
                pin_state=info.pin_state,
                pin_min_len=info.pin_min_len,
                pin_max_len=info.pin_max_len,
            )
            pin = await self._dialog(origin, lambda: self.prompter.ask_pin(request))
        session = await self._login(origin, entry, pin)
        if pin is not None and pin.equals(INITIAL_PIN) and self.on_initial_pin is not None:
            try:
                self.on_initial_pin(info)  # compared in memory only, never stored
            except Exception:
                log.exception("initial-PIN hook failed")
        return session

    async def login_with_page_pin(self, origin: str, entry: CertEntry, pin: Pin) -> LoginSession:
        """A PIN a legacy page collected itself (HEBCA ``Login``): the same
        guards as the dialog — locked keys refused untried, the per-origin cap
        on wrong PINs, one try, no retry."""
        await self._check_pin_allowed(origin, entry)
        return await self._login(origin, entry, pin)

    async def _check_pin_allowed(self, origin: str, entry: CertEntry) -> TokenInfo:
        if self._pin_failures.exceeded(origin):
            raise PinAttemptsExceeded()
        driver = self.tokens.driver_for(entry.token)
        info: TokenInfo = await asyncio.to_thread(driver.token_info, entry.token.serial)
        if info.pin_state is PinState.LOCKED:
            raise PinLocked(detail=info.label)
        return info

    async def _login(self, origin: str, entry: CertEntry, pin: Pin | None) -> LoginSession:
        assert entry.model is not None
        serial = entry.token.serial
        driver = self.tokens.driver_for(entry.token)
        try:
            await asyncio.to_thread(driver.login, serial, pin)
        except PinIncorrect:
            self._pin_failures.hit(origin)
            self.sessions.end(serial)
            raise
        new = LoginSession(origin, serial, entry.token.module_path, entry.model.sha256)
        new.just_logged_in = True
        displaced = self.sessions.start(new)
        if displaced is not None:
            log.info("login of %s on %s replaces %s's", origin, serial, displaced.origin)
        return new

    async def confirm_signing(
        self, origin: str, entry: CertEntry, data: bytes, text: str | None
    ) -> None:
        """The consent dialog that shows what a page wants signed; raises unless
        the person chose 允许一次."""
        assert entry.model is not None
        request = ConsentRequest(
            origin=origin,
            insecure_origin=origin.startswith("http:"),
            operation="sign.data",
            cert_subject=entry.model.subject_cn,
            cert_issuer=entry.model.issuer_cn,
            text=text,
            data_size=len(data),
            data_sha256=hashlib.sha256(data).hexdigest(),
            allow_always=False,
        )
        await self.confirm(origin, request)

    async def confirm(self, origin: str, request: ConsentRequest) -> None:
        """A consent dialog that raises unless the person chose 允许一次."""
        choice = await self._dialog(origin, lambda: self.prompter.ask_consent(request))
        if choice is not ConsentChoice.ONCE:
            raise ConsentDenied()

    def audit_event(self, origin: str, operation: str, cert: str | None, outcome: str) -> None:
        try:
            self.audit.append(origin=origin, operation=operation, certificate=cert, outcome=outcome)
        except OSError:
            log.exception("audit log not writable")

    async def audited(self, origin: str, operation: str, work):  # type: ignore[no-untyped-def]
        """Run ``work(cert)`` and write one audit entry with its outcome; ``work``
        puts the certificate's SHA-256 in ``cert[0]`` once it knows it."""
        cert: list[str | None] = [None]
        try:
            result = await work(cert)
        except CertHelperError as exc:
            if exc.code in ("token_absent", "key_not_found", "device_error"):
                self.invalidate()  # what we know of the tokens is out of date
            self.audit_event(origin, operation, cert[0], exc.code)
            raise
        except Exception:
            self.audit_event(origin, operation, cert[0], "internal_error")
            raise
        self.audit_event(origin, operation, cert[0], "ok")
        return result

    # --- methods -----------------------------------------------------------

    async def ask_connect(self, origin: str) -> ConsentChoice:
        """Consent for an origin nobody decided on yet (an https page)."""
        request = ConsentRequest(
            origin=origin, insecure_origin=origin.startswith("http:"), operation="connect"
        )
        try:
            choice = await self._dialog(origin, lambda: self.prompter.ask_consent(request))
        except CertHelperError as exc:
            self.audit_event(origin, "connect", None, exc.code)
            raise
        self.audit_event(origin, "connect", None, f"consent:{choice.value}")
        return choice

    async def list_certificates(self, origin: str) -> list[dict[str, Any]]:
        async def work(_cert: list[str | None]) -> list[dict[str, Any]]:
            now = self.tokens.clock()
            return [
                certificate_summary(e, now) | {"der": base64.b64encode(e.model.der).decode()}  # type: ignore[union-attr]
                for e in await self.usable()
            ]

        return await self.audited(origin, "certificates.list", work)

    async def authenticate(
        self, origin: str, challenge: Any, cert_filter: str | None
    ) -> dict[str, Any]:
        if not isinstance(challenge, str) or len(challenge) > MAX_CHALLENGE_CHARS:
            raise BadParams(detail="'challenge' must be a base64url string")
        if any(ch in "+/=" for ch in challenge.rstrip("=")) or " " in challenge:
            raise BadParams(detail="'challenge' must be base64url")
        if len(b64decode_param(challenge, "challenge", urlsafe=True)) < MIN_CHALLENGE_BYTES:
            raise BadParams(detail=f"'challenge' must carry >= {MIN_CHALLENGE_BYTES} bytes")

        async def work(cert: list[str | None]) -> dict[str, Any]:
            entry = await self.choose(origin, await self.usable(cert_filter))
            assert entry.model is not None
            cert[0] = entry.model.sha256
            algorithm = algorithm_for(entry.model)
            session = await self.ensure_login(origin, "auth.authenticate", entry)
            tbs = signed_bytes(origin, challenge)
            signature = await self.sign_raw(entry, tbs, algorithm)
            session.just_logged_in = False  # the login's signature is this one
            self.sessions.touch(session)
            if algorithm is not SignAlgorithm.RSA_PKCS1_SHA256:
                signature = _raw_ecdsa(signature, entry.model.key_bits)
            return {
                "format": AUTH_FORMAT,
                "certificate": base64.b64encode(entry.model.der).decode(),
                "algorithm": _JWS[algorithm],
                "signature": base64.b64encode(signature).decode(),
                "origin": origin,
                "app_version": __version__,
            }

        return await self.audited(origin, "auth.authenticate", work)

    async def sign_data(
        self,
        origin: str,
        data_b64: Any,
        fmt: Literal["raw", "cms"],
        text: Any,
        cert_filter: str | None,
    ) -> dict[str, Any]:
        data = b64decode_param(data_b64, "data")
        if len(data) > MAX_SIGN_BYTES:
            raise BadParams(detail=f"'data' is larger than {MAX_SIGN_BYTES} bytes")
        if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT_CHARS):
            raise BadParams(detail=f"'text' must be a string of at most {MAX_TEXT_CHARS} chars")

        async def work(cert: list[str | None]) -> dict[str, Any]:
            candidates = await self.usable(cert_filter)
            if cert_filter is None:
                in_use = {s.cert_sha256 for s in self.sessions.for_origin(origin)}
                preferred = [c for c in candidates if c.model and c.model.sha256 in in_use]
                candidates = preferred or candidates
            entry = await self.choose(origin, candidates)
            assert entry.model is not None
            cert[0] = entry.model.sha256
            algorithm = algorithm_for(entry.model)
            await self.confirm_signing(origin, entry, data, text)
            session = await self.ensure_login(origin, "sign.data", entry)
            if fmt == "raw":
                signature = await self.sign_raw(entry, data, algorithm)
            else:
                signature = await self.sign_cms(entry, data, algorithm)
            self.sessions.touch(session)
            return {
                "format": fmt,
                "signature": base64.b64encode(signature).decode(),
                "certificate": base64.b64encode(entry.model.der).decode(),
                "algorithm": _JWS.get(algorithm, algorithm.value),
            }

        return await self.audited(origin, "sign.data", work)

    @staticmethod
    async def _on_worker(driver, fn, *args):  # type: ignore[no-untyped-def]
        """Run a driver call on its worker thread without an extra thread hop."""
        submit = getattr(driver, "submit", None)
        if submit is None:
            return await asyncio.to_thread(fn, *args)
        return await asyncio.wrap_future(submit(fn, *args))

    async def sign_raw(self, entry: CertEntry, data: bytes, algorithm: SignAlgorithm) -> bytes:
        driver = self.tokens.driver_for(entry.token)
        return await self._on_worker(
            driver, driver.sign, entry.token.serial, entry.obj.key_id, data, algorithm
        )

    async def sign_cms(
        self, entry: CertEntry, data: bytes, algorithm: SignAlgorithm, *, detached: bool = True
    ) -> bytes:
        assert entry.model is not None
        driver = self.tokens.driver_for(entry.token)

        def signer(tbs: bytes) -> bytes:
            return driver.sign(entry.token.serial, entry.obj.key_id, tbs, algorithm)

        return await asyncio.to_thread(
            lambda: build_signed_data(
                data, entry.model.der, signer, algorithm=algorithm, detached=detached
            )
        )

    async def logout(self, origin: str) -> None:
        async def work(_cert: list[str | None]) -> None:
            for s in self.sessions.for_origin(origin):
                await self.end_session(s.token_serial)

        await self.audited(origin, "auth.logout", work)

    async def end_session(self, serial: str) -> None:
        session = self.sessions.end(serial)
        if session is None:
            return
        for d in self.tokens.drivers:
            if d.module_path == session.module_path:
                try:
                    await asyncio.to_thread(d.logout, serial)
                except CertHelperError as exc:
                    log.debug("logout %s: %s", serial, exc.code)

    async def expire_sessions(self) -> int:
        expired = self.sessions.expired()
        for s in expired:
            log.info("login session of %s on %s idle: logging out", s.origin, s.token_serial)
            await self.end_session(s.token_serial)
        return len(expired)

    async def token_removed(self, serial: str) -> None:
        self.invalidate()
        self.sessions.end(serial)  # the driver already dropped the login

    async def token_inserted(self, serial: str) -> None:
        self.invalidate()

    async def expiring(self, serial: str | None = None) -> list[dict[str, Any]]:
        """certificate.expiring event payloads (warning, urgent or expired)."""
        now = self.tokens.clock()
        out = []
        for e in await self.entries():
            if e.model is None or e.private_key is None or e.archived:
                continue
            if serial is not None and e.token.serial != serial:
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
