"""The gate: what every transport (native API, HEBCA endpoint, later the
extension channel) does on a page's behalf, in one place.

Choose a certificate (the one ``usable`` rule), ensure the origin's login on
the key (our PIN dialog, or a page's PIN where configured), confirm with the
person, sign, audit every outcome, and keep the limits. A transport parses its
own wire format and calls these; it never talks to a driver or a dialog itself.

The ``origin`` passed in is always the validated Origin of the connection;
nothing in a message can change it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from drivers.aio import AsyncDriver
from drivers.errors import CertHelperError, PinIncorrect, PinLocked
from drivers.types import Pin, PinState, SignAlgorithm, TokenInfo
from helper.cms import build_signed_data
from helper.domain.pin_policy import INITIAL_PIN
from helper.domain.presentation import wrong_pin_text
from helper.errors import BadParams, ConsentDenied
from helper.services.audit import AuditLog
from helper.services.certificates import CertificateCache, NoCertificate
from helper.services.limits import DialogGuard, GateSettings, PinAttemptsExceeded, SlidingLimit
from helper.services.prompts import (
    CertChoice,
    ConsentChoice,
    ConsentRequest,
    PinRequest,
    Prompter,
)
from helper.services.sessions import LoginSession, SessionTable
from helper.services.summary import iso
from helper.services.tokens import CertEntry, TokenService

log = logging.getLogger(__name__)
T = TypeVar("T")

#: codes after which what we know of the tokens is out of date
_STALE_CODES = frozenset({"token_absent", "key_not_found", "device_error"})


@dataclass
class AuditRecord:
    """What an audited operation learns while it runs."""

    cert: str | None = None


def is_insecure(origin: str) -> bool:
    return origin.startswith("http:")


class Gate:
    def __init__(
        self,
        tokens: TokenService,
        prompter: Prompter,
        sessions: SessionTable,
        audit: AuditLog,
        settings: GateSettings | None = None,
    ) -> None:
        self.tokens = tokens
        self.prompter = prompter
        self.sessions = sessions
        self.audit_log = audit
        self.settings = settings or GateSettings()
        self.certificates = CertificateCache(tokens)
        self._dialogs = DialogGuard(self.settings)
        cap, window = self.settings.pin_failures, self.settings.pin_failure_window
        #: wrong PINs typed into our dialog, per origin
        self._dialog_pin_failures = SlidingLimit(cap, window)
        #: wrong PINs pages sent (HEBCA Login), per origin and per key: two halls
        #: together cannot spend more tries on one key than one hall could, and a
        #: page's failures never keep the person out of our own dialog
        self._page_pin_failures = SlidingLimit(cap, window)
        self._page_pin_failures_per_key = SlidingLimit(cap, window)
        #: the consent window open for each origin (at most one), for its waiters
        self._connect_pending: dict[str, asyncio.Future[ConsentChoice]] = {}
        #: called (on the loop) after a login through our PIN dialog with the
        #: initial PIN 123456, so the desktop can ask the person to change it
        self.on_initial_pin: Callable[[TokenInfo], None] | None = None

    # --- the person ----------------------------------------------------------

    async def dialog(self, origin: str, ask: Callable[[], Awaitable[T]]) -> T:
        """Any dialog a page causes goes through here (one at a time, capped)."""
        return await self._dialogs.run(origin, ask)

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
                subject_cn=c.model.subject_cn,
                issuer_cn=c.model.issuer_cn,
                serial_hex=c.model.serial_hex,
                not_after=iso(c.model.not_after),
                days_left=c.model.days_left(now),
                token_label=c.token.label,
            )
            for c in candidates
            if c.model is not None
        ]
        chosen = await self.dialog(
            origin, lambda: self.prompter.pick_certificate(origin, is_insecure(origin), choices)
        )
        for c in candidates:
            if c.id == chosen:
                return c
        raise NoCertificate(detail="the picker returned an unknown certificate")

    async def confirm(self, origin: str, request: ConsentRequest) -> None:
        """A consent dialog that raises unless the person chose 允许一次."""
        choice = await self.dialog(origin, lambda: self.prompter.ask_consent(request))
        if choice is not ConsentChoice.ONCE:
            raise ConsentDenied()

    async def confirm_signing(
        self,
        origin: str,
        entry: CertEntry,
        data: bytes,
        text: str | None,
        *,
        encoding: str = "utf-8",
    ) -> None:
        """The consent dialog that shows what a page wants signed: the text when the
        page gives one, always with the size and SHA-256 of the bytes signed. A text
        is shown only if it *is* the data (its `encoding`), never beside other bytes."""
        assert entry.model is not None
        check_signing_text(data, text, encoding)
        await self.confirm(
            origin,
            ConsentRequest(
                origin=origin,
                insecure_origin=is_insecure(origin),
                operation="sign.data",
                cert_subject=entry.model.subject_cn,
                cert_issuer=entry.model.issuer_cn,
                text=text,
                text_encoding=encoding.upper() if text is not None else None,
                data_size=len(data),
                data_sha256=hashlib.sha256(data).hexdigest(),
                allow_always=False,
            ),
        )

    async def ask_connect(self, origin: str) -> ConsentChoice:
        """Consent for an origin nobody decided on yet (an https page). One window per
        origin at a time: parallel connections wait for its answer; 始终允许 or 拒绝
        (or a dismissed window) decides for all of them, 允许一次 for one only — the
        next one asks in turn."""
        while (pending := self._connect_pending.get(origin)) is not None:
            try:
                choice = await asyncio.shield(pending)  # raises the refusal it ended with
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if pending.cancelled() and task is not None and not task.cancelling():
                    continue  # the asking connection went away: ask for this one
                raise
            if choice is not ConsentChoice.ONCE:
                return choice
        decided: asyncio.Future[ConsentChoice] = asyncio.get_running_loop().create_future()
        decided.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved
        self._connect_pending[origin] = decided
        request = ConsentRequest(
            origin=origin, insecure_origin=is_insecure(origin), operation="connect"
        )
        try:
            choice = await self.dialog(origin, lambda: self.prompter.ask_consent(request))
        except CertHelperError as exc:
            self.audit_event(origin, "connect", None, exc.code)
            decided.set_exception(exc)
            raise
        except BaseException:
            decided.cancel()
            raise
        finally:
            del self._connect_pending[origin]
        decided.set_result(choice)
        self.audit_event(origin, "connect", None, f"consent:{choice.value}")
        return choice

    # --- login -----------------------------------------------------------------

    async def ensure_login(self, origin: str, operation: str, entry: CertEntry) -> LoginSession:
        """The origin's login session on the entry's key, after the PIN dialog
        when there is none. ``just_logged_in`` tells which happened.

        A wrong PIN is a retry, not a restart: the dialog asks again for the same
        certificate, saying 「密码错误，还可以尝试 N 次」, until the PIN is right, the
        person cancels, the per-origin cap is reached or the key locks — the page
        hears only that final outcome. Every wrong PIN counts toward the cap."""
        assert entry.model is not None
        serial = entry.token.serial
        session = self.sessions.get(serial, origin)
        aio = self.tokens.aio(entry.token)
        if session is not None and aio.is_logged_in(serial):
            return session
        retry_note: str | None = None
        while True:
            if self._dialog_pin_failures.exceeded(origin):
                raise PinAttemptsExceeded()
            info = await self._token_ready(entry)  # a locked key: refused, never asked
            pin = None
            if not info.protected_auth_path:
                request = PinRequest(
                    origin=origin,
                    insecure_origin=is_insecure(origin),
                    operation=operation,
                    token_label=info.label,
                    token_serial=serial,
                    cert_subject=entry.model.subject_cn,
                    pin_state=info.pin_state,
                    pin_min_len=info.pin_min_len,
                    pin_max_len=info.pin_max_len,
                    pin_retries_left=info.pin_retries_left,
                    pin_max_retries=info.pin_max_retries,
                    retry_note=retry_note,
                )
                pin = await self.dialog(origin, functools.partial(self.prompter.ask_pin, request))
            try:
                session = await self._login(origin, entry, pin)
            except PinIncorrect:
                self._dialog_pin_failures.hit(origin)
                if pin is None:  # the key's own PIN pad: nothing to ask again here
                    raise
                after = await aio.token_info(serial)
                retry_note = wrong_pin_text(after.pin_retries_left, after.pin_state)
                continue
            break
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
        serial = entry.token.serial
        if self._page_pin_failures.exceeded(origin):
            raise PinAttemptsExceeded(detail="this site")
        if self._page_pin_failures_per_key.exceeded(serial):
            raise PinAttemptsExceeded(detail="this key")
        await self._token_ready(entry)
        try:
            return await self._login(origin, entry, pin)
        except PinIncorrect:
            self._page_pin_failures.hit(origin)
            self._page_pin_failures_per_key.hit(serial)
            raise

    async def _token_ready(self, entry: CertEntry) -> TokenInfo:
        """The token's state now; a locked PIN is refused before anything is tried."""
        info = await self.tokens.aio(entry.token).token_info(entry.token.serial)
        if info.pin_state is PinState.LOCKED:
            raise PinLocked(detail=info.label)
        return info

    async def _login(self, origin: str, entry: CertEntry, pin: Pin | None) -> LoginSession:
        assert entry.model is not None
        serial = entry.token.serial
        try:
            await self.tokens.aio(entry.token).login(serial, pin)
        except PinIncorrect:
            self.sessions.end(serial)
            raise
        new = LoginSession(origin, serial, entry.token.module_path, entry.model.sha256)
        new.just_logged_in = True
        displaced = self.sessions.start(new)
        if displaced is not None:
            log.info("login of %s on %s replaces %s's", origin, serial, displaced.origin)
        return new

    async def end_session(self, serial: str) -> None:
        session = self.sessions.end(serial)
        if session is None:
            return
        for d in self.tokens.drivers:
            if d.module_path == session.module_path:
                try:
                    await AsyncDriver(d).logout(serial)
                except CertHelperError as exc:
                    log.debug("logout %s: %s", serial, exc.code)

    async def logout_origin(self, origin: str) -> None:
        for s in self.sessions.for_origin(origin):
            await self.end_session(s.token_serial)

    async def expire_sessions(self) -> int:
        expired = self.sessions.expired()
        for s in expired:
            log.info("login session of %s on %s idle: logging out", s.origin, s.token_serial)
            await self.end_session(s.token_serial)
        return len(expired)

    async def token_removed(self, serial: str) -> None:
        self.certificates.invalidate()
        self.sessions.end(serial)  # the driver already dropped the login

    async def token_inserted(self, serial: str) -> None:
        self.certificates.invalidate()

    # --- signing -----------------------------------------------------------------

    async def sign(self, entry: CertEntry, data: bytes, algorithm: SignAlgorithm) -> bytes:
        """A raw signature by the entry's key (the origin's login must exist)."""
        return await self.tokens.aio(entry.token).sign(
            entry.token.serial, entry.obj.key_id, data, algorithm
        )

    async def sign_cms(
        self, entry: CertEntry, data: bytes, algorithm: SignAlgorithm, *, detached: bool = True
    ) -> bytes:
        """CMS SignedData, built and signed in one job on the key's worker."""
        model = entry.model
        assert model is not None
        aio = self.tokens.aio(entry.token)
        driver, serial, key_id = aio.driver, entry.token.serial, entry.obj.key_id

        def build() -> bytes:
            return build_signed_data(
                data,
                model.der,
                lambda tbs: driver.sign(serial, key_id, tbs, algorithm),
                algorithm=algorithm,
                detached=detached,
            )

        return await aio.run(build)

    # --- audit ---------------------------------------------------------------------

    def audit_event(self, origin: str, operation: str, cert: str | None, outcome: str) -> None:
        try:
            self.audit_log.append(
                origin=origin, operation=operation, certificate=cert, outcome=outcome
            )
        except OSError:
            log.exception("audit log not writable")

    @contextlib.asynccontextmanager
    async def audit(self, origin: str, operation: str) -> AsyncIterator[AuditRecord]:
        """One audit entry for the work in the ``async with`` body, with its outcome;
        the body sets ``record.cert`` (a SHA-256) once it knows the certificate."""
        record = AuditRecord()
        try:
            yield record
        except CertHelperError as exc:
            if exc.code in _STALE_CODES:
                self.certificates.invalidate()
            self.audit_event(origin, operation, record.cert, exc.code)
            raise
        except Exception:
            self.audit_event(origin, operation, record.cert, "internal_error")
            raise
        self.audit_event(origin, operation, record.cert, "ok")


def check_signing_text(data: bytes, text: str | None, encoding: str = "utf-8") -> None:
    """A page's `text` is shown as what is signed, so it must be exactly the data:
    refused (before any dialog) when the bytes are anything but its encoding."""
    if text is None:
        return
    try:
        same = text.encode(encoding) == data
    except UnicodeEncodeError:
        same = False
    if not same:
        raise BadParams(
            detail=f"'text' is not what would be signed: 'data' must be its {encoding.upper()}"
        )
