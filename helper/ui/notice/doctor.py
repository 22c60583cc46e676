"""检测修复's findings: one line per check, marked ✔ ⚠ ✘, a 修复 button under each
finding that has a fix, the technical detail folded under 详细信息.

修复 runs the fix in a worker thread (root fixes through polkit's own password window,
never ours: helper.doctor.fixes), then re-runs the machine checks and redraws: a fixed
line turns ✔. Closing answers ``{"result": "close", "fixed": [fix ids], "problems": [codes]}``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from helper.ui.notice.base import Notice
from helper.ui.notice.content import MARKS, doctor_summary
from helper.ui.style import ACCENT, MUTED

log = logging.getLogger(__name__)

#: what the browser needs after a fix (helper.doctor.repair.BROWSER_TEXT, shorter)
BROWSER_TEXT = {
    "reload": "请刷新网上大厅网页 (reload the hall's page)",
    "newtab": "网上大厅网页会自动重新连接；如仍未连接，请在新标签页中重新打开 "
    "(the hall's page reconnects by itself; if not, open it in a new tab)",
    "restart": "请关闭并重新打开浏览器 (close and reopen the browser)",
}

#: fix id -> (outcome: {"ok", "cancelled", "text", "browser"}, the machine findings now)
Fixer = Callable[[str], tuple[dict[str, Any], list[dict[str, Any]]]]
HINT = "点「修复」后会自动重新检测。\n(After 修复 the window checks again by itself.)"
#: fixes that end the daemon, and with it this window: run in a session of their own
DETACHED = ("restart-helper",)
RANK = {"error": 0, "warning": 1, "ok": 2}
SUMMARY_STYLE = {"ok": "Ok.TLabel", "warning": "Warn.TLabel", "error": "Danger.TLabel"}
ROOT_WAIT = (
    "请在系统弹出的窗口中输入电脑管理员密码… "
    "(enter the administrator password in the system's window…)"
)


def run_fix(fix_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The real fixer: this machine, this user's configuration."""
    from helper.config import load_config
    from helper.doctor.checks.base import FIXES, DoctorEnv
    from helper.doctor.fixes import FixContext, apply_fix
    from helper.doctor.run import machine_findings

    config = load_config()
    env = DoctorEnv.default()
    info = FIXES.get(fix_id)
    if fix_id in DETACHED:
        result = _detached_fix(fix_id)
    else:
        outcome = apply_fix(fix_id, FixContext(config, env))
        result = {"ok": outcome.ok, "cancelled": outcome.cancelled, "text": outcome.line()}
    result["browser"] = info.browser if info and result["ok"] else ""
    return result, [f.to_dict() for f in machine_findings(config, env)]


def _detached_fix(fix_id: str) -> dict[str, Any]:
    """Restarting the daemon ends this window (the daemon's child) too: the fix runs as
    ``certhelper doctor --fix ID`` in its own session, so it finishes either way."""
    import json
    import subprocess

    from installer.desktop import certhelper_command

    argv = [*certhelper_command(), "doctor", "--fix", fix_id, "--json"]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, start_new_session=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        fixes = json.loads(proc.stdout).get("fixes") or [{}]
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        return {"ok": False, "cancelled": False, "text": f"失败 (failed): {exc}"}
    first = fixes[0]
    mark = "✔" if first.get("ok") else "✘"
    return {
        "ok": bool(first.get("ok")),
        "cancelled": bool(first.get("cancelled")),
        "text": f"{mark} {first.get('text', '')}",
    }


