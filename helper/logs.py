"""Logging set-up. PINs never reach a log: they travel as ``drivers.types.Pin``,
whose repr is masked, and no code formats one into a message."""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_BYTES = 1_000_000
BACKUPS = 3


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Every log file, the rotated ones too, is created user-only (0600): the base
    file is made with that mode before each open, and a rotation renames it."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)
        os.chmod(self.baseFilename, 0o600)  # a file made earlier with another mode
        return super()._open()


def setup_logging(
    level: str = "INFO",
    *,
    log_dir: Path | None = None,
    verbose: int = 0,
    max_bytes: int = MAX_BYTES,
) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(logging.DEBUG if verbose else getattr(logging, level, logging.INFO))
    console = logging.StreamHandler()
    # the CLI speaks to the user itself; the console log is for -v / -vv
    console.setLevel(
        logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.CRITICAL
    )
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    if log_dir is None:
        return
    try:
        log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = log_dir / "certhelper.log"
        fh = PrivateRotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=BACKUPS, encoding="utf-8"
        )
    except OSError:
        return  # a read-only home must not stop the helper
    fh.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(fh)
