"""``python -m helper.ui.mycerts [--token SERIAL]``: the 我的证书 window."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from drivers.errors import CertHelperError
from helper.config import load_config, log_dir
from helper.logs import setup_logging

log = logging.getLogger("helper.ui.mycerts")

EXIT_CONFIG = 2
EXIT_NO_DISPLAY = 3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m helper.ui.mycerts", description="证书助手 — 我的证书 (My certificates)"
    )
    p.add_argument("--token", metavar="SERIAL", help="select this key's certificates first")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config()
    except CertHelperError as exc:
        print(f"错误 (error) [{exc.code}]: {exc.message()}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.log_level, log_dir=log_dir() if config.log_to_file else None)
    try:
        import tkinter as tk
    except ImportError:
        print("错误 (error): 缺少 tkinter (tkinter is not installed)", file=sys.stderr)
        return EXIT_NO_DISPLAY
    from helper.ui.mycerts.view import MyCertsWindow

    try:
        window = MyCertsWindow(config, token=args.token)
    except tk.TclError as exc:
        print(f"错误 (error): 无法打开窗口 (cannot open a window): {exc}", file=sys.stderr)
        return EXIT_NO_DISPLAY
    started = time.monotonic()
    code = window.run()
    log.debug("mycerts closed after %.0f s", time.monotonic() - started)
    return code


if __name__ == "__main__":
    sys.exit(main())
