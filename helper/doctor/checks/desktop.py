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
                f"未设置开机自启，重启电脑后需手动运行证书助手 (no autostart entry: {path})",
                INSTALL_FIX,
            )
        ]
    exec_line = _exec_line(path)
    if not exec_line or " run" not in f" {exec_line} ".replace("\t", " "):
        return [
            Finding(
                "warning",
                "autostart_invalid",
                f"开机自启项不会启动证书助手 (autostart entry has no `… run` Exec: {path})",
                INSTALL_FIX,
            )
        ]
    return [Finding("ok", "autostart_ok", f"已设置开机自启 (autostart: {path})")]


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
                "无法检查 p11:// 与 certhelper:// 链接：缺少 xdg-mime "
                "(xdg-mime missing: cannot check the URL handlers)",
                "sudo apt install xdg-utils，然后运行 certhelper install "
                "(install xdg-utils, then run `certhelper install`)",
            )
        ]
    if missing:
        return [
            Finding(
                "warning",
                "url_schemes_missing",
                "网页中的 p11:// / certhelper:// 链接不会打开证书助手 "
                f"(URL schemes not handled by {URL_HANDLER}: {'; '.join(missing)})",
                INSTALL_FIX,
            )
        ]
    return [Finding("ok", "url_schemes_ok", "p11:// 与 certhelper:// 链接由证书助手打开 (OK)")]
