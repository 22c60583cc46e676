"""``certhelper doctor --fix`` and 检测修复's 修复: apply fixes, check again, say what
changed (✘→✔) and what the browser needs (a page reload or a restart, docs/lna.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from helper.config import Config
from helper.doctor.checks.base import FIXES, DoctorEnv, Finding
from helper.doctor.fixes import FixContext, FixOutcome, apply_fix, fixes_for

BROWSER_TEXT = {
    "reload": "请刷新网上大厅网页（约 10 秒后生效，不必重启浏览器）"
    "(reload the hall's page; it takes effect within about 10 s, no browser restart)",
    "newtab": "已打开的网上大厅网页会在几秒内自动重新连接；如仍未连接，请在新标签页中重新打开 "
    "(an open hall page reconnects within seconds; if not, open it in a new tab)",
    "restart": "请关闭并重新打开浏览器 (close and reopen the browser)",
}
#: the most any of them needs first
BROWSER_ORDER = ("restart", "newtab", "reload")


def _key(f: Finding) -> tuple[str, str, str]:
    return (f.check, f.code, f.message)


@dataclass(frozen=True)
class RepairReport:
    outcomes: list[FixOutcome]
    before: list[Finding]
    after: list[Finding]

    @property
    def fixed(self) -> list[Finding]:
        """The problems before that are gone now."""
        still = {_key(f) for f in self.after if f.level != "ok"}
        return [f for f in self.before if f.level != "ok" and _key(f) not in still]

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.after if f.level != "ok"]

    @property
    def cancelled(self) -> bool:
        return any(o.cancelled for o in self.outcomes)

    @property
    def browser(self) -> str:
        """ "restart", "reload" or "" — the most any successful fix needs."""
        needs = {FIXES[o.id].browser for o in self.outcomes if o.ok and o.id in FIXES}
        return "restart" if "restart" in needs else ("reload" if "reload" in needs else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "fixes": [
                {"id": o.id, "ok": o.ok, "cancelled": o.cancelled, "text": o.text,
                 "detail": o.detail}
                for o in self.outcomes
            ],
            "fixed": [f.to_dict() for f in self.fixed],
            "browser": self.browser,
            "findings": [f.to_dict() for f in self.after],
        }  # fmt: skip

    def text(self, *, verbose: bool = False) -> str:
        marks = {"ok": "✔", "warning": "⚠", "error": "✘"}
        lines = ["修复 (repair):"]
        if not self.outcomes:
            lines.append("  没有可自动修复的问题 (nothing to repair)")
        for o in self.outcomes:
            lines.append(f"  {o.line()}")
            if verbose and o.detail:
                lines += [f"      {d}" for d in o.detail.splitlines()]
        lines.append("变化 (what changed):")
        fixed = self.fixed
        for f in fixed:
            lines.append(f"  {marks[f.level]}→✔ {f.message}")
        if not fixed:
            lines.append("  没有变化 (nothing changed)")
        for f in self.problems:
            lines.append(f"  仍有问题 (still) {marks[f.level]} {f.message}")
        if self.browser:
            lines.append(f"→ {BROWSER_TEXT[self.browser]}")
        return "\n".join(lines)


def repair(
    before: Sequence[Finding],
    ids: Iterable[str] | None,
    ctx: FixContext,
    recheck: Callable[[], list[Finding]],
) -> RepairReport:
    """Apply ``ids`` (None: every fix the findings name), then ``recheck``."""
    chosen = fixes_for(before) if ids is None else list(dict.fromkeys(ids))
    outcomes = [apply_fix(fid, ctx) for fid in chosen]
    after = recheck() if outcomes else list(before)
    return RepairReport(outcomes, list(before), after)


def fix_command(
    config: Config,
    before: Sequence[Finding],
    ids: Sequence[str],
    recheck: Callable[[], list[Finding]],
    *,
    env: DoctorEnv | None = None,
) -> RepairReport:
    """``certhelper doctor --fix [ID…]``: no ids = every fix the findings name.
    Raises ValueError for an unknown id (before anything is changed)."""
    unknown = [i for i in ids if i not in FIXES]
    if unknown:
        raise ValueError(
            f"未知的修复 (unknown fix): {', '.join(unknown)}; 可用 (known): {', '.join(FIXES)}"
        )
    ctx = FixContext(config, DoctorEnv.default() if env is None else env)
    return repair(before, list(ids) or None, ctx, recheck)
