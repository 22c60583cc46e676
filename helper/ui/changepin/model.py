"""修改密码's state without Tk: which key, what the policy says of what is typed,
whether 确定 may run, and what follows an outcome. The view draws it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from drivers.errors import CertHelperError
from drivers.protocol import TokenDriver
from drivers.types import Pin, PinState, TokenInfo
from helper.services import operations
from helper.ui.changepin.outcome import Outcome
from helper.ui.changepin.policy import Check, evaluate, with_test_state

EXIT_CHANGED = 0
EXIT_CLOSED = 1


class Form(StrEnum):
    """Which form the window shows for the chosen key."""

    NO_KEY = "no_key"
    UNREADABLE = "unreadable"
    LOCKED = "locked"
    PIN = "pin"


class After(StrEnum):
    """What the window does after an outcome."""

    CLOSE = "close"  # changed: show success, then close
    LOCKED = "locked"  # the key locked: the locked form
    RETRY = "retry"  # fields cleared, try again


@dataclass(frozen=True)
class Choice:
    form: Form
    info: TokenInfo | None = None
    error: CertHelperError | None = None


class ChangePinModel:
    def __init__(self, tokens: list[tuple[TokenDriver, TokenInfo]]) -> None:
        self.tokens = tokens
        self.driver: TokenDriver | None = None
        self.info: TokenInfo | None = None
        self.check = Check(ok=False)
        self.busy = False
        self.done = False
        self.exit_code = EXIT_CLOSED

    def choose(self, index: int) -> Choice:
        """Read the key at ``index`` (its flags now): which form it gets."""
        if not self.tokens:
            return Choice(Form.NO_KEY)
        driver, token = self.tokens[index]
        self.driver = driver
        try:
            self.info = with_test_state(driver.token_info(token.serial))
        except CertHelperError as exc:
            self.info = None
            return Choice(Form.UNREADABLE, error=exc)
        form = Form.LOCKED if self.info.pin_state is PinState.LOCKED else Form.PIN
        return Choice(form, self.info)

    def typed(self, old: Pin, new: Pin, confirm: Pin) -> Check | None:
        """The policy's verdict on the fields (None while nothing can be typed)."""
        if self.info is None or self.busy or self.done:
            return None
        self.check = evaluate(old, new, confirm, self.info)
        return self.check

    def may_submit(self, old: Pin, new: Pin, confirm: Pin) -> bool:
        """确定 runs only on a key the policy accepts, checked again untouched."""
        if self.busy or self.done or self.info is None or self.driver is None:
            return False
        self.typed(old, new, confirm)
        if not self.check.ok:
            return False
        try:
            operations.check_change(self.info, old, new, confirm)
        except CertHelperError:
            return False
        return True

    def finished(self, outcome: Outcome) -> After:
        self.busy = False
        if outcome.kind == "ok":
            self.done = True
            self.exit_code = EXIT_CHANGED
            return After.CLOSE
        assert self.info is not None
        if outcome.info is not None:  # re-read after the attempt: tries left, flags
            self.info = outcome.info
        if outcome.pin_state is PinState.LOCKED or outcome.kind == "pin_locked":
            self.info = dataclasses.replace(self.info, pin_state=PinState.LOCKED)
            return After.LOCKED
        if outcome.pin_state is not None:
            self.info = dataclasses.replace(self.info, pin_state=outcome.pin_state)
        return After.RETRY
