"""The Windows/macOS installer assets, rendered and checked for content here on
Linux. They are not run on Windows or macOS (docs/platforms.md)."""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from installer.assets import generate
from installer.assets.generate import TEMPLATES, AssetTemplate, template_text
from tests.support.tokens import ROOT


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("assets")
    generate(d, version="1.2.3", python_exe="/Users/x/venv & co/bin/python")
    return d


def iss(out: Path) -> str:
    return (out / "certhelper.iss").read_text("utf-8-sig")


def test_all_placeholders_filled(out: Path) -> None:
    names = {p.name for p in out.iterdir()}
    assert names == {o for o, _x, _e in TEMPLATES.values()} | {"certhelper-lna.mobileconfig"}
    for p in out.iterdir():
        assert "@@" not in p.read_text("utf-8-sig"), p
    for name in TEMPLATES:
        assert AssetTemplate(template_text(name)).get_identifiers()  # every one is a template


def test_iss_run_key(out: Path) -> None:
    text = iss(out)
    assert re.search(
        r'Root: HKCU; Subkey: "Software\\Microsoft\\Windows\\CurrentVersion\\Run"; '
        r'ValueType: string; ValueName: "certhelper"; '
        r'ValueData: """\{app\}\\\{#AppExe\}"" run"; Flags: uninsdeletevalue',
        text,
    )
    assert '#define AppExe "certhelper.exe"' in text
    assert "PrivilegesRequired=lowest" in text and 'AppVersion "1.2.3"' in text.replace(
        "#define AppVersion", "AppVersion"
    )


@pytest.mark.parametrize("scheme", ["P11", "certhelper"])
def test_iss_url_protocols(out: Path, scheme: str) -> None:
    text = iss(out)
    key = f"Software\\Classes\\{scheme}"
    assert f'Subkey: "{key}"; ValueType: string; ValueName: ""; ValueData: "URL:' in text
    assert f'Subkey: "{key}"; ValueType: string; ValueName: "URL Protocol"; ValueData: ""' in text
    assert (
        f'Subkey: "{key}\\shell\\open\\command"; ValueType: string; ValueName: ""; '
        'ValueData: """{app}\\{#AppExe}"" open-url ""%1"""'
    ) in text
    assert re.search(rf'Subkey: "{re.escape(key)}";.*Flags: uninsdeletekey', text)


def test_iss_certificate_import_and_uninstall(out: Path) -> None:
    text = iss(out)
    run = text.split("[Run]")[1].split("[UninstallRun]")[0]
    lines = [line for line in run.splitlines() if line.startswith("Filename")]
    # install first (it makes the CA), then import it into CurrentUser\Root
    assert 'Parameters: "install"' in lines[0]
    assert (
        'Filename: "{sys}\\certutil.exe"; Parameters: "-user -addstore Root '
        '""{localappdata}\\certhelper\\tls\\ca.pem"""'
    ) in lines[1]
    uninstall = text.split("[UninstallRun]")[1]
    assert 'Parameters: "uninstall"' in uninstall
    assert "Cert:\\CurrentUser\\Root" in uninstall and "certhelper local CA" in uninstall
    assert "{{ $_.Subject" in uninstall  # Inno's literal brace, PowerShell's $_
    assert (
        '[UninstallDelete]\nType: filesandordirs; Name: "{localappdata}\\certhelper\\tls"' in text
    )
    assert "NOT run on Windows" in text
    assert (out / "certhelper.iss").read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 BOM


def test_launch_agent_plist(out: Path) -> None:
    data = plistlib.loads((out / "com.certhelper.agent.plist").read_bytes())
    assert data["Label"] == "com.certhelper.agent"
    assert data["ProgramArguments"] == [
        "/Users/x/venv & co/bin/python",  # XML-escaped in the file, intact here
        "-m",
        "helper.cli.main",
        "run",
    ]
    assert data["RunAtLoad"] is True and data["KeepAlive"] is False


def test_default_plist_uses_home_placeholder(tmp_path: Path) -> None:
    generate(tmp_path)
    data = plistlib.loads((tmp_path / "com.certhelper.agent.plist").read_bytes())
    assert data["ProgramArguments"][0].startswith("@HOME@/Library/Application Support/")
    assert data["ProgramArguments"][-1] == "run"


def test_url_types_plist(out: Path) -> None:
    data = plistlib.loads((out / "url-types.plist").read_bytes())
    schemes = {s for t in data["CFBundleURLTypes"] for s in t["CFBundleURLSchemes"]}
    assert {"p11", "certhelper"} <= schemes


@pytest.mark.parametrize("name", ["install-macos.sh", "uninstall-macos.sh"])
def test_shell_scripts_parse(out: Path, name: str) -> None:
    path = out / name
    assert os.access(path, os.X_OK)
    assert path.read_text().startswith("#!/bin/bash\n")
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_install_script_steps(out: Path) -> None:
    text = (out / "install-macos.sh").read_text()
    assert (
        'security add-trusted-cert -r trustRoot -k ~/Library/Keychains/login.keychain-db "$TLS_CA"'
        in text
    )
    assert 'TLS_CA="$SUPPORT/tls/ca.pem"' in text
    assert 'SUPPORT="$HOME/Library/Application Support/certhelper"' in text
    assert "osacompile" in text and "on open location" in text and "open-url" in text
    assert "url-types.plist" in text and "lsregister" in text
    assert 'launchctl bootstrap "gui/$(id -u)" "$AGENT"' in text
    assert "certhelper-1.2.3-py3-none-any.whl" in text
    assert "NOT run on macOS" in text


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_module_entry_point(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "installer.assets", str(tmp_path / "o"), "--version", "9.9"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o" / "certhelper.iss").is_file()
    assert "9.9" in (tmp_path / "o" / "certhelper.iss").read_text("utf-8-sig")
