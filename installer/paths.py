"""Where the installer puts things, computed from ``$HOME`` and the XDG variables at
call time (tests point them at a temporary HOME).

Test hooks (see installer/__init__.py; never needed in normal use):

- ``CERTHELPER_SYSTEM_CA_DIR``: the system anchor directory instead of
  ``/usr/local/share/ca-certificates`` (also lifts the root requirement of ``--system``)
- ``CERTHELPER_UPDATE_CA_CERTIFICATES``: the command run instead of
  ``update-ca-certificates``
"""

from __future__ import annotations

import os
from pathlib import Path

AUTOSTART_NAME = "certhelper.desktop"
SCHEME_DESKTOP_NAME = "certhelper-url.desktop"
SCHEMES = ("p11", "certhelper")
MIME_TYPES = tuple(f"x-scheme-handler/{s}" for s in SCHEMES)
MANIFEST_NAME = "install-manifest.json"
SYSTEM_CA_NAME = "certhelper-local-ca.crt"
DEFAULT_SYSTEM_CA_DIR = "/usr/local/share/ca-certificates"
ENV_SYSTEM_CA_DIR = "CERTHELPER_SYSTEM_CA_DIR"
ENV_UPDATE_CA = "CERTHELPER_UPDATE_CA_CERTIFICATES"


def home() -> Path:
    return Path(os.environ.get("HOME") or os.path.expanduser("~"))


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    # the XDG spec: relative paths are invalid and must be ignored
    return Path(value) if value and os.path.isabs(value) else home() / default


def config_home() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config")


def data_home() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share")


def autostart_dir() -> Path:
    return config_home() / "autostart"


def autostart_file() -> Path:
    return autostart_dir() / AUTOSTART_NAME


def applications_dir() -> Path:
    return data_home() / "applications"


def scheme_desktop_file() -> Path:
    return applications_dir() / SCHEME_DESKTOP_NAME


def mimeapps_list() -> Path:
    """The file ``xdg-mime default`` edits outside GNOME/KDE sessions."""
    return config_home() / "mimeapps.list"


def nssdb_dir() -> Path:
    """Chromium's (and other NSS users') shared user database."""
    return home() / ".pki" / "nssdb"


def firefox_roots() -> list[Path]:
    """Directories holding Firefox profiles (Debian's package and the snap)."""
    h = home()
    return [h / ".mozilla" / "firefox", h / "snap" / "firefox" / "common" / ".mozilla" / "firefox"]


def system_ca_dir() -> Path:
    return Path(os.environ.get(ENV_SYSTEM_CA_DIR) or DEFAULT_SYSTEM_CA_DIR)


def system_ca_file() -> Path:
    return system_ca_dir() / SYSTEM_CA_NAME


def system_paths_overridden() -> bool:
    return bool(os.environ.get(ENV_SYSTEM_CA_DIR))


def update_ca_command() -> list[str]:
    import shlex

    return shlex.split(os.environ.get(ENV_UPDATE_CA) or "update-ca-certificates")
