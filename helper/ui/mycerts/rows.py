"""The table's rows and the details pane's lines, from token views (pure: no Tk)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from drivers.types import PinState, TokenInfo
from helper.domain.expiry import ExpiryState
from helper.domain.presentation import DRIVER_TEXT, USAGE_TEXT, token_state_text
from helper.services.tokens import CertEntry, ModuleStatus, TokenView
from helper.ui.mycerts.words import (
    ARCHIVED_WORDS,
    EKU_NAMES,
    EXPIRY_STYLES,
    EXPIRY_TAGS,
    EXPIRY_WORDS,
    KEY_USAGE_NAMES,
    LOCKED_HELP,
    LOCKED_MARK,
    SUBJECT_NAMES,
)


@dataclass(frozen=True)
class Row:
    """One line of the table. ``kind``: cert | unreadable | no_certificates | token_error."""

    iid: str
    kind: str
    token: TokenInfo
    values: tuple[str, ...]
    tag: str = ""
    entry: CertEntry | None = None
    view: TokenView | None = None

    @property
    def exportable(self) -> bool:
        return self.entry is not None and self.entry.model is not None

    def probe(self, now: datetime, *, selected: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "row",
            "iid": self.iid,
            "kind": self.kind,
            "token_serial": self.token.serial,
            "token_label": self.token.label,
            "pin_state": self.token.pin_state.value,
            "pin_retries_left": self.token.pin_retries_left,
            "pin_max_retries": self.token.pin_max_retries,
            "pin_is_default": self.token.pin_is_default,
            "driver": self.token.family,
            "selected": selected,
            "values": list(self.values),
            "tag": self.tag,
        }
        m = self.entry.model if self.entry else None
        if m is not None:
            assert self.entry is not None
            out.update(
                subject=m.subject_cn,
                issuer=m.issuer_cn,
                serial_hex=m.serial_hex,
                not_after=m.not_after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                days_left=m.days_left(now),
                expiry_state=m.expiry_state(now).value,
                sha256=m.sha256,
                has_private_key=self.entry.private_key is not None,
                key_type=m.key_type,
                usage=m.usage,
            )
        out["details"] = [[k, v, st] for k, v, st in detail_lines(self, now)]
        return out


def elide(text: str, keep: int = 12) -> str:
    """Long serial numbers in the table: the start and the last four."""
    if len(text) <= keep + 2:
        return text
    return f"{text[: keep - 4]}…{text[-4:]}"


def fit_text(text: str, width: int, measure: Callable[[str], int]) -> str:
    """``text`` cut with … so that it is at most ``width`` pixels wide."""
    if measure(text) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if measure(text[:mid].rstrip() + "…") <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


def local_date(dt: datetime) -> str:
    return dt.astimezone().strftime("%Y-%m-%d")


def local_time(dt: datetime) -> str:
    return dt.astimezone().strftime("%Y-%m-%d %H:%M")


def days_text(days: int, state: ExpiryState) -> str:
    if state is ExpiryState.EXPIRED:
        return "已过期 (expired)"
    if days == 0:
        return "今天到期 (today)"
    return f"{days} 天"


def key_column(token: TokenInfo) -> str:
    """The USB Key column: the key's label, marked when its PIN is locked."""
    return token.label + (LOCKED_MARK if token.pin_state is PinState.LOCKED else "")


def build_rows(views: Sequence[TokenView], now: datetime) -> list[Row]:
    rows: list[Row] = []
    for v in views:
        t = v.token
        key = key_column(t)
        for c in sorted(v.certificates, key=_cert_order):
            m = c.model
            if m is None:
                label = c.obj.label or c.obj.key_id.hex() or "—"
                rows.append(
                    Row(
                        c.id,
                        "unreadable",
                        t,
                        (f"⚠ 证书无法读取「{label}」(unreadable)", "—", "—", "—", "—", key),
                        "problem",
                        c,
                        v,
                    )
                )
                continue
            state = m.expiry_state(now)
            values = (
                (m.subject_cn or m.subject_dn or "—") + usage_suffix(c),
                m.issuer_cn or m.issuer_dn or "—",
                elide(m.serial_hex),
                local_date(m.not_after),
                ARCHIVED_WORDS if c.archived else days_text(m.days_left(now), state),
                key,
            )
            tag = "muted" if c.archived else EXPIRY_TAGS[state]
            rows.append(Row(c.id, "cert", t, values, tag, c, v))
        if v.error is not None:
            text = f"⚠ 读取失败 (cannot read): {v.error.message_zh}"
            rows.append(
                Row(
                    f"token:{t.serial}",
                    "token_error",
                    t,
                    (text, "", "", "", "", key),
                    "problem",
                    None,
                    v,
                )
            )
        elif not v.certificates:
            text = "（无证书 no certificates）"
            rows.append(
                Row(
                    f"token:{t.serial}",
                    "no_certificates",
                    t,
                    (text, "", "", "", "", key),
                    "muted",
                    None,
                    v,
                )
            )
    return rows


def _cert_order(c: CertEntry) -> tuple[int, str, str]:
    """Readable before unreadable; per subject, the signing certificate first."""
    m = c.model
    if m is None:
        return (2, "", c.id)
    return (1 if m.is_encryption_cert else 0, m.subject_cn, c.id)


def usage_suffix(c: CertEntry) -> str:
    """（签名）/（加密） after the subject: HEBCA keys hold a pair with the same name."""
    m = c.model
    if m is None or not m.key_usage:
        return ""
    if m.is_encryption_cert:
        return "（加密）"
    return "（签名）"


