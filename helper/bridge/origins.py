"""Origin parsing and the allow / ask / deny decision (security.md, req. 3 and 7).

Origins are compared as exact serialisations ``scheme://host[:port]`` with the
default port elided, lower-case scheme and host. Anything unusual — ``null``,
paths, credentials, a trailing dot, whitespace, non-http schemes — is not an
origin this helper will ever talk to.
"""

from __future__ import annotations

import re
from enum import StrEnum

from helper.services.consent import ConsentStore

_ORIGIN = re.compile(
    r"^(?P<scheme>https?)://"
    r"(?P<host>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
    r"|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?$"
)
_DEFAULT_PORT = {"http": 80, "https": 443}


class Decision(StrEnum):
    ALLOWED = "allowed"  # configured, or always-allowed by the user
    ASK = "ask"  # an https origin nobody decided on yet: consent dialog
    DENIED = "denied"


def normalize_origin(value: str | None, *, strict: bool = True) -> str | None:
    """The canonical origin, or None when ``value`` is not an acceptable origin.

    ``strict`` (for Origin headers): browsers serialise origins in lower case,
    so anything else did not come from a browser. Config entries are lenient.
    """
    if not value or value != value.strip() or len(value) > 300:
        return None
    if strict and value != value.lower():
        return None
    m = _ORIGIN.match(value.lower())
    if m is None or m["host"].endswith("."):
        return None
    scheme, host, port = m["scheme"], m["host"], m["port"]
    if port is not None:
        if port.startswith("0") or not 1 <= int(port) <= 65535:
            return None
        if int(port) == _DEFAULT_PORT[scheme]:
            port = None
    return f"{scheme}://{host}" + (f":{port}" if port else "")


def is_insecure(origin: str) -> bool:
    return origin.startswith("http://")


class OriginPolicy:
    def __init__(self, configured: list[str], consent: ConsentStore) -> None:
        self.configured = {o for o in (normalize_origin(c, strict=False) for c in configured) if o}
        self.consent = consent

    def decide(self, origin: str | None) -> Decision:
        """``origin`` must already be normalised (None = unacceptable)."""
        if origin is None:
            return Decision.DENIED
        if origin in self.configured:
            return Decision.ALLOWED
        if is_insecure(origin):  # plain http only when configured
            return Decision.DENIED
        recorded = self.consent.get(origin)
        if recorded == "always":
            return Decision.ALLOWED
        if recorded == "deny":
            return Decision.DENIED
        return Decision.ASK
