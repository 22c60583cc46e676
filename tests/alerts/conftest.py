"""Expiry alerts and notice windows.

The window tests reuse the dialog tests' Xvfb desktop (tests/ui/conftest.py);
their screenshots are named ``notice-*`` and listed at the end of the run.
"""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import _SHOTS, desk, shots_dir, xvfb

__all__ = ["desk", "shots_dir", "xvfb"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    notices = [p for p in _SHOTS if p.name.startswith("notice-")]
    if notices:
        terminalreporter.write_line(
            f"notice screenshots ({len(notices)}): {notices[0].parent}", bold=True
        )
