"""The expiry alert: one card per certificate, with 证书延期 and 修改密码 actions."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from helper.ui.style import (
    BORDER,
    CARD,
    MUTED,
    TEXT,
)

if TYPE_CHECKING:
    pass

from helper.ui.notice.base import Notice
from helper.ui.notice.content import MAX_CARDS, SEVERITY

log = logging.getLogger(__name__)


class ExpiryNotice(Notice):
    title_zh = "证书到期提醒"
    title_en = "Certificate expiry"

    def __init__(self, alerts: list[dict[str, Any]], renewal_url: str, timeout: float | None):
        super().__init__(timeout)
        first = alerts[0]
        if len(alerts) == 1:
            self.set_heading(first["title_zh"], first["title_en"])
        else:
            n = len(alerts)
            self.set_heading(f"{n} 张证书需要延期", f"{n} certificates need renewal")
        if len(alerts) == 1:
            self._card(first, full=True)
        else:
            self.add_para(
                "以下证书即将到期或已过期，请及时办理证书延期。\n"
                "(These certificates expire soon or have expired. Please renew them in time.)",
                pady=(0, 10),
            )
            for record in alerts[:MAX_CARDS]:
                self._card(record, full=False)
        if len(alerts) > MAX_CARDS:
            more = len(alerts) - MAX_CARDS
            self.add_para(
                f"另有 {more} 张证书，请在「我的证书」中查看 ({more} more: see 我的证书)",
                style="Muted.TLabel",
            )
        if renewal_url:
            self.add_para(
                f"点击「证书延期」打开延期网站 (Renew opens) {renewal_url}",
                style="Muted.TLabel",
                pady=(12, 0),
            )
        renew = self.add_button("证书延期 (Renew)", lambda: self.answer("renew"), primary=True)
        self.add_button("知道了 (OK)", lambda: self.answer("close"))
        self.focus_first(renew)

    def _card(self, r: dict[str, Any], *, full: bool) -> None:
        """A certificate's card: a stripe in its severity's colour, its name and days
        left; in full, the alert's message in both languages; then the key and date."""
        tk = self.tk
        fg, bg = SEVERITY[r["threshold"]]
        card = tk.Frame(self.body, background=CARD, highlightthickness=1,
                        highlightbackground=BORDER)  # fmt: skip
        tk.Frame(card, background=fg, width=5).pack(side="left", fill="y")
        inner = tk.Frame(card, background=CARD, padx=16, pady=12 if full else 8)
        inner.pack(side="left", fill="both", expand=True)
        inner.columnconfigure(0, weight=1)
        room = self.ROOM - 2 - 5 - 32

        def label(text: str, font: Any, colour: str, row: int, pady: tuple[int, int]) -> None:
            tk.Label(inner, text=self.wrap(text, font, room), background=CARD, foreground=colour,
                     font=font, anchor="w", justify="left").grid(
                row=row, column=0, columnspan=2, sticky="w", pady=pady)  # fmt: skip

        badge = r["days_text"] or ("已过期" if r["threshold"] == "expired" else "")
        badge_px = self.font_bold.measure(badge) + 20 + 12 if badge else 0
        name = r["subject_cn"] or r["title_zh"]
        tk.Label(inner, text=self.wrap(name, self.font_origin, room - badge_px), background=CARD,
                 foreground=TEXT, font=self.font_origin, anchor="w", justify="left").grid(
            row=0, column=0, sticky="w")  # fmt: skip
        if badge:
            tk.Label(inner, text=badge, background=bg, foreground=fg, font=self.font_bold,
                     padx=10, pady=2).grid(row=0, column=1, sticky="ne", padx=(12, 0))  # fmt: skip
        if full:
            label(r["message_zh"], self.font_normal, TEXT, 1, (8, 0))
            if r["message_en"]:
                label(r["message_en"], self.font_small, MUTED, 2, (3, 0))
        facts = []
        if r["date"]:
            facts.append(f"有效期至 (Valid to)：{r['date']}")
        if r["token_label"]:
            facts.append(f"USB Key：{r['token_label']}")
        if facts:
            if full:
                tk.Frame(inner, background=BORDER, height=1).grid(
                    row=3, column=0, columnspan=2, sticky="we", pady=(10, 6)
                )
            label("      ".join(facts), self.font_small, MUTED, 4, (0, 0) if full else (2, 0))
        self.add_wide(card, pady=(0 if self._row == 0 else 10 if full else 8, 0))
