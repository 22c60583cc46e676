"""我的证书's state without Tk: what the keys hold now, which row is selected
after a redraw, what the empty screen, the status line and the buttons say,
and the probe lines tests read. The view (view.py) only draws what this says."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drivers.types import TokenInfo
from helper.domain.expiry import ExpiryState
from helper.services.tokens import ModuleStatus, TokenView
from helper.ui.mycerts.poller import Snapshot
from helper.ui.mycerts.rows import Row, build_rows, signature, status_text, token_matches


@dataclass(frozen=True)
class EmptyScreen:
    heading: str
    sub: str
    hint: str


READING = EmptyScreen("正在读取 USB Key…", "Reading your USB keys…", "")
NO_DRIVER = EmptyScreen(
    "未找到 USB Key 驱动",
    "No USB key driver (PKCS#11 module) was found",
    "请安装 USB Key 厂商提供的驱动程序，或运行「检测修复」。\n"
    "(Install the driver that came with your USB key, or run 检测修复.)",
)
NO_KEY = EmptyScreen(
    "未检测到 USB Key，请插入",
    "No USB key found — please insert your USB key",
    "插入后会在这里自动显示，无需刷新。\n(It shows up here by itself within a couple of seconds.)",
)


@dataclass(frozen=True)
class Buttons:
    export: bool
    change_pin: bool
    renew_primary: bool


class MyCertsModel:
    def __init__(self, preferred_token: str | None = None) -> None:
        self.preferred_token = preferred_token
        self.rows: dict[str, Row] = {}
        self.order: list[str] = []
        self.views: list[TokenView] = []
        self.modules: list[ModuleStatus] = []
        self.refreshed: datetime | None = None
        self.notice = ""
        self.exported = ""
        self._signature: Any = None

    # --- snapshots -----------------------------------------------------------------

    def apply(self, snap: Snapshot, now: datetime) -> bool:
        """Take a snapshot; True when what the window shows changed (redraw)."""
        self.refreshed = snap.taken
        sig = signature(snap.views, snap.modules, now)
        changed = sig != self._signature
        self._signature = sig
        self.views, self.modules = snap.views, snap.modules
        if changed:
            rows = build_rows(self.views, now) if self.views else []
            self.rows = {r.iid: r for r in rows}
            self.order = [r.iid for r in rows]
        return changed

    def module_warnings(self) -> list[str]:
        return [f"⚠ 驱动模块加载失败 (module failed): {m.path}" for m in self.modules if m.error]

    def empty_screen(self) -> EmptyScreen | None:
        """What to show instead of the table (None: the table)."""
        if self.views:
            return None
        if not self.modules or all(m.driver is None for m in self.modules):
            return NO_DRIVER
        return NO_KEY

    def selection_after_redraw(self, kept: str | None) -> str | None:
        """The row to select: the key asked for on the command line (once), else the
        row that was selected, else the first."""
        if self.preferred_token:
            for iid in self.order:
                if token_matches(self.rows[iid].token, self.preferred_token):
                    self.preferred_token = None
                    return iid
        if kept in self.rows:
            return kept
        return self.order[0] if self.order else None

    # --- what the window says ------------------------------------------------------

    def status(self) -> str:
        text = status_text(self.views, self.refreshed)
        return f"{text}    {self.notice}" if self.notice else text

    def buttons(self, row: Row | None, now: datetime) -> Buttons:
        urgent = False
        if row and row.entry and row.entry.model:
            urgent = row.entry.model.expiry_state(now) is not ExpiryState.OK
        return Buttons(
            export=bool(row and row.exportable),
            change_pin=row is not None or len(self.views) == 1,
            renew_primary=urgent,
        )

    def pin_token(self, row: Row | None) -> TokenInfo | None:
        """The key 修改密码 applies to: the selected row's, or the only key."""
        if row is not None:
            return row.token
        return self.views[0].token if len(self.views) == 1 else None

    def exported_to(self, path: str, fmt: str, name: str) -> None:
        self.exported = path
        self.notice = f"已导出 (exported) {fmt.upper()}: {name}"

    # --- the probe (tests) ---------------------------------------------------------

    def probe_lines(self, selected: str | None, status: str, now: datetime) -> list[dict[str, Any]]:
        lines = [self.rows[iid].probe(now, selected=selected == iid) for iid in self.order]
        lines.append(
            {
                "type": "status",
                "keys": len(self.views),
                "certificates": sum(len(v.certificates) for v in self.views),
                "empty": not self.views,
                "refreshed": self.refreshed.isoformat() if self.refreshed else None,
                "status": status,
                "exported": self.exported or None,
            }
        )
        return lines
