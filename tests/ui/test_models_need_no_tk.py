"""The windows' models are plain Python: importing them loads no Tk (so they are
testable without a display, and the daemon can use their texts)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.tokens import ROOT

MODELS = [
    "helper.ui.mycerts.model",
    "helper.ui.mycerts.rows",
    "helper.ui.mycerts.poller",
    "helper.ui.mycerts.export",
    "helper.ui.changepin.model",
    "helper.ui.changepin.policy",
    "helper.ui.changepin.outcome",
    "helper.ui.dialogs.texts",
    "helper.ui.notice.content",
    "helper.ui.notice.wrap",
]


@pytest.mark.parametrize("module", MODELS)
def test_model_imports_no_tk(module: str) -> None:
    code = f"import sys, {module}; print('tkinter' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "False"


def test_the_check_sees_tk_when_a_module_loads_it() -> None:
    """The probe itself works: a module that imports Tk is seen."""
    code = "import sys, tkinter.ttk; print('tkinter' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "True"
