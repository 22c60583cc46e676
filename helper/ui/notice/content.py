"""What the notices say and the requests they take: kinds, results, contact
details, and the checked parsing of alerts and doctor findings (no Tk)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from helper.ui.dialogs.protocol import BadRequest

if TYPE_CHECKING:
    from helper.services.alerts import Alert

from helper.ui.style import AMBER, DANGER, DANGER_BG, OK, ORANGE, WARN_BG

log = logging.getLogger(__name__)


KINDS = ("expiry", "initial_pin", "support", "about", "doctor")
RESULTS = ("renew", "changepin", "rerun", "close")
#: a notice without a timeout still gets a (never reached) deadline: Tk's timer
#: wants a bounded number, and a day is far beyond any person's answer
NO_DEADLINE = 24 * 3600.0
#: the most alert cards one expiry notice shows (the rest are counted); with more
#: than one alert the cards are compact (name, days, date, key)
MAX_CARDS = 4

#: the badge behind an orange (≤ 7 days) days-left text
ORANGE_BG = "#fdece3"
#: threshold → (stripe and text colour, badge background) of its card; the colours
#: of 我的证书's rows (amber ≤ 30 days, orange ≤ 7, red expired)
SEVERITY = {
    "30": (AMBER, WARN_BG),
    "7": (ORANGE, ORANGE_BG),
    "1": (DANGER, DANGER_BG),
    "expired": (DANGER, DANGER_BG),
}
#: doctor level → (mark, colour)
MARKS = {"ok": ("✔", OK), "warning": ("⚠", AMBER), "error": ("✘", DANGER)}

INITIAL_PIN_TEXT = "您仍在使用初始密码 123456，为保障安全请立即修改。"
INITIAL_PIN_TEXT_EN = "(This key still has the initial PIN 123456. Change it now to keep it safe.)"

#: 技术支持 (docs/desktop.md): (name, English name, [(field, English field, value)])
CONTACTS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "河北CA沧州办事处",
        "Hebei CA, Cangzhou office",
        (
            ("地址", "Address", "运河区解放西路颐和国际 B 座 602 室"),
            ("电话", "Phone", "13315703324"),
        ),
    ),
    (
        "沧州公积金 QQ 服务群",
        "Housing fund QQ service group",
        (("群号", "Group", "310693415"),),
    ),
    (
        "沧州市住房公积金管理中心",
        "Cangzhou Housing Provident Fund Management Centre",
        (
            ("地址", "Address", "沧州市运河区沧州市政务服务中心 1 层 C 区环岛"),
            ("网厅技术咨询", "Online hall support", "0317-5509911"),
        ),
    ),
)

ABOUT_NAME = "证书助手 certhelper"
ABOUT_LICENCE = "Apache-2.0"
ABOUT_TEXT = "开源、跨平台的数字证书助手：用 USB Key 登录政务网站、签名、改密码、提醒到期。"
ABOUT_TEXT_EN = (
    "Open-source, cross-platform helper for CA-issued USB keys: log in to government "
    "online halls, sign, change the PIN, hear about expiry in time."
)


# --- request parsing ----------------------------------------------------------


def split_bilingual(text: str) -> tuple[str, str]:
    """ "中文 (English)" → ("中文", "English"); text without a trailing
    parenthesis → (text, "")."""
    text = text.strip()
    if text.endswith(")"):
        depth = 0
        for i in range(len(text) - 1, -1, -1):
            if text[i] == ")":
                depth += 1
            elif text[i] == "(":
                depth -= 1
                if depth == 0:
                    if i > 0 and text[i - 1] == " ":
                        return text[: i - 1].rstrip(), text[i + 1 : -1].strip()
                    break
    return text, ""


def text_field(data: Mapping[str, Any], key: str, default: str = "") -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise BadRequest(f"invalid field {key!r}")
    return str(value)


def parse_alerts(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request's alerts as display records, one per (key, subject, threshold,
    date), most severe first."""
    alerts = data.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise BadRequest("missing field 'alerts'")
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str, str]] = set()
    for raw in alerts:
        if not isinstance(raw, dict):
            raise BadRequest("invalid field 'alerts'")
        title, message = text_field(raw, "title"), text_field(raw, "message")
        if not (title or raw.get("title_zh")) or not (message or raw.get("message_zh")):
            raise BadRequest("an alert needs a title and a message")
        t_zh, t_en = split_bilingual(title)
        m_zh, m_en = split_bilingual(message)
        threshold = text_field(raw, "threshold", "30")
        days = raw.get("days_left")
        days_left = days if isinstance(days, int) and not isinstance(days, bool) else None
        record = {
            "title_zh": text_field(raw, "title_zh", t_zh),
            "title_en": text_field(raw, "title_en", t_en),
            "message_zh": text_field(raw, "message_zh", m_zh),
            "message_en": text_field(raw, "message_en", m_en),
            "subject_cn": text_field(raw, "subject_cn"),
            "token_label": text_field(raw, "token_label"),
            "date": text_field(raw, "date", text_field(raw, "not_after")[:10]),
            "threshold": threshold if threshold in SEVERITY else "30",
            "days_left": days_left,
            "days_text": text_field(raw, "days_text"),
        }
        # an alert without a subject is told apart by its message
        key = (
            str(record["token_label"]),
            str(record["subject_cn"] or record["message_zh"]),
            str(record["threshold"]),
            str(record["date"]),
        )
        if key in seen:
            continue
        seen.add(key)
        out.append(record)
    rank = {t: i for i, t in enumerate(("expired", "1", "7", "30"))}
    out.sort(
        key=lambda r: (rank[r["threshold"]], r["days_left"] if r["days_left"] is not None else 0)
    )
    return out


def parse_findings(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    findings = data.get("findings")
    if not isinstance(findings, list):
        raise BadRequest("missing field 'findings'")
    out = []
    for raw in findings:
        if not isinstance(raw, dict):
            raise BadRequest("invalid field 'findings'")
        level = text_field(raw, "level", "warning")
        out.append(
            {
                "level": level if level in MARKS else "warning",
                "code": text_field(raw, "code"),
                "message": text_field(raw, "message") or text_field(raw, "code") or "—",
                "fix": text_field(raw, "fix"),
                "detail": text_field(raw, "detail"),
                "fix_id": text_field(raw, "fix_id"),
                "check": text_field(raw, "check"),
                "needs_root": raw.get("needs_root") is True,
            }
        )
    return out


def doctor_summary(findings: list[dict[str, Any]]) -> tuple[str, str]:
    """(text, level) of the summary line."""
    problems = sum(1 for f in findings if f["level"] != "ok")
    if not problems:
        return "一切正常 (everything is fine)", "ok"
    level = "error" if any(f["level"] == "error" for f in findings) else "warning"
    noun = "problem" if problems == 1 else "problems"
    return f"发现 {problems} 个问题 ({problems} {noun} found)", level


def expiry_request(alerts: Iterable[Alert], renewal_url: str) -> dict[str, Any]:
    """The notice request for expiry ``alerts`` (as AlertScheduler.check returns them)."""
    return {
        "kind": "expiry",
        "alerts": [a.to_dict() for a in alerts],
        "renewal_url": renewal_url,
    }