def merge_findings(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``old`` with its machine-check lines replaced by ``new`` (same place)."""
    checks = {f.get("check") for f in new if f.get("check")}
    kept = [f for f in old if f.get("check") not in checks or not f.get("check")]
    first = next((i for i, f in enumerate(old) if f.get("check") in checks), len(kept))
    before = [f for f in old[:first] if f in kept]
    return before + new + kept[len(before) :]


class DoctorNotice(Notice):
    title_zh = "检测修复"
    title_en = "Check and repair"
    resizable = True

    #: the most text lines the list shows before it scrolls
    MAX_LINES = 18
    #: the list's width inside (pixels): wider than the other notices
    WIDTH = 640

    def __init__(
        self, findings: list[dict[str, Any]], timeout: float | None, fixer: Fixer | None = None
    ) -> None:
        super().__init__(timeout)
        self.findings = findings
        self.fixer = fixer or run_fix
        self.expanded: set[int] = set()
        self.fixed: list[str] = []
        self.fix_buttons: list[Any] = []
        self._results: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.set_heading("检测修复", "Check and repair: what is wrong and how to fix it")
        summary, level = doctor_summary(findings)
        self.summary = self.add_para(
            summary, style=SUMMARY_STYLE[level], font=self.font_bold, pady=(0, 10), room=self.WIDTH
        )
        frame, text = self.add_text(self.WIDTH)
        self.indent = self.font_bold.measure("✘") + 12
        self.room = self.text_room - self.indent
        for lvl, (_mark, colour) in MARKS.items():
            text.tag_configure(f"mark-{lvl}", foreground=colour, font=self.font_bold)
        text.tag_configure("message", lmargin1=self.indent, lmargin2=self.indent)
        text.tag_configure("head", lmargin1=0, spacing1=6)
        text.configure(tabs=(self.indent,))
        text.tag_configure("problem", font=self.font_bold)
        text.tag_configure("fix", foreground=MUTED, font=self.font_small)
        text.tag_configure("detail", foreground=MUTED, font=self.font_small)
        text.tag_configure("more", foreground=ACCENT, font=self.font_small, underline=True)
        self._fill(text)
        self.fit_text(frame, text, self.MAX_LINES)
        self.body.rowconfigure(self._row, weight=1)
        self.add_wide(frame, pady=(0, 0))
        # two lines kept for the outcome of 修复: the window does not grow afterwards
        hint = HINT if self.fix_buttons else ""
        self.status = self.add_para(hint, style="Muted.TLabel", pady=(8, 0), room=self.WIDTH)
        if not self.fix_buttons:
            self.status.grid_remove()
        rerun = self.add_button(
            "重新检测 (Check again)", lambda: self.answer("rerun"), primary=not self.fix_buttons
        )
        self.add_button("关闭 (Close)", self.cancel)
        self.focus_first(self.fix_buttons[0] if self.fix_buttons else rerun)
        self.text.see("1.0")

    # --- the list -------------------------------------------------------------------

    def _fill(self, text: Any) -> None:
        for b in self.fix_buttons:
            b.destroy()
        self.fix_buttons = []
        # problems first (errors, then warnings): what to click is in view, not scrolled off
        order = sorted(range(len(self.findings)), key=lambda n: RANK[self.findings[n]["level"]])
        for i in order:
            f = self.findings[i]
            mark, _colour = MARKS[f["level"]]
            error = f["level"] == "error"
            font = self.font_bold if error else self.font_normal
            tags = ("message", "problem") if error else ("message",)
            lines = self.wrap(f["message"], font, self.room)
            # the mark hangs in the margin (its line starts at 0), a tab stop at the indent
            self.put_lines(text, lines, tags, font, first=f"{mark}\t", first_tags=(
                "message", "head", f"mark-{f['level']}"), spacing=6)  # fmt: skip
            fixable = f["level"] != "ok" and f.get("fix_id")
            if f["fix"] and not fixable:
                fix = self.wrap(f"→ {f['fix']}", self.font_small, self.room)
                self.put_lines(text, fix, ("message", "fix"), self.font_small)
            if fixable or (f.get("detail") and f["level"] != "ok"):
                self._actions(text, i, f, bool(fixable))
            if i in self.expanded and f.get("detail"):
                detail = self.wrap(f["detail"], self.font_small, self.room)
                self.put_lines(text, detail, ("message", "detail"), self.font_small)
        if not self.findings:
            self.put_lines(text, "（没有检测项目 nothing was checked）", ("fix",), self.font_small)

    def _actions(self, text: Any, i: int, f: dict[str, Any], fixable: bool) -> None:
        """修复 and 详细信息 on one line under the finding."""
        text.insert("end", "", ("message",))
        height = self.font_small.metrics("linespace")
        if fixable:
            button = self.ttk.Button(
                text, text="修复 (Fix)", style="Primary.TButton",
                command=lambda fid=f["fix_id"]: self.start_fix(fid), cursor="hand2",
            )  # fmt: skip
            for key in ("<Return>", "<KP_Enter>"):
                button.bind(key, lambda _e, b=button: (b.invoke(), "break")[1])
            text.window_create("end", window=button, padx=2, pady=3)
            self.fix_buttons.append(button)
            height = max(height, button.winfo_reqheight() + 6)
            text.insert("end", "   ", ("message",))
        if f.get("detail") and f["level"] != "ok":
            tag = f"more-{i}"
            label = "详细信息 ▾ (details)" if i in self.expanded else "详细信息 ▸ (details)"
            text.insert("end", label, ("message", "more", tag))
            text.tag_bind(tag, "<Button-1>", lambda _e, n=i: self.toggle(n))
            text.tag_bind(tag, "<Enter>", lambda _e: text.configure(cursor="hand2"))
            text.tag_bind(tag, "<Leave>", lambda _e: text.configure(cursor="xterm"))
        text.insert("end", "\n", ("message",))
        self._text_px += height

    def redraw(self) -> None:
        text = self.text
        text.configure(state="normal")
        text.delete("1.0", "end")
        self._text_px = 0
        self._fill(text)
        text.delete("end-2c", "end-1c")
        text.configure(state="disabled")
        summary, level = doctor_summary(self.findings)
        self.summary.configure(text=summary, style=SUMMARY_STYLE[level])

    def toggle(self, i: int) -> None:
        self.expanded ^= {i}
        self.redraw()

    # --- 修复 -------------------------------------------------------------------------

    def start_fix(self, fix_id: str) -> None:
        if not self.armed or any(str(b["state"]) == "disabled" for b in self.fix_buttons):
            return
        for b in self.fix_buttons:
            b.configure(state="disabled")
        root = any(f.get("fix_id") == fix_id and f.get("needs_root") for f in self.findings)
        self.set_status(ROOT_WAIT if root else "正在修复… (fixing…)")

        def work() -> None:
            try:
                self._results.put(("done", (fix_id, *self.fixer(fix_id))))
            except Exception as exc:  # the window must come back whatever happens
                log.exception("fix %s failed", fix_id)
                self._results.put(("failed", f"{type(exc).__name__}: {exc}"))

        threading.Thread(target=work, name=f"fix-{fix_id}", daemon=True).start()
        self.root.after(100, self._poll)

    def _poll(self) -> None:
        try:
            kind, value = self._results.get_nowait()
        except queue.Empty:
            self.root.after(100, self._poll)
            return
        if kind == "failed":
            self.set_status(f"修复失败 (the fix failed): {value}")
            self.redraw()
            return
        fix_id, outcome, machine = value
        if outcome.get("ok"):
            self.fixed.append(fix_id)
        self.findings = merge_findings(self.findings, machine)
        self.redraw()
        lines = [str(outcome.get("text", ""))]
        browser = outcome.get("browser")
        if browser in BROWSER_TEXT:
            lines.append(BROWSER_TEXT[browser])
        self.set_status("\n".join(lines))
        if self.fix_buttons:
            self.fix_buttons[0].focus_set()

    def set_status(self, text: str) -> None:
        self.status.configure(text=self.wrap(text, self.font_small, self.WIDTH))

    def finish(self, result: dict[str, Any]) -> None:
        if result.get("result") == "cancel":  # Escape, the window closed, the parent gone
            detail = result.get("detail")
            result = {"result": "close", **({"detail": detail} if detail else {})}
        if result.get("result") == "close":
            problems = [f["code"] for f in self.findings if f["level"] != "ok"]
            result = {**result, "fixed": list(self.fixed), "problems": problems}
        super().finish(result)
