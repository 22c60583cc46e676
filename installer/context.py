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

#: makes sure the local TLS CA exists; returns its PEM file and whether it is new
EnsureCa = Callable[[], tuple[Path, bool]]


@dataclass(frozen=True)
class InstallContext:
    #: certhelper's data directory (the install manifest, the local CA under tls/)
    data_dir: Path
    #: the hall and CA origins the browser policy lets reach the helper
    page_origins: tuple[str, ...] = ()
    #: creates the local CA when it is missing (None: only look)
    ensure_ca: EnsureCa | None = None

    @property
    def manifest_file(self) -> Path:
        return self.data_dir / MANIFEST_NAME

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"
