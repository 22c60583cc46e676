"""``certhelper install`` / ``uninstall`` in a temporary HOME, through the CLI."""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

import keyring.backends.fail
from cryptography import x509

from helper.services.tls import ensure_identity
from helper.webext.ids import CHROMIUM_EXTENSION_ID, FIREFOX_ADDON_ID
from installer.native_host import manifest_paths
from installer.nss import nickname
from tests.support.installer import Home

P11 = "x-scheme-handler/p11"
CH = "x-scheme-handler/certhelper"


def nss_nicknames(h: Home, db: Path) -> list[str]:
    out = h.tool("certutil", "-L", "-d", f"sql:{db}").stdout
    return [line[:60].strip() for line in out.splitlines()[4:] if line.strip()]


def without_db_files(snap: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    return {
        k: (("db" if k.endswith((".db", "pkcs11.txt")) else v[0]), v[1]) for k, v in snap.items()
    }


def ca_nick(h: Home) -> str:
    return nickname(x509.load_pem_x509_certificate((h.data / "tls" / "ca.pem").read_bytes()))


def test_install_twice_then_uninstall_restores_home(home: Home) -> None:
    home.ensure_identity()
    before = home.snapshot()

    first = home.run("install")
    assert "已完成" in first.stdout
    autostart = home.home / ".config" / "autostart" / "certhelper.desktop"
    scheme = home.home / ".local" / "share" / "applications" / "certhelper-url.desktop"
    for f in (autostart, scheme):
        result = home.tool("desktop-file-validate", str(f))
        assert result.returncode == 0 and "error" not in result.stdout, result.stdout
    text = autostart.read_text("utf-8")
    assert "Name[zh_CN]=证书助手" in text and "X-GNOME-Autostart-enabled=true" in text
    assert any(line.startswith("Exec=/") and line.endswith(" run") for line in text.splitlines())
    stext = scheme.read_text("utf-8")
    assert "MimeType=x-scheme-handler/p11;x-scheme-handler/certhelper;" in stext
    assert "open-url %u" in stext and "NoDisplay=true" in stext
    for mime in (P11, CH):
        query = home.tool("xdg-mime", "query", "default", mime)
        assert query.stdout.strip() == "certhelper-url.desktop", query
    assert nss_nicknames(home, home.nssdb) == [ca_nick(home)]
    listing = home.tool("certutil", "-L", "-d", f"sql:{home.nssdb}").stdout
    assert "C,," in listing
    check_native_host(home)

    after_first = home.snapshot()
    second = home.run("install")
    assert "已完成" not in second.stdout and "已存在" in second.stdout
    assert home.snapshot() == after_first
    assert "[已存在 unchanged] 浏览器扩展连接 native messaging host" in second.stdout

    out = home.run("uninstall").stdout
    assert "[已完成 done] 浏览器扩展连接 native messaging host: 已删除 removed" in out, out
    assert "[已完成 done] 扩展本机程序 native host launcher: 已删除 removed" in out, out
    assert home.snapshot() == before


def frame(obj: object) -> bytes:
    data = json.dumps(obj).encode()
    return struct.pack("<I", len(data)) + data


def check_native_host(h: Home) -> None:
    """The host manifests admit exactly our extension; their launcher runs the real
    host module, as the browser would start it (another directory, the caller argument)."""
    launcher = h.data / "certhelper-native-host"
    files = manifest_paths(h.home, h.home / ".config")
    for family, path in files.items():
        body = json.loads(path.read_text("utf-8"))
        assert body["name"] == "org.certhelper.host" and body["type"] == "stdio"
        assert body["path"] == str(launcher)
        if family == "firefox":
            assert body["allowed_extensions"] == [FIREFOX_ADDON_ID]
        else:
            assert body["allowed_origins"] == [f"chrome-extension://{CHROMIUM_EXTENSION_ID}/"]
    assert os.access(launcher, os.X_OK)
    # a frame before "open": the host answers bad_request without reaching any daemon
    proc = subprocess.run(
        [str(launcher), f"chrome-extension://{CHROMIUM_EXTENSION_ID}/"],
        input=frame({"frame": "{}"}),
        capture_output=True,
        cwd="/",
        env=h.env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (size,) = struct.unpack("<I", proc.stdout[:4])
    assert size == len(proc.stdout) - 4, proc.stderr
    assert json.loads(proc.stdout[4:]) == {"error": {"code": "bad_request"}}


def test_uninstall_keeps_what_was_there(home: Home) -> None:
    """A HOME with its own mimeapps.list (another p11 handler), an NSS db with another
    CA and a Firefox profile: uninstall puts back the old default and removes only ours."""
    ident = home.ensure_identity()
    config = home.home / ".config"
    config.mkdir()
    (config / "mimeapps.list").write_text(
        "[Default Applications]\nx-scheme-handler/p11=legacy-client.desktop\n"
        "text/html=firefox.desktop\n",
        "utf-8",
    )
    apps = home.home / ".local" / "share" / "applications"
    apps.mkdir(parents=True)
    (apps / "legacy-client.desktop").write_text(
        "[Desktop Entry]\nType=Application\nName=Legacy\nExec=true %u\n"
        "MimeType=x-scheme-handler/p11;\nNoDisplay=true\n",
        "utf-8",
    )
    home.nssdb.mkdir(parents=True)
    home.tool("certutil", "-N", "-d", f"sql:{home.nssdb}", "--empty-password")
    profile = home.home / ".mozilla" / "firefox" / "abcd.default-esr"
    profile.mkdir(parents=True)
    home.tool("certutil", "-N", "-d", f"sql:{profile}", "--empty-password")
    # someone else's anchor (any CA will do: a second identity's)
    second = ensure_identity(
        home.root / "other-tls", keyring_backend=keyring.backends.fail.Keyring()
    )
    added = home.tool(
        "certutil",
        "-A",
        "-d",
        f"sql:{home.nssdb}",
        "-t",
        "C,,",
        "-n",
        "corp root",
        "-i",
        str(second.paths.ca_cert),
    )
    assert added.returncode == 0, added.stderr
    dbs = (home.nssdb, profile)
    before = without_db_files(home.snapshot())
    listings = [home.tool("certutil", "-L", "-d", f"sql:{db}").stdout for db in dbs]

    home.run("install")
    assert home.tool("xdg-mime", "query", "default", P11).stdout.strip() == "certhelper-url.desktop"
    manifest = json.loads((home.data / "install-manifest.json").read_text("utf-8"))
    assert manifest["mime"]["previous"][P11] == "legacy-client.desktop"
    assert sorted(nss_nicknames(home, home.nssdb)) == sorted(["corp root", ca_nick(home)])
    assert nss_nicknames(home, profile) == [ca_nick(home)]
    assert str(home.nssdb) not in manifest["nss_created"]
    assert ident.paths.ca_cert.exists()

    home.run("uninstall")
    # SQLite pages of databases that existed before differ after an add and a delete:
    # for those, compare what they hold; every other file must be byte for byte the same
    assert without_db_files(home.snapshot()) == before
    assert [home.tool("certutil", "-L", "-d", f"sql:{db}").stdout for db in dbs] == listings
    assert home.tool("xdg-mime", "query", "default", P11).stdout.strip() == "legacy-client.desktop"
    assert nss_nicknames(home, home.nssdb) == ["corp root"]


def test_regenerated_ca_replaces_the_trust_entry(home: Home) -> None:
    home.ensure_identity()
    home.run("install")
    old = ca_nick(home)
    for f in (home.data / "tls").iterdir():
        f.unlink()
    assert home.ensure_identity().created
    new = ca_nick(home)
    assert new != old
    out = home.run("install").stdout
    assert "已完成" in out
    assert nss_nicknames(home, home.nssdb) == [new]
    home.run("uninstall")
    assert not home.nssdb.exists()


def test_system_trust_with_injected_paths(home: Home) -> None:
    sysdir = home.root / "ca-certificates"
    marker = home.root / "updated"
    env = dict(
        home.env,
        CERTHELPER_SYSTEM_CA_DIR=str(sysdir),
        CERTHELPER_UPDATE_CA_CERTIFICATES=f"touch {marker}",
        CERTHELPER_POLICY_ROOT=str(home.root / "policy-root"),
    )
    h = Home(home.root, home.home, env)
    h.run("install", "--system")
    target = sysdir / "certhelper-local-ca.crt"
    assert target.read_bytes() == (h.data / "tls" / "ca.pem").read_bytes()
    assert marker.exists()
    policies = [
        home.root / "policy-root" / d / "certhelper.json"
        for d in ("etc/chromium/policies/managed", "etc/opt/chrome/policies/managed")
    ]
    for p in policies:  # the configured halls may reach the helper (docs/lna.md)
        doc = json.loads(p.read_text())
        assert "http://111.62.46.105:9010" in doc["LocalNetworkAccessAllowedForUrls"]
        assert "http://111.62.46.105:9010" in doc["OverrideSecurityRestrictionsOnInsecureOrigin"]
    # the polkit action that lets 检测修复 run certhelper-admin (installer/polkit.py)
    action = home.root / "policy-root/usr/share/polkit-1/actions/org.certhelper.admin.policy"
    assert "org.freedesktop.policykit.exec.path" in action.read_text("utf-8")
    marker.unlink()
    again = h.run("install", "--system")
    assert "已完成" not in again.stdout and not marker.exists()
    # a plain uninstall leaves the system part and says so
    out = h.run("uninstall").stdout
    assert "--system" in out and target.exists()
    h.run("uninstall", "--system")
    assert not target.exists() and marker.exists()
    assert not any(p.exists() for p in policies)
    assert not action.exists()
    assert not (h.data / "install-manifest.json").exists()


def test_dry_run_changes_nothing(home: Home) -> None:
    home.ensure_identity()
    before = home.snapshot()
    out = home.run("install", "--dry-run").stdout
    assert "演练" in out and "自启动" in out
    # a dry run did nothing: it never says 已完成 (done), only what it would do
    assert "已完成" not in out and "[将执行 would do] 自启动" in out, out
    assert "[将执行 would do] 浏览器扩展连接 native messaging host" in out, out
    assert ".mozilla/native-messaging-hosts/org.certhelper.host.json" in out
    assert home.snapshot() == before


def test_uninstall_without_install(home: Home) -> None:
    before = home.snapshot()
    out = home.run("uninstall").stdout
    assert "未安装" in out
    assert home.snapshot() == before


def test_cli_help_lists_commands() -> None:
    from helper.cli.main import build_parser

    text = build_parser().format_help()
    for cmd in ("install", "uninstall", "open-url"):
        assert cmd in text


def test_autostart_status_for_doctor(home: Home) -> None:
    from installer import autostart

    assert not autostart.status().present
    home.ensure_identity()
    home.run("install")
    st = autostart.status()
    assert st.present and st.enabled and st.exec_ok and st.ok
