"""What the installer needs from the application, handed in as plain values.

The installer never imports ``helper``: the caller (``certhelper install``, the
daemon re-trusting a new local CA) builds an :class:`InstallContext` from its
configuration and passes it down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MANIFEST_NAME = "install-manifest.json"
LAUNCHER_NAME = "certhelper-native-host"

#: makes sure the local TLS CA exists; returns its PEM file and whether it is new
EnsureCa = Callable[[], tuple[Path, bool]]


@dataclass(frozen=True)
class NativeHostSpec:
    """What the browser extension's native-messaging host needs (installer/native_host.py)."""

    #: the argv the launcher execs (never a PIN or any secret: it is a file on disk)
    command: tuple[str, ...]
    #: environment the launcher exports first (e.g. PYTHONPATH for a source checkout)
    env: tuple[tuple[str, str], ...] = ()
    #: Chromium-family extension IDs (``allowed_origins`` = chrome-extension://ID/)
    chromium_ids: tuple[str, ...] = ()
    #: Firefox add-on IDs (``allowed_extensions``)
    firefox_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class InstallContext:
    #: certhelper's data directory (the install manifest, the local CA under tls/)
    data_dir: Path
    #: the hall and CA origins the browser policy lets reach the helper
    page_origins: tuple[str, ...] = ()
    #: creates the local CA when it is missing (None: only look)
    ensure_ca: EnsureCa | None = None
    #: the browser extension's native host (None: not registered)
    native_host: NativeHostSpec | None = None

    @property
    def manifest_file(self) -> Path:
        return self.data_dir / MANIFEST_NAME

    @property
    def launcher_file(self) -> Path:
        """The script the host manifests name as ``path``."""
        return self.data_dir / LAUNCHER_NAME

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"
