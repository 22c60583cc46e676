"""``certhelper`` entry point: argument parsing, set-up, dispatch and exit codes.

Exit codes (docs/cli.md): 0 ok; 1 internal error; 2 usage, config or bad
input; 3 module or token unavailable; 4 PIN refused (incorrect, locked,
policy); 5 certificate not found, ambiguous or unreadable; 6 operation not
supported (e.g. SM2 signing); 9 doctor found problems; 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from drivers.errors import CertHelperError
from helper import __version__
from helper.config import Config, SkfLibrarySetting, demo_dir, load_config, log_dir
from helper.errors import Cancelled, ConfigInvalid
from helper.logs import setup_logging
from helper.services.tokens import TokenService

log = logging.getLogger("certhelper")

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_DOCTOR_PROBLEMS = 9
#: what 证书延期 opens with --demo: the demo CA (`certhelper demo-ca`)
DEMO_CA_URL = "http://127.0.0.1:9020/"

ServiceFactory = Callable[[Config], TokenService]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="certhelper",
        description="证书助手 — USB Key 数字证书工具 (certificate helper for USB keys)",
    )
    p.add_argument("--version", action="version", version=f"certhelper {__version__}")
    p.add_argument("--config", metavar="PATH", help="配置文件 (config file; or $CERTHELPER_CONFIG)")
    p.add_argument(
        "--module",
        metavar="PATH",
        action="append",
        default=[],
        help="加载 PKCS#11 模块 (load a PKCS#11 module; repeatable)",
    )
    p.add_argument(
        "--skf",
        metavar="PATH",
        action="append",
        default=[],
        help="加载 SKF 国密库 (load a GM/T 0016 SKF library; repeatable)",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="使用内置演示 Key (use the demo token built by `make demo`)",
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("list", help="列出 USB Key 与证书 (list tokens and certificates)")
    s.add_argument("--json", action="store_true", help="JSON output (schema certhelper-list/1)")

    s = sub.add_parser("show", help="证书详情 (certificate details)")
    s.add_argument("cert", metavar="CERT", help="id, SHA-256 prefix (>= 8 hex) or serial")
    out = s.add_mutually_exclusive_group()
    out.add_argument("--pem", metavar="OUT", nargs="?", const="-", help="write PEM (- = stdout)")
    out.add_argument("--der", metavar="OUT", help="write DER to OUT")
    s.add_argument("--json", action="store_true", help="JSON output")

    s = sub.add_parser("change-pin", help="修改 USB Key 密码 (change the PIN)")
    s.add_argument("--token", metavar="LABEL|SERIAL", help="which key, when several are inserted")
    s.add_argument(
        "--stdin", action="store_true", help="read old, new, confirm as three lines on stdin"
    )

    s = sub.add_parser("sign", help="用证书签名文件 (sign a file)")
    s.add_argument("--cert", required=True, metavar="CERT")
    s.add_argument("--in", dest="infile", required=True, metavar="FILE")
    s.add_argument("--out", dest="outfile", required=True, metavar="FILE")
    s.add_argument("--format", choices=("raw", "cms"), default="raw")
    s.add_argument("--attached", action="store_true", help="CMS with the content inside")
    s.add_argument("--sha1", action="store_true", help="RSA with SHA-1 (legacy backends)")
    s.add_argument(
        "--sm2-id",
        default="1234567812345678",
        metavar="ID",
        help="SM2 签名者 ID (distinguishing ID of a raw SM2 signature)",
    )
    s.add_argument("--pin-stdin", action="store_true", help="read the PIN as one line on stdin")

    s = sub.add_parser("doctor", help="检测问题 (check set-up, keys and certificates)")
    s.add_argument("--json", action="store_true")
    s.add_argument(
        "--fix",
        nargs="*",
        metavar="ID",
        help="修复 (repair): every available fix, or the named ones (docs/doctor.md)",
    )
    s.add_argument("-v", "--verbose", action="store_true", help="详细信息 (show the details)")

    s = sub.add_parser("serve", help="启动本机服务，供网上大厅调用 (run the localhost bridge)")
    s.add_argument("--port", type=int, help="HTTPS/WSS port (default 17213 or the config's)")

    s = sub.add_parser(
        "run", help="启动证书助手：托盘图标 + 本机服务 (the desktop daemon: tray and bridge)"
    )
    s.add_argument(
        "--background",
        action="store_true",
        help="已在运行时静默退出，供其他程序启动用 (if it runs already, exit quietly: "
        "for programs that start the helper, e.g. the browser's native host)",
    )

    s = sub.add_parser(
        "native-host", help="浏览器扩展的本机程序 (the browser extension's native-messaging host)"
    )
    # Chromium passes the caller (chrome-extension://ID/), Firefox the manifest path and ID
    s.add_argument("caller", nargs="*", help=argparse.SUPPRESS)

    s = sub.add_parser("extension", help="浏览器扩展 (the browser extension)")
    ext = s.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = ext.add_parser(
        "build",
        help="生成只在已配置网址上运行的扩展 (write the unpacked extension for the configured "
        "hall and CA origins)",
    )
    b.add_argument("--browser", choices=("chromium", "firefox"), default="chromium")
    b.add_argument("--out", required=True, metavar="DIR", help="输出目录 (output directory)")

    s = sub.add_parser("origins", help="网站授权管理 (sites allowed or denied)")
    s.add_argument("action", nargs="?", choices=("list", "revoke"), default="list")
    s.add_argument("origin", nargs="?", help="the origin to revoke, e.g. https://example.cn")

    s = sub.add_parser("demo-hall", help="演示网上大厅 (the demo hall at 127.0.0.1:9010/ish/)")
    s.add_argument("--port", type=int, default=9010)
    s.add_argument(
        "--ca",
        action="append",
        default=[],
        metavar="PEM",
        help="CA certificate(s) logins must chain to (default: the demo token's)",
    )
    s.add_argument(
        "--helper",
        default="https://127.0.0.1:17213",
        metavar="URL",
        help="where the hall's pages find certhelper",
    )

    s = sub.add_parser("demo-ca", help="演示CA：证书在线延期 (the demo CA's renewal site, :9020)")
    s.add_argument("--port", type=int, default=9020)
    s.add_argument(
        "--helper",
        default="https://127.0.0.1:17213",
        metavar="URL",
        help="where the CA's pages find certhelper",
    )

    s = sub.add_parser(
        "demo", help="演示：证书助手 + 演示大厅 + 演示CA (bridge, demo hall and demo CA together)"
    )
    s.add_argument("--no-browser", action="store_true", help="do not open a browser")

    s = sub.add_parser("audit", help="审计日志 (audit log)")
    s.add_argument("action", choices=("verify", "show"))

    s = sub.add_parser("install", help="安装：自启动、网址协议、本机证书信任 (desktop integration)")
    s.add_argument("--system", action="store_true", help="也加入系统信任库 (root: system trust)")
    s.add_argument("--dry-run", action="store_true", help="只显示将做什么 (change nothing)")

    s = sub.add_parser("uninstall", help="卸载 install 添加的内容 (undo certhelper install)")
    s.add_argument("--system", action="store_true", help="也移除系统信任库中的 CA (root)")

    s = sub.add_parser("open-url", help="打开 P11:// 或 certhelper:// 链接 (URL scheme handler)")
    s.add_argument("url", metavar="URL")
    return p


def resolve_config(args: argparse.Namespace) -> Config:
    config = load_config(args.config, extra_modules=args.module, extra_skf=args.skf)
    if args.demo:
        from drivers.catalog import installed_modules, load_catalog

        config.enable_demo()
        conf = demo_dir() / "softhsm2.conf"
        if not conf.exists():
            raise ConfigInvalid(detail=f"演示 Key 尚未生成，请先运行 make demo ({conf} missing)")
        softhsm = [p for e, p in installed_modules(load_catalog()) if e.id == "softhsm2"]
        if not softhsm:
            raise ConfigInvalid(detail="SoftHSM 未安装 (softhsm2 is not installed)")
        config.modules, config.use_catalog, config.softhsm2_conf = softhsm[:1], False, str(conf)
        skf = demo_skf_key(demo_dir())
        if skf is not None:  # the SM2 key on the soft SKF library (older demo dirs lack it)
            config.skf_libraries = [SkfLibrarySetting(skf[0])]
            config.softskf_dir = skf[1]
        for root in demo_roots(demo_dir()):  # the demo CA's (`certhelper demo-ca`)
            if str(root) not in config.renewal_ca_roots:
                config.renewal_ca_roots.append(str(root))
        if config.renewal_url == Config.renewal_url:  # 证书延期 opens the demo CA
            config.renewal_url = DEMO_CA_URL
    return config


def demo_roots(directory: Path) -> list[Path]:
    """The roots the demo CA's renewed certificates chain to: RSA, and SM2 when the demo
    has its soft SKF key."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError):
        return []
    found = [directory / "ca" / "root-ca.pem"]
    sm2 = ((manifest.get("skf") or {}).get("ca") or {}).get("root")
    if isinstance(sm2, str):
        found.append(Path(sm2))
    return [p for p in found if p.exists()]


