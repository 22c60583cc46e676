"""``python -m helper.ui.changepin [--token LABEL|SERIAL]``: the 修改密码 window."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from drivers.errors import CertHelperError
from helper.config import Config, load_config, log_dir
from helper.logs import setup_logging
from helper.services.tokens import TokenService

EXIT_CONFIG = 2
EXIT_NO_DISPLAY = 3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m helper.ui.changepin", description="证书助手 — 修改密码 (Change PIN)"
    )
    p.add_argument("--token", metavar="LABEL|SERIAL", help="the key whose PIN to change")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config: Config = load_config()
    except CertHelperError as exc:
        print(f"错误 (error) [{exc.code}]: {exc.message()}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.log_level, log_dir=log_dir() if config.log_to_file else None)
    try:
        import tkinter as tk
    except ImportError:
        print("错误 (error): 缺少 tkinter (tkinter is not installed)", file=sys.stderr)
        return EXIT_NO_DISPLAY
    service = TokenService.from_config(config)
    try:
        tokens = sorted(service.tokens(), key=lambda dt: (dt[1].label, dt[1].serial))
        if args.token:
            tokens = [(d, t) for d, t in tokens if args.token in (t.serial, t.label)]
        from helper.ui.changepin.view import ChangePinWindow

        try:
            window = ChangePinWindow(service, tokens, query=args.token)
        except tk.TclError as exc:
            print(f"错误 (error): 无法打开窗口 (cannot open a window): {exc}", file=sys.stderr)
            return EXIT_NO_DISPLAY
        return window.run()
    finally:
        service.close()


if __name__ == "__main__":
    sys.exit(main())
