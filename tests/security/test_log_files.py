"""Finding 11: rotated logs stay user-only (0600), like the live one."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from helper.logs import setup_logging


def test_every_log_file_is_user_only(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a common default: files would be 0644
    try:
        setup_logging("INFO", log_dir=tmp_path, max_bytes=4096)
        log = logging.getLogger("certhelper.test")
        for i in range(400):  # ~40 KB: several rotations
            log.info("line %d %s", i, "x" * 80)
        for h in logging.getLogger().handlers:
            h.flush()
    finally:
        os.umask(old_umask)
        setup_logging("INFO")  # drop the file handler
    files = sorted(tmp_path.glob("certhelper.log*"))
    assert [f.name for f in files] == [
        "certhelper.log",
        "certhelper.log.1",
        "certhelper.log.2",
        "certhelper.log.3",
    ]
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f.name
