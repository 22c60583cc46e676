"""Processes the tests started indirectly (through a browser, a native host …)."""

from __future__ import annotations

from pathlib import Path


def alive(pid: int) -> bool:
    """Running; a zombie (exited, its parent not waiting) counts as ended."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