def demo_skf_key(directory: Path) -> tuple[str, str] | None:
    """(SKF library, device directory) of the demo's SM2 key, from the demo build's
    manifest; None when the demo was built without one."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text("utf-8"))
        library, devices = manifest["skf"]["library"], manifest["skf"]["dir"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (isinstance(library, str) and isinstance(devices, str)):
        return None
    return (library, devices) if Path(library).is_file() and Path(devices).is_dir() else None


def default_service_factory(config: Config) -> TokenService:
    return TokenService.from_config(config)


def report_error(exc: CertHelperError) -> None:
    print(f"错误 (error) [{exc.code}]: {exc.message()}", file=sys.stderr)


def main(
    argv: Sequence[str] | None = None, *, service_factory: ServiceFactory | None = None
) -> int:
    """Run one command. Tests pass ``service_factory`` to inject a driver double."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        config = resolve_config(args)
        setup_logging(
            config.log_level,
            log_dir=log_dir() if config.log_to_file else None,
            verbose=args.verbose,
        )
        from helper.cli import commands

        handler = commands.HANDLERS[args.command]
        return handler(args, config, service_factory or default_service_factory)
    except CertHelperError as exc:
        report_error(exc)
        return exc.exit_code
    except BrokenPipeError:  # `certhelper list | head`
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        report_error(Cancelled())
        return Cancelled.exit_code
    except Exception:  # last resort: say so, keep the traceback in the log only
        log.exception("internal error")
        print("错误 (error) [internal_error]: 内部错误，详见日志 (see the log)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
