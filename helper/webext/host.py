"""What is registered as the extension's native host: the launcher's command line
and the IDs the host manifests admit (handed to the installer as plain values)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helper.webext.ids import CHROMIUM_EXTENSION_ID, FIREFOX_ADDON_ID
from installer.context import NativeHostSpec

#: the host runs as a module, not through the CLI (docs/extension.md: ~57 ms sooner)
HOST_MODULE = "helper.bridge.extension.host"
#: the directory holding the ``helper`` package this process runs
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def _importable_elsewhere() -> bool:
    """Does this Python import *this* ``helper`` from any directory, without
    PYTHONPATH (an installed or editable package)? A plain source checkout does not."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "import helper, sys; sys.stdout.write(helper.__file__)"],
            cwd="/",
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    found = proc.stdout.strip()
    return proc.returncode == 0 and Path(found).resolve().parent.parent == SOURCE_ROOT


def native_host_spec() -> NativeHostSpec:
    """The same Python that runs this certhelper runs the host module; PYTHONPATH
    only when that Python would not find this ``helper`` on its own."""
    env = () if _importable_elsewhere() else (("PYTHONPATH", str(SOURCE_ROOT)),)
    return NativeHostSpec(
        command=(sys.executable, "-m", HOST_MODULE),
        env=env,
        chromium_ids=(CHROMIUM_EXTENSION_ID,),
        firefox_ids=(FIREFOX_ADDON_ID,),
    )
