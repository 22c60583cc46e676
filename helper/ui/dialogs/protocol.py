"""The dialog process's protocol: one JSON request line in, one result line out
(see the package docstring). Requests are checked field by field."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from drivers.types import PinState
from helper.services.prompts import CertChoice, ConsentRequest, PinRequest
from helper.ui.dialogs.base import Dialog, report_exception
from helper.ui.dialogs.consent import ConsentDialog
from helper.ui.dialogs.picker import PickerDialog
from helper.ui.dialogs.pin import PinDialog

DEFAULT_TIMEOUT = 120.0
MAX_TIMEOUT = 3600.0


class BadRequest(Exception):
    """The request line cannot be understood (the message names no field values)."""


# --- request parsing ----------------------------------------------------------


def _build(cls: Any, data: dict[str, Any], convert: dict[str, Callable[[Any], Any]]) -> Any:
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            try:
                kwargs[f.name] = convert[f.name](value) if f.name in convert else value
            except (TypeError, ValueError) as exc:
                raise BadRequest(f"invalid field {f.name!r}") from exc
        elif f.default is dataclasses.MISSING:
            raise BadRequest(f"missing field {f.name!r}")
    return cls(**kwargs)


def _opt_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not an int")
    return value


def parse_timeout(data: dict[str, Any]) -> float:
    value = data.get("timeout", DEFAULT_TIMEOUT)
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadRequest("invalid field 'timeout'")
    return min(float(value), MAX_TIMEOUT)


def parse_pin(data: dict[str, Any]) -> PinRequest:
    return _build(
        PinRequest,
        data,
        {
            "pin_state": PinState,
            "pin_min_len": _opt_int,
            "pin_max_len": _opt_int,
            "pin_retries_left": _opt_int,
            "pin_max_retries": _opt_int,
            "retry_note": _opt_note,
        },
    )


def _opt_note(value: Any) -> str | None:
    """The daemon's own 「密码错误…」 line: short text or nothing."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 200:
        raise TypeError("not a short text")
    return value


def _details(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list | tuple):
        raise TypeError("not a list")
    rows = []
    for row in value:
        if not isinstance(row, list | tuple) or len(row) != 2:
            raise TypeError("not a pair")
        if not all(isinstance(v, str) for v in row):
            raise TypeError("not strings")
        rows.append((row[0], row[1]))
    return tuple(rows)


def parse_consent(data: dict[str, Any]) -> ConsentRequest:
    return _build(ConsentRequest, data, {"data_size": _opt_int, "details": _details})


def parse_picker(data: dict[str, Any]) -> tuple[str, bool, list[CertChoice]]:
    origin = data.get("origin")
    choices = data.get("choices")
    if not isinstance(origin, str):
        raise BadRequest("missing field 'origin'")
    if not isinstance(choices, list) or not choices:
        raise BadRequest("missing field 'choices'")
    parsed = []
    for c in choices:
        if not isinstance(c, dict):
            raise BadRequest("invalid field 'choices'")
        parsed.append(_build(CertChoice, c, {"days_left": int}))
    return origin, bool(data.get("insecure_origin", False)), parsed


# --- entry point --------------------------------------------------------------


def run_request(data: dict[str, Any]) -> dict[str, Any]:
    """Show the dialog the request names and return its result (no exceptions for
    the person's answers: cancel and timeout are results)."""
    if not isinstance(data, dict):
        raise BadRequest("the request is not a JSON object")
    kind = data.get("dialog")
    timeout = parse_timeout(data)
    if kind == "pin":
        request = parse_pin(data)
        if request.pin_state is PinState.LOCKED or request.pin_retries_left == 0:
            return {"result": "error", "detail": "pin_locked"}  # never a window
        return open_dialog(lambda: PinDialog(request, timeout))
    if kind == "consent":
        consent = parse_consent(data)
        return open_dialog(lambda: ConsentDialog(consent, timeout))
    if kind == "picker":
        origin, insecure, choices = parse_picker(data)
        return open_dialog(lambda: PickerDialog(origin, insecure, choices, timeout))
    raise BadRequest("unknown dialog")


def open_dialog(factory: Callable[[], Dialog]) -> dict[str, Any]:
    try:
        import tkinter as tk
    except ImportError:
        return {"result": "error", "detail": "no_tkinter"}
    try:
        dialog = factory()
    except tk.TclError as exc:
        if "display" in str(exc):  # "couldn't connect to display", "no display name"
            return {"result": "error", "detail": f"no_display: {exc}"}
        raise
    return dialog.show()


def serve_one(
    handle: Callable[[Any], dict[str, Any]],
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """The child side of the protocol: read one request line, answer one result
    line (an error result rather than silence, whatever goes wrong)."""
    out = stdout or sys.stdout
    try:
        if stdin is not None:
            line = stdin.readline()
        else:
            line = sys.stdin.buffer.readline().decode("utf-8")
        if not line.strip():
            raise BadRequest("no request")
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise BadRequest("the request is not JSON") from exc
        result = handle(data)
    except BadRequest as exc:
        result = {"result": "error", "detail": f"bad_request: {exc}"}
    except Exception as exc:  # a UI bug must still answer the parent
        report_exception(type(exc), exc.__traceback__)
        result = {"result": "error", "detail": f"internal: {type(exc).__name__}"}
    try:
        out.write(json.dumps(result) + "\n")
        out.flush()
    except (OSError, ValueError):
        return 1
    return 0


def main(stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Read one request line, run the dialog, write one result line."""
    return serve_one(run_request, stdin, stdout)
