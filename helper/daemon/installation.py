"""The installer's view of this installation, built from the configuration
(the installer itself never imports ``helper``)."""

from __future__ import annotations

from pathlib import Path

from helper.config import Config, data_dir
from installer.context import InstallContext


def _ensure_ca() -> tuple[Path, bool]:
    from helper.services.tls import ensure_identity

    identity = ensure_identity(data_dir() / "tls")
    return identity.paths.ca_cert, identity.created


def install_context(config: Config | None = None) -> InstallContext:
    origins = tuple(config.page_origins()) if config is not None else ()
    return InstallContext(data_dir=data_dir(), page_origins=origins, ensure_ca=_ensure_ca)
