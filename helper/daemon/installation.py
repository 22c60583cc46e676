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
    """With a config (``certhelper install``/``uninstall``): everything, the extension's
    native host included. Without one (re-trusting a new CA): only the data dir and CA."""
    if config is None:
        return InstallContext(data_dir=data_dir(), ensure_ca=_ensure_ca)
    from helper.webext.host import native_host_spec

    return InstallContext(
        data_dir=data_dir(),
        page_origins=tuple(config.page_origins()),
        ensure_ca=_ensure_ca,
        native_host=native_host_spec(),
    )
