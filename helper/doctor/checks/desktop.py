"""Linux desktop integration: the autostart entry and the URL scheme handlers."""

from __future__ import annotations

import configparser
from pathlib import Path

from helper.config import Config
from helper.doctor.checks.base import DoctorEnv, Finding

INSTALL_FIX = "运行 certhelper install (run `certhelper install`)"
AUTOSTART_NAME = "certhelper.desktop"
URL_HANDLER = "certhelper-url.desktop"
SCHEMES = ("p11", "certhelper")


def _exec_line(path: str | Path) -> str | None:
    parser = configparser.RawConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(Path(path).read_text("utf-8", errors="replace"))
        return parser.get("Desktop Entry", "Exec", fallback=None)
    except (OSError, configparser.Error):
        return None


def autostart_findings(config: Config, env: DoctorEnv) -> list[Finding]:
    if not env.is_linux:
        return []
    path = env.config_home / "autostart" / AUTOSTART_NAME
    if not path.is_file():
        return [
            Finding(
                "warning",
                "autostart_missing",
                "证书助手不会随电脑自动启动，重启电脑后网上大厅会找不到它。点「修复」即可解决。"
                "(The helper does not start with the computer; click 修复 to fix it.)",
                INSTALL_FIX,
                detail=f"no autostart entry: {path}",
                fix_id="autostart",
            )
        ]
    exec_line = _exec_line(path)
    if not exec_line or " run" not in f" {exec_line} ".replace("\t", " "):
        return [
            Finding(
                "warning",
                "autostart_invalid",
                "证书助手的自动启动设置有误，重启电脑后它不会启动。点「修复」即可解决。"
                "(The helper's autostart entry is wrong; click 修复 to fix it.)",
                INSTALL_FIX,
                detail=f"autostart entry has no `… run` Exec: {path}",
                fix_id="autostart",
            )
        ]
    return [
        Finding(
            "ok",
            "autostart_ok",
            "证书助手随电脑自动启动 (starts with the computer)",
            detail=f"autostart: {path}",
        )
    ]


def scheme_findings(config: Config, env: DoctorEnv) -> list[Finding]:
    if not env.is_linux:
        return []
    missing, unchecked = [], False
    for scheme in SCHEMES:
        res = env.query("xdg-mime", "query", "default", f"x-scheme-handler/{scheme}")
        if res is None:
            unchecked = True
            break
        rc, out = res
        if rc != 0 or out.strip() != URL_HANDLER:
            missing.append(f"{scheme}: ({out.strip() or '无 none'})")
    if unchecked:
        return [
            Finding(
                "warning",
                "url_schemes_unchecked",
                "无法检查网页能否打开证书助手：缺少一个系统组件（xdg-utils）"
                "(cannot check whether web pages can open the helper: xdg-utils missing)",
                "sudo apt install xdg-utils，然后运行 certhelper install "
                "(install xdg-utils, then run `certhelper install`)",
            )
        ]
    if missing:
        return [
            Finding(
                "warning",
                "url_schemes_missing",
                "网上大厅无法替您启动证书助手。点「修复」即可解决。"
                "(The hall cannot start the helper for you; click 修复 to fix it.)",
                INSTALL_FIX,
                detail=f"p11://, certhelper:// not handled by {URL_HANDLER}: {'; '.join(missing)}",
                fix_id="url-schemes",
            )
        ]
    return [
        Finding(
            "ok",
            "url_schemes_ok",
            "网上大厅可以启动证书助手 (web pages can start the helper)",
            detail=f"p11:// and certhelper:// → {URL_HANDLER}",
        )
    ]
