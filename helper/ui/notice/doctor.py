"""检测修复's findings: one line per check, marked ✔ ⚠ ✘."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from helper.ui.style import (
    MUTED,
)

if TYPE_CHECKING:
    pass

from helper.ui.notice.base import Notice
from helper.ui.notice.content import MARKS, doctor_summary

log = logging.getLogger(__name__)


class DoctorNotice(Notice):
    title_zh = "检测修复"
    title_en = "Check and repair"
    resizable = True

    #: the most text lines the list shows before it scrolls
    MAX_LINES = 16
    #: the list's width inside (pixels): wider than the other notices
    WIDTH = 600

    def __init__(self, findings: list[dict[str, str]], timeout: float | None) -> None:
        super().__init__(timeout)
        self.set_heading("检测修复", "Check and repair: what is wrong and how to fix it")
        summary, level = doctor_summary(findings)
        style = {"ok": "Ok.TLabel", "warning": "Warn.TLabel", "error": "Danger.TLabel"}[level]
        self.add_para(summary, style=style, font=self.font_bold, pady=(0, 10), room=self.WIDTH)
        frame, text = self.add_text(self.WIDTH)
        indent = self.font_bold.measure("✘") + 12
        room = self.text_room - indent
        for lvl, (_mark, colour) in MARKS.items():
            text.tag_configure(f"mark-{lvl}", foreground=colour, font=self.font_bold)
        text.tag_configure("message", lmargin1=indent, lmargin2=indent)
        text.tag_configure("head", lmargin1=0, spacing1=6)
        text.configure(tabs=(indent,))
        text.tag_configure("problem", font=self.font_bold)
        text.tag_configure("fix", foreground=MUTED, font=self.font_small)
        for f in findings:
            mark, _colour = MARKS[f["level"]]
            error = f["level"] == "error"
            font = self.font_bold if error else self.font_normal
            tags = ("message", "problem") if error else ("message",)
            lines = self.wrap(f["message"], font, room)
            # the mark hangs in the margin (its line starts at 0), a tab stop at the indent
            self.put_lines(text, lines, tags, font, first=f"{mark}\t", first_tags=(
                "message", "head", f"mark-{f['level']}"), spacing=6)  # fmt: skip
            if f["fix"]:
                fix = self.wrap(f"→ {f['fix']}", self.font_small, room)
                self.put_lines(text, fix, ("message", "fix"), self.font_small)
        if not findings:
            self.put_lines(text, "（没有检测项目 nothing was checked）", ("fix",), self.font_small)
        self.fit_text(frame, text, self.MAX_LINES)
        self.body.rowconfigure(self._row, weight=1)
        self.add_wide(frame, pady=(0, 0))
        rerun = self.add_button(
            "重新检测 (Check again)", lambda: self.answer("rerun"), primary=True
        )
        self.add_button("关闭 (Close)", self.cancel)
        self.focus_first(rerun)
