"""The certificate picker: a table of the usable certificates, and their details."""

from __future__ import annotations

from typing import Any

from helper.services.prompts import CertChoice
from helper.ui.dialogs.base import Dialog, tkfont_measure
from helper.ui.style import (
    DANGER,
    WARN,
)


class PickerDialog(Dialog):
    title_zh = "选择证书"
    title_en = "Choose a certificate"
    resizable = True

    #: (key, heading, widest it grows to fit its contents, anchor)
    COLUMNS = (
        ("subject", "使用者 (Subject)", 340, "w"),
        ("issuer", "颁发者 (Issuer)", 400, "w"),  # 「河北CA测试二级证书 HEBCA Test Issuing CA」
        ("until", "有效期至 (Valid to)", 200, "center"),
        ("days", "剩余天数 (Days left)", 200, "center"),
        ("key", "USB Key", 180, "w"),
    )

    def __init__(
        self, origin: str, insecure: bool, choices: list[CertChoice], timeout: float
    ) -> None:
        super().__init__(timeout)
        ttk = self.ttk
        self.choices = choices
        self.set_heading("请选择要使用的证书", "Choose the certificate to use")
        self.add_origin(origin, insecure)
        self.add_insecure_note(origin, insecure)

        frame = ttk.Frame(self.body)
        self.tree = tree = ttk.Treeview(
            frame,
            columns=[c[0] for c in self.COLUMNS],
            show="headings",
            selectmode="browse",
            height=min(max(len(choices), 3), 8),
        )
        tree.tag_configure("expired", foreground=DANGER)
        tree.tag_configure("soon", foreground=WARN)
        rows = []
        for c in choices:
            tags: tuple[str, ...]
            if c.days_left < 0:
                days, tags = "已过期 (expired)", ("expired",)
            else:
                days, tags = f"{c.days_left} 天", ("soon",) if c.days_left <= 30 else ()
            values = (c.subject_cn, c.issuer_cn, c.not_after[:10], days, c.token_label)
            rows.append(values)
            tree.insert("", "end", iid=str(len(rows) - 1), tags=tags, values=values)
        for i, (key, title, widest, anchor) in enumerate(self.COLUMNS):
            fit = max(
                [self.font_bold.measure(title) + 24]
                + [tkfont_measure(self.root, str(v[i])) + 24 for v in rows]
            )
            tree.heading(key, text=title, anchor=anchor)
            tree.column(key, width=min(fit, widest), minwidth=60, anchor=anchor)
        scroll = ttk.Scrollbar(frame, orient="vertical", command=tree.yview, takefocus=0)
        tree.configure(yscrollcommand=scroll.set)
        tree.pack(side="left", fill="both", expand=True)
        if len(choices) > 8:
            scroll.pack(side="right", fill="y")
        self.body.rowconfigure(self._row, weight=1)
        self.add_wide(frame, pady=(10, 0))
        self.detail = self.add_wide(ttk.Label(self.body, style="Muted.TLabel"), pady=(6, 0))

        tree.selection_set("0")
        tree.focus("0")
        tree.bind("<<TreeviewSelect>>", lambda _e: self._show_detail())
        tree.bind("<Double-1>", self._double_click)
        self._show_detail()
        self.root.bind("<Return>", lambda _e: self.pick())
        self.root.bind("<KP_Enter>", lambda _e: self.pick())
        self.add_button("确定 (OK)", self.pick, primary=True)
        self.add_button("取消 (Cancel)", self.cancel)
        self.focus_first(tree)

    def _show_detail(self) -> None:
        sel = self.tree.selection()
        if not sel:
            self.detail.configure(text="")
            return
        c = self.choices[int(sel[0])]
        expires = c.not_after.replace("T", " ").removesuffix("Z") + " UTC" if c.not_after else "—"
        self.detail.configure(
            text=f"序列号 (Serial) {c.serial_hex or '—'}      到期 (Expires) {expires}"
        )

    def _double_click(self, event: Any) -> None:
        row = self.tree.identify_row(event.y)
        if row and self.tree.identify_region(event.x, event.y) in ("cell", "tree"):
            self.tree.selection_set(row)
            self.pick()

    def pick(self) -> None:
        if not self.armed:
            return
        sel = self.tree.selection()
        if not sel:
            self.root.bell()
            return
        self.finish({"result": "ok", "id": self.choices[int(sel[0])].id})
