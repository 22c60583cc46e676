"""Managed browser policy for Chrome's Local Network Access (LNA).

``certhelper install --system`` writes ``certhelper.json`` into the managed-policy
directories of Debian's Chromium and of Google Chrome, so the configured hall origins may
reach the helper on loopback. ``certhelper uninstall`` removes it; the doctor reads it.

What the file holds, and why (measured with Debian's Chromium 156, see docs/lna.md):

* ``LocalNetworkAccessAllowedForUrls`` and ``LoopbackNetworkAllowedForUrls`` list the
  origins. Either key alone lets a *secure-context* page on a public address reach
  loopback without a prompt.
* A plain-http page on a public address (the Cangzhou hall, ``http://111.62.46.105:9010``)
  is not a secure context, and for it those two keys alone change nothing: Chromium
  refuses the request before asking anyone. ``OverrideSecurityRestrictionsOnInsecureOrigin``
  listing the http origins makes Chromium treat them as secure contexts; with it the
  allow-lists apply. Chrome applies that key only after a browser restart, and it also
  drops the "Not secure" label for those origins.

Every path is computed under ``root`` (``/`` on a real system, a temporary directory in
tests); nothing is written outside it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

Level = Literal["ok", "warning", "error"]
Finding = tuple[Level, str, str]

#: managed-policy directories on Linux: Debian's Chromium, Google Chrome
POLICY_DIRS: tuple[PurePosixPath, ...] = (
    PurePosixPath("/etc/chromium/policies/managed"),
    PurePosixPath("/etc/opt/chrome/policies/managed"),
)
POLICY_FILE = "certhelper.json"
ALLOW_KEYS: tuple[str, ...] = ("LocalNetworkAccessAllowedForUrls", "LoopbackNetworkAllowedForUrls")
SECURE_KEY = "OverrideSecurityRestrictionsOnInsecureOrigin"
FIX = "sudo certhelper install --system"


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, without a trailing slash and without the
    scheme's default port. Raises ValueError for anything but an http(s) origin."""
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) origin: {origin!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"an origin has no path, query or user: {origin!r}")
    try:
        port = parts.port
    except ValueError as e:
        raise ValueError(f"bad port in {origin!r}") from e
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == {"http": 80, "https": 443}[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def is_loopback_origin(origin: str) -> bool:
    """A page on loopback itself needs no LNA permission to reach loopback."""
    host = urlsplit(origin).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def policy_document(origins: list[str], *, secure_override: bool = True) -> dict[str, list[str]]:
    """The JSON object written to ``certhelper.json``: both allow-lists, sorted and
    de-duplicated, plus (unless ``secure_override`` is false) the plain-http origins under
    ``OverrideSecurityRestrictionsOnInsecureOrigin``, without which Chromium 156 refuses a
    plain-http public page even when the allow-lists name it."""
    normal = sorted({normalize_origin(o) for o in origins})
    doc = {key: list(normal) for key in ALLOW_KEYS}
    insecure = [o for o in normal if o.startswith("http://") and not is_loopback_origin(o)]
    if secure_override and insecure:
        doc[SECURE_KEY] = insecure
    return doc


def _under(root: Path, directory: PurePosixPath) -> Path:
    target = Path(root) / directory.relative_to("/")
    real_root = Path(root).resolve()
    # resolve what exists so a symlinked /etc/... cannot lead the write out of root
    if not target.resolve().is_relative_to(real_root):
        raise ValueError(f"{target} leads outside {real_root}")
    return target


def policy_paths(root: Path = Path("/")) -> list[Path]:
    return [_under(root, d) / POLICY_FILE for d in POLICY_DIRS]


def _encode(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_policy(
    origins: list[str], root: Path = Path("/"), *, secure_override: bool = True
) -> list[Path]:
    """Write ``certhelper.json`` (mode 0644, atomically) into every POLICY_DIRS under
    ``root`` and return the policy files. A file that already holds the same content is
    left untouched (only its mode is corrected). With no origins there is nothing to allow:
    any existing file is removed and [] returned."""
    if not origins:
        remove_policy(root)
        return []
    data = _encode(policy_document(origins, secure_override=secure_override))
    paths = policy_paths(root)
    for path in paths:
        try:
            current = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            current = None
        if current == data and not path.is_symlink():
            if stat.S_IMODE(path.stat().st_mode) != 0o644:
                os.chmod(path, 0o644)
            continue
        _write_atomic(path, data)
    return paths


def remove_policy(root: Path = Path("/")) -> list[Path]:
    """Remove ``certhelper.json`` from every POLICY_DIRS under ``root``; return what was
    removed. The directories stay: other software may keep policies there."""
    removed = []
    for path in policy_paths(root):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


def _origins_in(doc: object) -> list[str] | None:
    if not isinstance(doc, dict):
        return None
    found: set[str] = set()
    for key in ALLOW_KEYS:
        value = doc.get(key)
        if isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return sorted(found)


def read_policy(root: Path = Path("/")) -> dict[Path, list[str]]:
    """Every readable JSON policy file in the managed directories under ``root`` (ours and
    any an administrator put there) → the URL patterns it lists in either allow-list.
    Files that are not a JSON object are left out."""
    out: dict[Path, list[str]] = {}
    for directory in POLICY_DIRS:
        base = _under(root, directory)
        if not base.is_dir():
            continue
        for path in sorted(base.glob("*.json")):
            try:
                doc = json.loads(path.read_text("utf-8"))
            except (OSError, UnicodeDecodeError, ValueError):
                continue
            listed = _origins_in(doc)
            if listed is not None:
                out[path] = listed
    return out


def _secure_listed(root: Path, directory: PurePosixPath) -> set[str]:
    base = _under(root, directory)
    found: set[str] = set()
    for path in sorted(base.glob("*.json")) if base.is_dir() else []:
        try:
            doc = json.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        value = doc.get(SECURE_KEY) if isinstance(doc, dict) else None
        if isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return found


def _matches(origin: str, patterns: list[str] | set[str]) -> bool:
    """Conservative: an exact origin (after normalising) or ``*``; other URL patterns
    (``[*.]example.com``, host without port) are not claimed as coverage."""
    for pattern in patterns:
        if pattern.strip() == "*":
            return True
        try:
            if normalize_origin(pattern) == origin:
                return True
        except ValueError:
            continue
    return False


def _covered_in(origin: str, root: Path, listed: dict[Path, list[str]]) -> list[PurePosixPath]:
    """The policy directories whose files let ``origin`` reach loopback."""
    covering = []
    for directory in POLICY_DIRS:
        base = _under(root, directory)
        patterns = [p for path, pats in listed.items() if path.parent == base for p in pats]
        if not _matches(origin, patterns):
            continue
        if origin.startswith("http://") and not _matches(origin, _secure_listed(root, directory)):
            continue
        covering.append(directory)
    return covering


@dataclass(frozen=True)
class Coverage:
    """How the managed policy treats one configured origin that is not on loopback."""

    origin: str
    #: the POLICY_DIRS whose files let it reach loopback
    covering: tuple[PurePosixPath, ...]

    @property
    def complete(self) -> bool:
        return len(self.covering) == len(POLICY_DIRS)

    @property
    def missing(self) -> tuple[PurePosixPath, ...]:
        return tuple(d for d in POLICY_DIRS if d not in self.covering)

    @property
    def insecure(self) -> bool:
        """Plain http: blocked outright without the policy (no prompt)."""
        return self.origin.startswith("http://")


def unreadable_files(root: Path = Path("/")) -> list[Path]:
    """Our own policy files that exist but are not a readable JSON object."""
    listed = read_policy(root)
    return [p for p in policy_paths(root) if p.exists() and p not in listed]


def coverage(origins: list[str], root: Path = Path("/")) -> list[Coverage]:
    """One :class:`Coverage` per configured origin that is valid and not on loopback."""
    listed = read_policy(root)
    out = []
    for raw in origins:
        try:
            origin = normalize_origin(raw)
        except ValueError:
            continue  # the config check reports bad origins
        if is_loopback_origin(origin):
            continue
        out.append(Coverage(origin, tuple(_covered_in(origin, root, listed))))
    return out


def policy_findings(origins: list[str], root: Path = Path("/")) -> list[Finding]:
    """One (level, message, fix) per configured origin that is not on loopback.
    Messages are Chinese with English in brackets (the doctor words its own)."""
    findings: list[Finding] = []
    for path in unreadable_files(root):
        findings.append(
            (
                "warning",
                f"浏览器策略文件无法读取 (browser policy file unreadable): {path}",
                f"重新安装 (reinstall): {FIX}",
            )
        )
    for c in coverage(origins, root):
        origin = c.origin
        if c.complete:
            findings.append(
                (
                    "ok",
                    f"浏览器策略允许 {origin} 访问本机助手 "
                    f"(browser policy lets {origin} reach the local helper)",
                    "",
                )
            )
        elif c.covering:
            missing = ", ".join(str(d) for d in c.missing)
            findings.append(
                (
                    "warning",
                    f"浏览器策略只覆盖部分浏览器 (policy for {origin} missing in {missing})",
                    FIX,
                )
            )
        elif c.insecure:
            findings.append(
                (
                    "error",
                    f"{origin} 是公网上的 http 网站，Chrome/Chromium 的「本地网络访问」限制会"
                    f"阻止它连接本机证书助手，除非浏览器策略允许它 (Chrome's Local Network "
                    f"Access blocks a plain-http page on a public address such as {origin} "
                    f"from reaching localhost unless a managed policy lists it)",
                    f"运行 (run) `{FIX}`，然后重启浏览器 (then restart the browser)",
                )
            )
        else:
            findings.append(
                (
                    "warning",
                    f"{origin} 连接本机证书助手时浏览器会询问是否允许访问本地网络 "
                    f"(Chrome asks before {origin} may reach localhost; allow it, or install "
                    f"the policy)",
                    f"在提示中选择「允许」，或运行 (or run) `{FIX}`",
                )
            )
    return findings
