"""The notice process: one request line in, one window, one result line out."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from helper import __version__
from helper.ui.dialogs.protocol import BadRequest, open_dialog, parse_timeout, serve_one

if TYPE_CHECKING:
    pass

from helper.ui.notice.content import parse_alerts, parse_findings, text_field
from helper.ui.notice.doctor import DoctorNotice
from helper.ui.notice.expiry import ExpiryNotice
from helper.ui.notice.initial_pin import InitialPinNotice
from helper.ui.notice.support import AboutNotice, SupportNotice

log = logging.getLogger(__name__)


def _timeout(data: Mapping[str, Any]) -> float | None:
    if data.get("timeout") is None:
        return None
    return parse_timeout(dict(data))


def run_request(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadRequest("the request is not a JSON object")
    kind = data.get("kind")
    timeout = _timeout(data)
    if kind == "expiry":
        alerts = parse_alerts(data)
        url = text_field(data, "renewal_url")
        return open_dialog(lambda: ExpiryNotice(alerts, url, timeout))
    if kind == "initial_pin":
        label, serial = text_field(data, "token_label"), text_field(data, "token_serial")
        return open_dialog(lambda: InitialPinNotice(label, serial, timeout))
    if kind == "support":
        return open_dialog(lambda: SupportNotice(timeout))
    if kind == "about":
        version = text_field(data, "version") or __version__
        return open_dialog(lambda: AboutNotice(version, timeout))
    if kind == "doctor":
        findings = parse_findings(data)
        return open_dialog(lambda: DoctorNotice(findings, timeout))
    raise BadRequest("unknown kind")


def main(stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Read one request line, show the notice, write one result line."""
    return serve_one(run_request, stdin, stdout)
