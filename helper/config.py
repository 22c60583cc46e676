"""Configuration: TOML in the platform's user config dir, overridable.

Precedence for the file: ``--config PATH`` > ``$CERTHELPER_CONFIG`` > the
default path. A missing default file means defaults; a missing explicit file is
an error. ``--module`` paths are added to the configured ones.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from helper.errors import ConfigInvalid

APP = "certhelper"
ENV_CONFIG = "CERTHELPER_CONFIG"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: the Cangzhou housing provident fund hall
DEFAULT_ORIGINS = ("http://111.62.46.105:9010",)
#: the Hebei CA's site
DEFAULT_CA_ORIGINS = ("https://www.hebca.com",)
#: the demo hall and the demo CA on loopback: trusted only in demo mode (--demo), never
#: by a plain `serve` or `run`, where any local process could bind these ports
DEMO_HALL_ORIGIN = "http://127.0.0.1:9010"
DEMO_CA_ORIGIN = "http://127.0.0.1:9020"


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP, appauthor=False))


def demo_dir() -> Path:
    """Where ``make demo`` builds the demo token (softhsm-fixtures, demo profile)."""
    return data_dir() / "demo-token"


def default_config_path() -> Path:
    return config_dir() / "config.toml"


@dataclass(frozen=True)
class SkfLibrarySetting:
    """An SKF library file; ``native_long`` when it was built with a 64-bit ULONG."""

    path: str
    native_long: bool = False


@dataclass
class Config:
    path: Path | None = None
    #: PKCS#11 module files to load, in addition to the catalog's
    modules: list[str] = field(default_factory=list)
    #: also load the catalogued modules found on this machine
    use_catalog: bool = True
    #: SoftHSM configuration to use (sets SOFTHSM2_CONF before modules load)
    softhsm2_conf: str | None = None
    #: SKF (GM/T 0016) libraries to load, in addition to the catalog's
    skf_libraries: list[SkfLibrarySetting] = field(default_factory=list)
    #: the soft SKF key's device directory (sets SOFTSKF_DIR; tests and the demo)
    softskf_dir: str | None = None
    log_level: str = "INFO"
    log_to_file: bool = True
    #: seconds a single token operation may take
    token_timeout: float = 30.0
    # --- bridge (docs/bridge-protocol.md) ---
    bridge_port: int = 17213
    #: hall origins allowed without a consent dialog (plain http only if listed here)
    origins: list[str] = field(default_factory=lambda: list(DEFAULT_ORIGINS))
    #: seconds a login session survives without a signature
    session_idle_timeout: float = 300.0
    #: seconds a dialog waits for the person
    dialog_timeout: float = 120.0
    #: dialogs one origin may open per minute (refused ones are capped at 3)
    dialogs_per_minute: int = 30
    #: connections per listening port, and those still to send a request head
    max_connections: int = 1024
    max_pending_connections: int = 256
    #: seconds a request head, and a TLS handshake, may take
    header_timeout: float = 10.0
    tls_handshake_timeout: float = 10.0
    # --- HEBCA-compatible endpoint (docs/hebca-compat.md) ---
    hebca_enabled: bool = True
    hebca_port: int = 17212
    hebca_assistor_version: str = "7.0.0"
    #: per-origin options ({origin: {page_pin, text_encoding, rsa_hash, silent_sign}});
    #: None = the defaults (page_pin for the Cangzhou hall, and the demo hall in demo mode)
    hebca_origins: dict[str, dict[str, object]] | None = None
    # --- desktop (docs/desktop.md) ---
    #: what the tray's 证书延期 opens (the Hebei CA's site by default)
    renewal_url: str = "https://www.hebca.com"
    # --- certificate renewal (docs/renewal.md) ---
    #: the only origins that may write certificates to a key (never a hall's)
    renewal_ca_origins: list[str] = field(default_factory=lambda: list(DEFAULT_CA_ORIGINS))
    #: PEM files of the CA certificates a renewed certificate must chain to
    renewal_ca_roots: list[str] = field(default_factory=list)
    renewal_window_before_days: int = 90
    renewal_window_after_days: int = 365
    #: what happens to the certificate a renewal replaces: "archive" (kept under an
    #: archived-YYYYMMDD: label) or "remove"; its key is never deleted
    renewal_old_certificate: str = "archive"

    # --- audit log (security.md, req. 15) ---
    #: the log rotates at this size; `audit_keep` rotated files are kept
    audit_max_bytes: int = 1024 * 1024
    audit_keep: int = 3
    #: demo mode (--demo): the demo hall and the demo CA are trusted like the real ones
    demo: bool = False

    def enable_demo(self) -> None:
        """Trust the demo hall (with its page PIN) and the demo CA, for ``--demo``."""
        self.demo = True
        if DEMO_HALL_ORIGIN not in self.origins:
            self.origins.append(DEMO_HALL_ORIGIN)
        if DEMO_CA_ORIGIN not in self.renewal_ca_origins:
            self.renewal_ca_origins.append(DEMO_CA_ORIGIN)

    def page_origins(self) -> list[str]:
        """Every origin whose pages talk to the helper: the halls, then the CAs."""
        return list(dict.fromkeys([*self.origins, *self.renewal_ca_origins]))


_KEYS: dict[str, type | tuple[type, ...]] = {
    "modules": list,
    "use_catalog": bool,
    "softhsm2_conf": str,
    "skf_libraries": list,
    "softskf_dir": str,
    "token_timeout": (int, float),
    "renewal_url": str,
}
_BRIDGE_KEYS: dict[str, type | tuple[type, ...]] = {
    "port": int,
    "origins": list,
    "session_idle_timeout": (int, float),
    "dialog_timeout": (int, float),
    "dialogs_per_minute": int,
    "max_connections": int,
    "max_pending_connections": int,
    "header_timeout": (int, float),
    "tls_handshake_timeout": (int, float),
}


def _check(data: dict[str, Any], path: Path) -> None:
    for key, typ in _KEYS.items():
        if key in data and not isinstance(data[key], typ):
            raise ConfigInvalid(detail=f"{path}: '{key}' has the wrong type")
    if "renewal_url" in data and not data["renewal_url"].startswith(("https://", "http://")):
        raise ConfigInvalid(detail=f"{path}: 'renewal_url' must be an http(s):// address")
    if "modules" in data and not all(isinstance(m, str) for m in data["modules"]):
        raise ConfigInvalid(detail=f"{path}: 'modules' must be a list of paths")
    for entry in data.get("skf_libraries", []):
        if isinstance(entry, str):
            continue
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("path"), str)
            or entry.get("abi", "standard") not in ("standard", "native-long")
            or set(entry) - {"path", "abi"}
        ):
            raise ConfigInvalid(
                detail=f"{path}: 'skf_libraries' holds paths or "
                '{ path = "...", abi = "standard" | "native-long" }'
            )
    bridge = data.get("bridge", {})
    if not isinstance(bridge, dict):
        raise ConfigInvalid(detail=f"{path}: [bridge] must be a table")
    for key, typ in _BRIDGE_KEYS.items():
        if key in bridge and (not isinstance(bridge[key], typ) or isinstance(bridge[key], bool)):
            raise ConfigInvalid(detail=f"{path}: 'bridge.{key}' has the wrong type")
    if not all(isinstance(o, str) for o in bridge.get("origins", [])):
        raise ConfigInvalid(detail=f"{path}: 'bridge.origins' must be a list of origins")
    port = bridge.get("port", 17213)
    if not 1 <= port <= 65535:
        raise ConfigInvalid(detail=f"{path}: 'bridge.port' must be 1..65535")
    _check_hebca(data.get("hebca", {}), path)
    _check_renewal(data.get("renewal", {}), path)
    audit = data.get("audit", {})
    if not isinstance(audit, dict) or set(audit) - {"max_bytes", "keep"}:
        raise ConfigInvalid(detail=f"{path}: [audit] takes max_bytes and keep")
    for key, low in (("max_bytes", 4096), ("keep", 1)):
        value = audit.get(key, low)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigInvalid(detail=f"{path}: 'audit.{key}' must be an integer >= {low}")
    logging_ = data.get("logging", {})
    if not isinstance(logging_, dict):
        raise ConfigInvalid(detail=f"{path}: [logging] must be a table")
    level = logging_.get("level", "INFO")
    if not isinstance(level, str) or level.upper() not in _LOG_LEVELS:
        raise ConfigInvalid(detail=f"{path}: logging.level must be one of {_LOG_LEVELS}")


_HEBCA_ORIGIN_KEYS = {
    "page_pin": bool,
    "silent_sign": bool,
    "text_encoding": str,
    "rsa_hash": str,
}


def _check_hebca(hebca: object, path: Path) -> None:
    if not isinstance(hebca, dict):
        raise ConfigInvalid(detail=f"{path}: [hebca] must be a table")
    for key, typ in (("enabled", bool), ("port", int), ("assistor_version", str)):
        if key in hebca and not isinstance(hebca[key], typ):
            raise ConfigInvalid(detail=f"{path}: 'hebca.{key}' has the wrong type")
    version = hebca.get("assistor_version", "7.0.0")
    if not all(p.isdigit() and int(p) < 256 for p in version.split(".")) or version.count(".") > 2:
        raise ConfigInvalid(detail=f"{path}: 'hebca.assistor_version' must look like 7.0.0")
    origins = hebca.get("origins", {})
    if not isinstance(origins, dict):
        raise ConfigInvalid(detail=f"{path}: [hebca.origins] must be a table")
    for origin, opts in origins.items():
        if not isinstance(opts, dict):
            raise ConfigInvalid(detail=f'{path}: [hebca.origins."{origin}"] must be a table')
        for key, value in opts.items():
            wanted = _HEBCA_ORIGIN_KEYS.get(key)
            if wanted is None or not isinstance(value, wanted):
                raise ConfigInvalid(detail=f"{path}: hebca.origins.{origin}.{key} is invalid")
        if opts.get("text_encoding", "utf-8").lower() not in ("utf-8", "gbk"):
            raise ConfigInvalid(detail=f"{path}: text_encoding must be utf-8 or gbk")
        if opts.get("rsa_hash", "sha256").lower() not in ("sha256", "sha1"):
            raise ConfigInvalid(detail=f"{path}: rsa_hash must be sha256 or sha1")


_RENEWAL_KEYS: dict[str, type | tuple[type, ...]] = {
    "ca_origins": list,
    "ca_roots": list,
    "window_before_days": int,
    "window_after_days": int,
    "old_certificate": str,
}


def _check_renewal(renewal: object, path: Path) -> None:
    if not isinstance(renewal, dict):
        raise ConfigInvalid(detail=f"{path}: [renewal] must be a table")
    for key, value in renewal.items():
        typ = _RENEWAL_KEYS.get(key)
        if typ is None or not isinstance(value, typ) or isinstance(value, bool):
            raise ConfigInvalid(detail=f"{path}: 'renewal.{key}' is unknown or has the wrong type")
    for key in ("ca_origins", "ca_roots"):
        if not all(isinstance(v, str) for v in renewal.get(key, [])):
            raise ConfigInvalid(detail=f"{path}: 'renewal.{key}' must be a list of strings")
    for key in ("window_before_days", "window_after_days"):
        if not 0 <= renewal.get(key, 0) <= 3650:
            raise ConfigInvalid(detail=f"{path}: 'renewal.{key}' must be 0..3650")
    if renewal.get("old_certificate", "archive") not in ("archive", "remove"):
        raise ConfigInvalid(detail=f"{path}: 'renewal.old_certificate' must be archive or remove")


def resolve_path(explicit: str | os.PathLike[str] | None) -> tuple[Path, bool]:
    """The config path and whether it was asked for explicitly."""
    if explicit:
        return Path(explicit), True
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env), True
    return default_config_path(), False


def _skf_setting(base: Path, entry: str | dict[str, str]) -> SkfLibrarySetting:
    if isinstance(entry, str):
        return SkfLibrarySetting(str(base / os.path.expanduser(entry)))
    path = str(base / os.path.expanduser(entry["path"]))
    return SkfLibrarySetting(path, entry.get("abi") == "native-long")


def load_config(
    explicit: str | os.PathLike[str] | None = None,
    *,
    extra_modules: list[str] | None = None,
    extra_skf: list[str] | None = None,
) -> Config:
    path, is_explicit = resolve_path(explicit)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigInvalid(detail=f"{path}: {exc}") from None
        except OSError as exc:
            raise ConfigInvalid(detail=f"{path}: {exc.strerror}") from None
        _check(data, path)
    elif is_explicit:
        raise ConfigInvalid(detail=f"not found: {path}")
    logging_ = data.get("logging", {})
    audit = data.get("audit", {})
    base = path.parent
    cfg = Config(
        path=path if path.exists() else None,
        modules=[str(base / os.path.expanduser(m)) for m in data.get("modules", [])],
        use_catalog=data.get("use_catalog", True),
        softhsm2_conf=(
            str(base / os.path.expanduser(data["softhsm2_conf"]))
            if data.get("softhsm2_conf")
            else None
        ),
        skf_libraries=[_skf_setting(base, e) for e in data.get("skf_libraries", [])],
        softskf_dir=(
            str(base / os.path.expanduser(data["softskf_dir"])) if data.get("softskf_dir") else None
        ),
        log_level=logging_.get("level", "INFO").upper(),
        log_to_file=logging_.get("file", True),
        audit_max_bytes=audit.get("max_bytes", Config.audit_max_bytes),
        audit_keep=audit.get("keep", Config.audit_keep),
        token_timeout=float(data.get("token_timeout", 30.0)),
    )
    bridge = data.get("bridge", {})
    cfg.bridge_port = bridge.get("port", cfg.bridge_port)
    if "origins" in bridge:
        cfg.origins = list(bridge["origins"])
    cfg.session_idle_timeout = float(bridge.get("session_idle_timeout", cfg.session_idle_timeout))
    cfg.dialog_timeout = float(bridge.get("dialog_timeout", cfg.dialog_timeout))
    cfg.dialogs_per_minute = bridge.get("dialogs_per_minute", cfg.dialogs_per_minute)
    cfg.max_connections = bridge.get("max_connections", cfg.max_connections)
    cfg.max_pending_connections = bridge.get("max_pending_connections", cfg.max_pending_connections)
    cfg.header_timeout = float(bridge.get("header_timeout", cfg.header_timeout))
    cfg.tls_handshake_timeout = float(
        bridge.get("tls_handshake_timeout", cfg.tls_handshake_timeout)
    )
    hebca = data.get("hebca", {})
    cfg.hebca_enabled = hebca.get("enabled", True)
    cfg.hebca_port = hebca.get("port", cfg.hebca_port)
    cfg.hebca_assistor_version = hebca.get("assistor_version", cfg.hebca_assistor_version)
    if "origins" in hebca:
        cfg.hebca_origins = dict(hebca["origins"])
    cfg.renewal_url = data.get("renewal_url", cfg.renewal_url)
    renewal = data.get("renewal", {})
    if "ca_origins" in renewal:
        cfg.renewal_ca_origins = list(renewal["ca_origins"])
    cfg.renewal_ca_roots = [str(base / os.path.expanduser(p)) for p in renewal.get("ca_roots", [])]
    cfg.renewal_window_before_days = renewal.get("window_before_days", 90)
    cfg.renewal_window_after_days = renewal.get("window_after_days", 365)
    cfg.renewal_old_certificate = renewal.get("old_certificate", "archive")
    cfg.modules += [os.path.abspath(m) for m in (extra_modules or [])]
    cfg.skf_libraries += [SkfLibrarySetting(os.path.abspath(m)) for m in (extra_skf or [])]
    return cfg
