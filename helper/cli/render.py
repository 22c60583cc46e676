"""Text output of the CLI: Chinese first, English beside."""

from __future__ import annotations

import sys
import unicodedata
from datetime import datetime
from typing import Any

from drivers.types import PinState
from helper.domain.presentation import (
    DRIVER_TEXT,
    EXPIRY_TEXT,
    USAGE_TEXT,
    token_state_text,
)
from helper.services.summary import iso
from helper.services.tokens import CertEntry, ModuleStatus, TokenView


def warn_pin_state(state: PinState) -> None:
    if state is PinState.FINAL_TRY:
        print(
            "警告：密码仅剩最后一次机会，再输错将锁定 USB Key！"
            " (Warning: final PIN try; another wrong PIN locks the key)",
            file=sys.stderr,
        )
    elif state is PinState.COUNT_LOW:
        print(
            "提示：密码已输错多次，请仔细输入 (Note: several wrong PINs were entered before)",
            file=sys.stderr,
        )


def _key_desc(c: CertEntry) -> str:
    m = c.model
    if m is None:
        return ""
    size = f"-{m.key_bits}" if m.key_bits else ""
    return f"{m.key_type}{size}"


def print_list(modules: list[ModuleStatus], views: list[TokenView], now: datetime) -> None:
    for module in modules:
        if module.error is not None:
            print(f"⚠ 模块加载失败 (module failed) {module.path}: {module.error.message()}")
    if not views:
        print("未检测到 USB Key (no USB key found)")
        return
    for v in views:
        t = v.token
        driver = DRIVER_TEXT.get(t.family, t.family)
        print(
            f"USB Key「{t.label}」 序列号 serial {t.serial}  {t.manufacturer} {t.model} [{driver}]"
        )
        print(
            "  "
            + token_state_text(t.pin_state, t.pin_retries_left, t.pin_max_retries, t.pin_is_default)
        )
        if v.error is not None:
            print(f"  ⚠ {v.error.message()}")
        if not v.certificates and not v.keys_without_certificate:
            print("  (无证书 no certificates)")
        for c in v.certificates:
            print(f"  [{c.id}]")
            if c.model is None:
                err = c.error.message() if c.error else ""
                print(
                    f"    ⚠ 证书无法读取 (unreadable certificate) 标签 label「{c.obj.label}」 {err}"
                )
                continue
            m = c.model
            days = m.days_left(now)
            state = m.expiry_state(now)
            left = f"剩余 {days} 天 ({days} days left)" if days >= 0 else "已过期 (expired)"
            print(f"    使用者 subject: {m.subject_cn}")
            print(f"    颁发者 issuer:  {m.issuer_cn}")
            print(f"    有效期至 valid until: {iso(m.not_after)}  {left}  [{EXPIRY_TEXT[state]}]")
            key = "有私钥 has private key" if c.private_key else "无私钥 no private key"
            usage = USAGE_TEXT[m.usage]
            print(f"    {_key_desc(c)}  {usage}  序列号 serial {m.serial_hex}  {key}")
            if c.signing_note:
                print(f"    ⚠ {c.signing_note}")
            if c.archived:
                print("    已归档：已由延期后的新证书取代 (archived: replaced by its renewal)")
        for k in v.keys_without_certificate:
            size = f"-{k.key_bits}" if k.key_bits else ""
            print(
                f"  [私钥无证书 key without certificate] id {k.key_id.hex()} "
                f"「{k.label}」 {k.key_type}{size}"
            )


def print_details(c: CertEntry, now: datetime) -> None:
    rows: list[tuple[str, Any]] = [
        ("证书 ID (id)", c.id),
        ("USB Key", f"{c.token.label} ({c.token.serial})"),
        ("标签 (label)", c.obj.label),
        ("CKA_ID", c.obj.key_id.hex()),
        ("私钥 (private key)", "有 yes" if c.private_key else "无 no"),
    ]
    m = c.model
    if m is None:
        rows.append(("错误 (error)", c.error.message() if c.error else "unreadable"))
    else:
        rows += [("使用者 " + k, v) for k, v in m.subject]
        rows += [
            ("颁发者 (issuer)", m.issuer_dn),
            ("序列号 (serial)", m.serial_hex),
            ("生效 (not before)", iso(m.not_before)),
            ("到期 (not after)", iso(m.not_after)),
            ("剩余天数 (days left)", m.days_left(now)),
            ("状态 (state)", EXPIRY_TEXT[m.expiry_state(now)]),
            ("密钥 (key)", f"{m.key_type} {m.key_bits or ''} {m.curve or ''}".strip()),
            ("密钥用法 (key usage)", ", ".join(m.key_usage) or "-"),
            ("扩展用法 (EKU)", ", ".join(m.extended_key_usage) or "-"),
            ("证书唯一标识 (HEBCA unique ID)", m.hebca_unique_id or "-"),
            ("SHA-256", m.sha256),
            ("SHA-1", m.sha1),
        ]
        if m.signing_note:
            rows.append(("签名 (signing)", m.signing_note))
    width = max(_width(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k}{' ' * (width - _width(k))}  {v}")


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


LEVEL_MARK = {"ok": "✔", "warning": "⚠", "error": "✘"}


def print_findings(findings: list[Any], *, verbose: bool = False) -> None:
    for f in findings:
        print(f"{LEVEL_MARK[f.level]} {f.message}")
        if f.fix:
            print(f"    → {f.fix}")
        if f.fix_id:
            print(f"    → certhelper doctor --fix {f.fix_id}")
        if verbose and f.detail:
            print(f"    详细信息 (details): {f.detail}")
    problems = sum(1 for f in findings if f.level != "ok")
    if problems:
        print(f"\n发现 {problems} 个问题 ({problems} problem(s) found)")
    else:
        print("\n一切正常 (all good)")
