"""What each installer step did, printed in Chinese and English."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["done", "exists", "skipped", "failed"]

LABELS: dict[str, str] = {
    "done": "已完成 done",
    "exists": "已存在 unchanged",
    "skipped": "跳过 skipped",
    "failed": "失败 failed",
}
#: a dry run did nothing: what it would do
DRY_LABELS: dict[str, str] = {"done": "将执行 would do"}


@dataclass(frozen=True)
class Step:
    name: str  # e.g. "自启动 autostart"
    status: Status
    detail: str = ""

    def line(self, *, dry_run: bool = False) -> str:
        label = DRY_LABELS.get(self.status, LABELS[self.status]) if dry_run else LABELS[self.status]
        text = f"[{label}] {self.name}"
        if self.detail:
            sep = "（" if self.status == "skipped" else ": "
            end = "）" if self.status == "skipped" else ""
            text += f"{sep}{self.detail}{end}"
        return text


@dataclass
class Report:
    action: str  # "install" | "uninstall"
    dry_run: bool = False
    steps: list[Step] = field(default_factory=list)

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def extend(self, steps: list[Step]) -> None:
        self.steps.extend(steps)

    @property
    def ok(self) -> bool:
        return all(s.status != "failed" for s in self.steps)

    @property
    def changed(self) -> bool:
        return any(s.status == "done" for s in self.steps)

    def text(self) -> str:
        title = "安装 install" if self.action == "install" else "卸载 uninstall"
        if self.dry_run:
            title += "（演练，未做任何更改 dry run: nothing changed）"
        lines = ("  " + s.line(dry_run=self.dry_run) for s in self.steps)
        return "\n".join([f"证书助手 {title}", *lines])
