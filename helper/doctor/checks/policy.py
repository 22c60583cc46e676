"""Doctor: may each configured hall and CA site reach the helper under Chrome's Local
Network Access? The rules (which keys, which origins) live in installer.policy,
measured against Chromium 156 (docs/lna.md); this words its answers for the person
at the computer, with the policy details under 详细信息."""

from __future__ import annotations

from urllib.parse import urlsplit

from helper.config import Config
from helper.doctor.checks.base import DoctorEnv, Finding, Level
from installer import policy

ROOT_HINT = "点「修复」即可解决（需要输入电脑管理员密码）。"
MANUAL = f"或运行 (or run) `{policy.FIX}`"


def _site(origin: str, config: Config) -> str:
    host = urlsplit(origin).netloc
    if origin in {policy.normalize_origin(o) for o in config.renewal_ca_origins if _valid(o)}:
        return f"CA 网站（{host}）"
    return f"网上大厅（{host}）"


def _valid(origin: str) -> bool:
    try:
        policy.normalize_origin(origin)
    except ValueError:
        return False
    return True


def _keys(origin: str, secure: bool) -> str:
    keys = list(policy.ALLOW_KEYS) + ([policy.SECURE_KEY] if secure else [])
    return f"{origin} in {', '.join(keys)}"


def policy_findings(config: Config, env: DoctorEnv) -> list[Finding]:
    if not env.is_linux:
        return []
    root = env.policy_root
    out: list[Finding] = []
    for path in policy.unreadable_files(root):
        out.append(
            Finding(
                "warning",
                "browser_policy_unreadable",
                "证书助手写给浏览器的设置已损坏。" + ROOT_HINT
                + "(The helper's browser settings are damaged; click 修复 — needs the "
                "administrator password.)",
                MANUAL,
                detail=f"not a readable JSON object: {path}",
                fix_id="browser-policy",
            )
        )  # fmt: skip
    for c in policy.coverage(config.page_origins(), root):
        site = _site(c.origin, config)
        dirs = ", ".join(f"{d}/*.json" for d in policy.POLICY_DIRS)
        if c.complete:
            out.append(
                Finding(
                    "ok",
                    "browser_policy_ok",
                    f"浏览器允许{site}连接证书助手 (the browser lets {c.origin} reach the helper)",
                    detail=f"{_keys(c.origin, c.insecure)} under {dirs}",
                )
            )
            continue
        level: Level
        if c.covering:
            level, code = "warning", "browser_policy_partial"
            head = (
                f"只有部分浏览器允许{site}连接证书助手。" + ROOT_HINT
                + f"(Only some browsers let {c.origin} reach the helper; click 修复 — needs "
                "the administrator password.)"
            )  # fmt: skip
            detail = f"{_keys(c.origin, c.insecure)} missing under " + ", ".join(
                str(d) for d in c.missing
            )
        elif c.insecure:
            level, code = "error", "browser_policy_missing"
            head = (
                f"浏览器阻止了{site}连接证书助手，网页登录会失败。" + ROOT_HINT
                + f"(The browser blocks {c.origin} from reaching the helper, so logging in "
                "fails. Click 修复 — needs the administrator password.)"
            )  # fmt: skip
            detail = (
                f"Chrome/Chromium Local Network Access: a plain-http page on a public address "
                f"may not reach 127.0.0.1 unless the managed policy lists it "
                f"({_keys(c.origin, True)}); looked in {dirs}"
            )
        else:
            level, code = "warning", "browser_policy_prompt"
            head = (
                f"{site}第一次连接证书助手时，浏览器会询问是否允许，请选「允许」；"
                "或点「修复」以后不再询问（需要输入电脑管理员密码）。"
                f"(The browser asks before {c.origin} may reach the helper: choose Allow, "
                "or click 修复 so it never asks.)"
            )
            detail = f"Local Network Access permission prompt; policy: {_keys(c.origin, False)}"
        out.append(Finding(level, code, head, MANUAL, detail=detail, fix_id="browser-policy"))
    return out
