"""技术支持 and 关于: who to call, and what this program is."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from helper.ui.style import (
    MUTED,
)

if TYPE_CHECKING:
    pass

from helper.ui.notice.base import Notice
from helper.ui.notice.content import ABOUT_LICENCE, ABOUT_NAME, ABOUT_TEXT, ABOUT_TEXT_EN, CONTACTS

log = logging.getLogger(__name__)


class SupportNotice(Notice):
    title_zh = "技术支持"
    title_en = "Support"

    INDENT = 18

    def __init__(self, timeout: float | None) -> None:
        super().__init__(timeout)
        self.set_heading("技术支持", "Support: whom to call")
        room = self.ROOM - 2 - 24  # the box's border and padding
        frame, text = self.add_text(room)
        room = self.text_room
        text.tag_configure("name", font=self.font_bold, spacing1=10)
        text.tag_configure("first", spacing1=0)
        text.tag_configure("en", foreground=MUTED, font=self.font_small)
        text.tag_configure("field", foreground=MUTED)
        text.tag_configure("indent", lmargin1=self.INDENT, lmargin2=self.INDENT)
        for i, (name, english, fields) in enumerate(CONTACTS):
            name_tags = ("name",) if i else ("name", "first")
            self.put_lines(text, self.wrap(name, self.font_bold, room), name_tags, self.font_bold,
                           spacing=10 if i else 0)  # fmt: skip
            self.put_lines(text, self.wrap(english, self.font_small, room), ("en",),
                           self.font_small)  # fmt: skip
            for field, field_en, value in fields:
                key = f"{field} ({field_en})："
                lines = self.wrap(key + value, self.font_normal, room - self.INDENT)
                lines = lines[len(key) :] if lines.startswith(key) else lines
                self.put_lines(text, lines, ("indent",), self.font_normal, first=key,
                               first_tags=("indent", "field"))  # fmt: skip
        self.fit_text(frame, text)
        self.add_wide(frame, pady=(0, 0))
        self.add_para(
            "选中文字后按 Ctrl+C 或右键复制 (select text, then Ctrl+C or right-click to copy)",
            style="Muted.TLabel",
            pady=(6, 0),
        )
        self.focus_first(self.add_button("关闭 (Close)", self.cancel, primary=True))


class AboutNotice(Notice):
    title_zh = "关于"
    title_en = "About"

    def __init__(self, version: str, timeout: float | None) -> None:
        super().__init__(timeout)
        self.set_heading(ABOUT_NAME, f"版本 (version) {version}")
        self.add_para(ABOUT_TEXT, pady=(0, 0))
        self.add_para(ABOUT_TEXT_EN, style="Muted.TLabel", pady=(3, 10))
        self.add_row("版本 (Version)", version, style="Strong.TLabel")
        self.add_row("许可证 (Licence)", ABOUT_LICENCE)
        self.add_row("Python", sys.version.split()[0])
        self.focus_first(self.add_button("关闭 (Close)", self.cancel, primary=True))
