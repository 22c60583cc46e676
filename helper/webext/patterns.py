"""Hall and CA origins as WebExtension match patterns (host permissions, content scripts).

Chromium: ``scheme://host:port/*`` (no port for the scheme's default port, where a
pattern without a port would match every port). Firefox ignores patterns with a port
(MDN "Match patterns": the host must not include one), so there the port is dropped:
``scheme://host/*`` matches that host on every port.
"""

from __future__ import annotations

from urllib.parse import urlsplit

BROWSERS = ("chromium", "firefox")
DEFAULT_PORTS = {"http": 80, "https": 443}


def _host(origin: str, host: str) -> str:
    if not host or "*" in host or any(c.isspace() for c in host):
        raise ValueError(f"not a host name: {origin!r}")
    return f"[{host}]" if ":" in host else host


def match_pattern(origin: str, browser: str) -> str:
    """One origin (``http://111.62.46.105:9010``) as a match pattern. Raises
    ValueError for anything but a plain http(s) origin."""
    if browser not in BROWSERS:
        raise ValueError(f"unknown browser {browser!r} (one of {', '.join(BROWSERS)})")
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.netloc:
        raise ValueError(f"not an http(s) origin: {origin!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"an origin has no path, query, fragment or user: {origin!r}")
    try:
        port = parts.port
    except ValueError as e:
        raise ValueError(f"bad port in {origin!r}") from e
    host = _host(origin, (parts.hostname or "").lower())
    if browser == "firefox" or port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}/*"
    return f"{scheme}://{host}:{port}/*"


def match_patterns(origins: list[str], browser: str) -> list[str]:
    """Every origin's pattern, in order, once each; ValueError names every bad origin."""
    out: list[str] = []
    bad: list[str] = []
    for origin in origins:
        try:
            pattern = match_pattern(origin, browser)
        except ValueError as e:
            bad.append(str(e))
            continue
        if pattern not in out:
            out.append(pattern)
    if bad:
        raise ValueError("; ".join(bad))
    if not out:
        raise ValueError("no origins configured")
    return out
