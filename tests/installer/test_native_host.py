"""installer.native_host writes and removes the host manifests in a temporary HOME."""

from __future__ import annotations

import json
import os
from pathlib import Path

from installer import native_host


def test_install_and_uninstall(tmp_path: Path) -> None:
    launcher = native_host.write_launcher(
        tmp_path / "bin" / "certhelper-host", ["/usr/bin/certhelper"]
    )
    assert os.access(launcher, os.X_OK)
    assert 'exec /usr/bin/certhelper native-host "$@"' in launcher.read_text()
    written = native_host.install(tmp_path, launcher, "a" * 32, firefox_id="certhelper@example")
    assert len(written) == 4
    chromium = json.loads(
        (tmp_path / ".config/chromium/NativeMessagingHosts/org.certhelper.host.json").read_text()
    )
    assert chromium["allowed_origins"] == ["chrome-extension://" + "a" * 32 + "/"]
    assert chromium["path"] == str(launcher) and chromium["type"] == "stdio"
    firefox = json.loads(
        (tmp_path / ".mozilla/native-messaging-hosts/org.certhelper.host.json").read_text()
    )
    assert (
        firefox["allowed_extensions"] == ["certhelper@example"] and "allowed_origins" not in firefox
    )
    assert sorted(native_host.uninstall(tmp_path)) == sorted(written)
    assert native_host.uninstall(tmp_path) == []
