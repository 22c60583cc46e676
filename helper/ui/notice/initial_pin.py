"""The initial-PIN notice: this key still uses 123456; change it now."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from helper.ui.notice.base import Notice
from helper.ui.notice.content import INITIAL_PIN_TEXT, INITIAL_PIN_TEXT_EN

log = logging.getLogger(__name__)


class InitialPinNotice(Notice):
    title_zh = "修改初始密码"
    title_en = "Change the initial PIN"

    def __init__(self, token_label: str, token_serial: str, timeout: float | None) -> None:
        super().__init__(timeout)
        self.set_heading("请修改 USB Key 初始密码", "Change the initial PIN of your USB key")
        self.add_row("USB Key", token_label or "—", style="Strong.TLabel")
        if token_serial:
            self.add_row("序列号 (Serial)", token_serial)
        self.add_para(
            f"{INITIAL_PIN_TEXT}\n{INITIAL_PIN_TEXT_EN}",
            style="Warn.TLabel",
            font=self.font_bold,
            pady=(10, 0),
        )
        self.add_para(
            "初始密码人人皆知，他人拿到 USB Key 即可冒用您的证书。\n"
            "(Everyone knows the initial PIN: whoever holds the key could use your certificate.)",
            style="Muted.TLabel",
            pady=(10, 0),
        )
        change = self.add_button(
            "立即修改 (Change now)", lambda: self.answer("changepin"), primary=True
        )
        self.add_button("稍后 (Later)", lambda: self.answer("close"))
        self.focus_first(change)
