"""Render the Windows and macOS installer assets from the templates beside this file.

``python -m installer.assets OUTDIR [--version V]`` writes:

- ``certhelper.iss``             Inno Setup script (Windows; per-user Run key, P11 and
                                 certhelper URL protocols, local CA into CurrentUser\\Root)
- ``com.certhelper.agent.plist`` LaunchAgent (macOS; RunAtLoad, KeepAlive false)
- ``url-types.plist``            CFBundleURLTypes merged into the macOS URL applet
- ``install-macos.sh``           macOS per-user install (venv, keychain trust, URL
                                 schemes, LaunchAgent); ``uninstall-macos.sh`` undoes it
- ``certhelper-lna.mobileconfig`` macOS configuration profile: Chrome's and Edge's Local
                                 Network Access keys for the configured origins
                                 (``--origin``, repeated; installer/assets/lna.py); the
                                 .iss writes the same keys under HKLM (admin installs)

Templates use :class:`string.Template` with ``@@`` as the delimiter (``@@{version}``),
because ``$`` and ``%`` mean something in shell scripts and Inno Setup. None of these
files has been run on Windows or macOS by this project; see docs/platforms.md.
"""

from __future__ import annotations

import os
import stat
import string
import uuid
from collections.abc import Sequence
from importlib import resources
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path
from xml.sax.saxutils import escape

from installer.assets.lna import DEFAULT_ORIGINS, MOBILECONFIG, iss_registry, mobileconfig


def _installed_version() -> str:
    """The certhelper distribution's version (the installer never imports helper)."""
    try:
        return _dist_version("certhelper")
    except PackageNotFoundError:
        return "0.0.0"


__version__ = _installed_version()

LABEL = "com.certhelper.agent"
#: a fixed Inno Setup AppId, so upgrades replace the previous install
APP_ID = str(uuid.uuid5(uuid.NAMESPACE_DNS, "certhelper.installer.windows")).upper()
#: where install-macos.sh puts the venv; @HOME@ is replaced at install time
MACOS_PYTHON = "@HOME@/Library/Application Support/certhelper/venv/bin/python"
MACOS_LOG_DIR = "@HOME@/Library/Logs/certhelper"

#: template name -> (output name, escape values for XML, executable)
TEMPLATES: dict[str, tuple[str, bool, bool]] = {
    "certhelper.iss.template": ("certhelper.iss", False, False),
    "com.certhelper.agent.plist.template": (f"{LABEL}.plist", True, False),
    "url-types.plist.template": ("url-types.plist", True, False),
    "install-macos.sh.template": ("install-macos.sh", False, True),
    "uninstall-macos.sh.template": ("uninstall-macos.sh", False, True),
}


class AssetTemplate(string.Template):
    delimiter = "@@"


def template_text(name: str) -> str:
    return resources.files("installer.assets").joinpath(name).read_text("utf-8")


def render(name: str, values: dict[str, str]) -> str:
    """One template rendered; a missing value raises KeyError (no silent blanks)."""
    _out, xml, _exe = TEMPLATES[name]
    if xml:
        values = {k: escape(v) for k, v in values.items()}
    return AssetTemplate(template_text(name)).substitute(values)


def generate(
    out_dir: Path | str,
    *,
    version: str = __version__,
    python_exe: str = MACOS_PYTHON,
    log_dir: str = MACOS_LOG_DIR,
    payload_dir: str = r"dist\certhelper",
    wheel: str | None = None,
    publisher: str = "certhelper",
    label: str = LABEL,
    app_id: str = APP_ID,
    origins: Sequence[str] = DEFAULT_ORIGINS,
) -> list[Path]:
    """Write every asset into ``out_dir`` and return their paths.

    ``python_exe``: the interpreter the LaunchAgent runs (``-m helper.cli.main run``);
    ``payload_dir``: the PyInstaller one-folder build the .iss packs (relative to the
    .iss or absolute, Windows syntax); ``wheel``: the wheel file name install-macos.sh
    installs by default.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    values = {
        "version": version,
        "python_exe": python_exe,
        "log_dir": log_dir,
        "payload_dir": payload_dir,
        "wheel": wheel or f"certhelper-{version}-py3-none-any.whl",
        "publisher": publisher,
        "label": label,
        "app_id": app_id,
        "lna_registry": iss_registry(origins),
    }
    written = []
    for name, (out_name, _xml, executable) in TEMPLATES.items():
        path = out / out_name
        text = render(name, values)
        # the .iss keeps CRLF (Inno Setup is happy either way; Windows editors prefer it)
        newline = "\r\n" if out_name.endswith(".iss") else "\n"
        with open(
            path, "w", encoding="utf-8-sig" if newline == "\r\n" else "utf-8", newline=newline
        ) as f:
            f.write(text)
        if executable:
            os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        written.append(path)
    profile = out / MOBILECONFIG
    profile.write_bytes(mobileconfig(origins))
    written.append(profile)
    return written


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m installer.assets",
        description="Render the Windows (Inno Setup) and macOS (LaunchAgent) installer assets.",
    )
    p.add_argument("out_dir", type=Path)
    p.add_argument("--version", default=__version__)
    p.add_argument("--python-exe", default=MACOS_PYTHON, help="interpreter the LaunchAgent runs")
    p.add_argument("--payload-dir", default=r"dist\certhelper", help="PyInstaller build (Windows)")
    p.add_argument("--wheel", default=None, help="wheel file name for install-macos.sh")
    p.add_argument(
        "--origin",
        action="append",
        dest="origins",
        metavar="URL",
        help="a hall or CA origin for the browser policy (repeat; default: "
        + ", ".join(DEFAULT_ORIGINS)
        + ")",
    )
    args = p.parse_args(argv)
    for path in generate(
        args.out_dir,
        version=args.version,
        python_exe=args.python_exe,
        payload_dir=args.payload_dir,
        wheel=args.wheel,
        origins=args.origins or DEFAULT_ORIGINS,
    ):
        print(path)
    return 0
