"""TkPrompter: the daemon's side of the dialog process (helper.ui.dialogs).

Each question runs ``python -m helper.ui`` as a child process: the request goes
in as one JSON line on its stdin, the answer comes back as one JSON line on its
stdout. The PIN therefore crosses only that pipe; it is never in argv, the
environment, a file or a log line (the child's stderr is logged at debug, its
stdout never is).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from drivers.errors import PinLocked
from drivers.types import Pin
from helper.errors import CertificateNotFound, DialogFailed, UserCancelled, UserTimeout
from helper.services.prompts import CertChoice, ConsentChoice, ConsentRequest, PinRequest

log = logging.getLogger(__name__)

#: the most of one child stderr line that goes into the debug log
_STDERR_LINE_MAX = 500
#: how long a child may take to exit after answering (or after stdin closes)
_EXIT_WAIT = 3.0


class TkPrompter:
    """Asks a person through native Tk dialogs, one at a time.

    ``timeout``: seconds the person has to answer (the dialog closes itself then);
    the prompter kills a child that has not answered ``grace`` seconds later.
    ``python``: the interpreter that runs ``-m helper.ui``.
    ``env``: extra environment for the child (e.g. ``{"DISPLAY": ":1"}``), on top of
    this process's environment.
    """

    def __init__(
        self,
        *,
        timeout: float = 120,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        grace: float = 5.0,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = float(timeout)
        self.python = python
        self.env = dict(env) if env else {}
        self.grace = grace
        self._lock = asyncio.Lock()
        self._last_dialog = float("-inf")  # monotonic time the last dialog closed

    def idle_for(self) -> float:
        """Seconds since the last dialog closed (0 while one is open): the daemon holds
        its notices until the person's flow of dialogs is over."""
        if self._lock.locked():
            return 0.0
        return time.monotonic() - self._last_dialog

    # --- Prompter ----------------------------------------------------------

    async def ask_pin(self, request: PinRequest) -> Pin:
        reply = await self._ask("pin", request.origin, dataclasses.asdict(request))
        pin = reply.get("pin")
        if not isinstance(pin, str) or not pin:
            raise DialogFailed(detail="the PIN dialog answered without a PIN")
        return Pin(pin)

    async def ask_consent(self, request: ConsentRequest) -> ConsentChoice:
        reply = await self._ask("consent", request.origin, dataclasses.asdict(request))
        try:
            choice = ConsentChoice(str(reply.get("choice")))
        except ValueError:
            raise DialogFailed(detail="the consent dialog gave no valid choice") from None
        if choice is ConsentChoice.ALWAYS and not request.allow_always:
            raise DialogFailed(detail="the consent dialog offered 'always' where it may not")
        return choice

    async def pick_certificate(
        self, origin: str, insecure_origin: bool, choices: list[CertChoice]
    ) -> str:
        if not choices:
            raise CertificateNotFound(detail="nothing to choose from")
        fields = {
            "origin": origin,
            "insecure_origin": insecure_origin,
            "choices": [dataclasses.asdict(c) for c in choices],
        }
        reply = await self._ask("picker", origin, fields)
        chosen = reply.get("id")
        if not any(c.id == chosen for c in choices):
            raise DialogFailed(detail="the picker returned an unknown certificate")
        assert isinstance(chosen, str)
        return chosen

    # --- the child -----------------------------------------------------------

    async def _ask(self, dialog: str, origin: str, fields: dict[str, Any]) -> dict[str, Any]:
        message = {"dialog": dialog, "timeout": self.timeout, **fields}
        async with self._lock:
            log.debug("%s dialog for %s", dialog, origin)
            try:
                reply = await self._run(message)
            finally:
                self._last_dialog = time.monotonic()
        outcome = reply.get("result")
        log.info("%s dialog for %s: %s", dialog, origin, outcome)
        if outcome == "ok":
            return reply
        if outcome == "cancel":
            raise UserCancelled()
        if outcome == "timeout":
            raise UserTimeout()
        if outcome == "error":
            detail = str(reply.get("detail") or "")[:200]
            if detail == "pin_locked":
                raise PinLocked()
            raise DialogFailed(detail=detail or None)
        raise DialogFailed(detail="the dialog answered something unexpected")

    async def _run(self, message: dict[str, Any]) -> dict[str, Any]:
        return await exchange(
            "helper.ui", message, python=self.python, env=self.env,
            limit=self.timeout + self.grace,
        )  # fmt: skip


async def exchange(
    module: str,
    message: dict[str, Any],
    *,
    python: str = sys.executable,
    env: Mapping[str, str] | None = None,
    limit: float | None = None,
) -> dict[str, Any]:
    """Run ``python -m <module>``, send ``message`` as one JSON line and return the
    one JSON line it answers. stdin stays open meanwhile (its end tells the child
    we left). Raises UserTimeout after ``limit`` seconds, DialogFailed for any
    other failure; the answer is never quoted in an error (it may hold a PIN)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            python, "-m", module,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})},
        )  # fmt: skip
    except OSError as exc:
        raise DialogFailed(detail=f"cannot start the dialog process: {exc.strerror}") from None
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    drain = asyncio.create_task(_log_stderr(proc.pid, proc.stderr))
    answered = False
    try:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n")
            await proc.stdin.drain()
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=limit)
        except TimeoutError:
            log.warning("dialog process %d did not answer in time; killing it", proc.pid)
            raise UserTimeout() from None
        except ValueError:  # longer than the stream limit: not our child talking
            raise DialogFailed(detail="the dialog answered too much") from None
        if not line:
            code = await _wait(proc, _EXIT_WAIT)
            raise DialogFailed(detail=f"the dialog process exited ({code}) without answering")
        answered = True
        try:
            reply = json.loads(line)
        except ValueError:
            raise DialogFailed(detail="the dialog answered something that is not JSON") from None
        if not isinstance(reply, dict):
            raise DialogFailed(detail="the dialog answered something unexpected")
        return reply
    finally:
        try:
            proc.stdin.close()
            # a child that answered exits by itself; one that did not (we timed
            # out, or our caller went away) is killed at once
            await _wait(proc, _EXIT_WAIT if answered else 0)
            await asyncio.wait({drain}, timeout=1.0)
        finally:
            drain.cancel()


async def _wait(proc: asyncio.subprocess.Process, patience: float) -> int:
    """Give the child ``patience`` seconds to exit by itself, then kill it; return its code."""
    if proc.returncode is None and patience > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(proc.wait()), patience)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    assert proc.returncode is not None
    return proc.returncode


async def _log_stderr(pid: int, stream: asyncio.StreamReader) -> None:
    """Drain the child's stderr into the debug log, line by line."""
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # an overlong line: skip what is buffered
            continue
        if not line:
            return
        text = line.decode("utf-8", "replace").rstrip()
        if text:
            log.debug("dialog[%d]: %s", pid, text[:_STDERR_LINE_MAX])