def signature(views: Sequence[TokenView], modules: Sequence[ModuleStatus], now: datetime) -> Any:
    """What a redraw depends on: the keys, their certificates, their PIN states and
    tries left (and the day, for the days left)."""
    return (
        now.astimezone().date(),
        tuple((m.path, m.error.code if m.error else None) for m in modules),
        tuple(
            (
                v.token.module_path,
                v.token.serial,
                v.token.label,
                v.token.pin_state,
                v.token.pin_retries_left,
                v.token.pin_is_default,
                v.error.code if v.error else None,
                tuple(
                    (c.id, c.model.sha256 if c.model else None, c.private_key is not None)
                    for c in v.certificates
                ),
                len(v.keys_without_certificate),
            )
            for v in views
        ),
    )


def status_text(views: Sequence[TokenView], refreshed: datetime | None) -> str:
    keys = len(views)
    certs = sum(len(v.certificates) for v in views)
    when = refreshed.astimezone().strftime("%H:%M:%S") if refreshed else "—"
    return (
        f"{keys} 个 USB Key · {certs} 张证书 · 刷新于 {when}"
        f"  ({keys} key{'s' if keys != 1 else ''}, {certs} certificate{'s' if certs != 1 else ''})"
    )


def _words(names: Sequence[str], table: dict[str, str]) -> str:
    if not names:
        return "—"
    return "，".join(f"{table[n]} ({n})" if n in table else n for n in names)


def detail_lines(row: Row, now: datetime) -> list[tuple[str, str, str]]:
    """(key, value, style) lines for the details pane; style: '' | mono | warn | danger."""
    t = row.token
    lines: list[tuple[str, str, str]] = []
    if t.pin_state is PinState.LOCKED:  # first: nothing on this key works until the CA unlocks it
        lines.append(("解锁 (Unlock)", LOCKED_HELP, "danger"))
    c = row.entry
    if c is not None and c.model is not None:
        m = c.model
        for short, value in reversed(m.subject):  # CN first, as the DN reads
            name = SUBJECT_NAMES.get(short)
            lines.append((f"使用者 {name} ({short})" if name else f"使用者 {short}", value, ""))
        state = m.expiry_state(now)
        left = m.days_left(now)
        validity = f"{local_time(m.not_before)} — {local_time(m.not_after)}"
        if state is ExpiryState.EXPIRED:
            validity += f"    已过期 {-left} 天 ({-left} days ago)"
        else:
            validity += f"    剩余 {left} 天 ({left} days left)"
        key = m.key_type
        if m.key_bits:
            key += f" {m.key_bits} 位 ({m.key_bits} bits)"
        if m.curve:
            key += f"  {m.curve}"
        status = (
            (
                "状态 (State)",
                f"{ARCHIVED_WORDS}：已由延期后的新证书取代 (replaced by its renewal)",
                "",
            )
            if c.archived
            else ("状态 (State)", EXPIRY_WORDS[state], EXPIRY_STYLES[state])
        )
        lines += [
            ("有效期 (Validity)", validity, EXPIRY_STYLES[state]),
            status,
            ("颁发者 (Issuer)", m.issuer_dn or "—", ""),
            ("序列号 (Serial)", m.serial_hex, "mono"),
            ("密钥 (Key)", key, ""),
            ("用途 (Usage)", USAGE_TEXT.get(m.usage, m.usage), ""),
            ("私钥 (Private key)", "有 (on the key)" if c.private_key else "无 (none)", ""),
            ("密钥用法 (Key usage)", _words(m.key_usage, KEY_USAGE_NAMES), ""),
            ("增强型密钥用法 (EKU)", _words(m.extended_key_usage, EKU_NAMES), ""),
            ("SHA-256 指纹 (Thumbprint)", " ".join(_groups(m.sha256)), "mono"),
            ("证书唯一标识 (Unique ID)", m.hebca_unique_id or "—", ""),
        ]
        if c.signing_note:
            lines.append(("签名 (Signing)", c.signing_note, "warn"))
    elif c is not None:
        lines += [
            ("标签 (Label)", c.obj.label or "—", ""),
            ("CKA_ID", c.obj.key_id.hex() or "—", "mono"),
            ("错误 (Error)", c.error.message() if c.error else "无法解析 (cannot parse)", "danger"),
        ]
    elif row.kind == "token_error" and row.view is not None and row.view.error is not None:
        lines.append(("错误 (Error)", row.view.error.message(), "danger"))
    elif row.kind == "no_certificates":
        lines.append(("证书 (Certificates)", "此 USB Key 中没有证书 (no certificates)", ""))
    if row.view is not None and row.view.keys_without_certificate and c is None:
        n = len(row.view.keys_without_certificate)
        lines.append(
            ("私钥 (Private keys)", f"{n} 个私钥没有对应证书 ({n} without certificate)", "")
        )
    state_style = "" if t.pin_state.value in ("ok", "to_be_changed") else "danger"
    lines += [
        ("USB Key", f"{t.label}    序列号 (serial) {t.serial}", ""),
        ("驱动 (Driver)", DRIVER_TEXT.get(t.family, t.family), ""),
        (
            "密码状态 (PIN)",
            token_state_text(t.pin_state, t.pin_retries_left, t.pin_max_retries, t.pin_is_default),
            state_style,
        ),
    ]
    return lines


def _groups(digest: str) -> list[str]:
    return [digest[i : i + 8] for i in range(0, len(digest), 8)]


def token_matches(token: TokenInfo, query: str | None) -> bool:
    return bool(query) and query in (token.serial, token.label)
