"""The daemon's side: show a notice in a child process and read its answer."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from helper.ui.notice.content import RESULTS

log = logging.getLogger(__name__)


async def show_notice(
    request: dict[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
    grace: float = 5.0,
) -> str:
    """Show a notice in a child process; return its result ("renew", "changepin",
    "rerun" or "close"). Any failure of the child (no display, a crash, garbage on
    its stdout, no answer ``grace`` seconds after the request's own timeout) is
    logged and answers "close". Cancelling the call closes the window."""
    reply = await run_notice(request, env=env, python=python, grace=grace)
    result = reply.get("result")
    if result == "error":
        log.warning("%s notice failed: %s", request.get("kind"), str(reply.get("detail"))[:200])
        return "close"
    if result not in RESULTS:
        log.warning("%s notice answered something unexpected", request.get("kind"))
        return "close"
    log.info("%s notice: %s", request.get("kind"), result)
    return str(result)


async def run_notice(
    request: dict[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
    grace: float = 5.0,
) -> dict[str, Any]:
    """The child's whole reply; ``{"result": "error", ...}`` when it gave none."""
    from helper.errors import DialogFailed, UserTimeout
    from helper.ui.prompter import exchange

    timeout = request.get("timeout")
    limit = float(timeout) + grace if isinstance(timeout, int | float) and timeout > 0 else None
    try:
        return await exchange("helper.ui.notice", request, python=python, env=env, limit=limit)
    except UserTimeout:
        return {"result": "error", "detail": "timeout"}
    except DialogFailed as exc:
        return {"result": "error", "detail": exc.detail or "the notice failed"}
