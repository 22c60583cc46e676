"""The consent dialog: who asks, for what, with which certificate, and what is signed."""

from __future__ import annotations

from helper.services.prompts import ConsentRequest
from helper.ui.dialogs.base import Dialog
from helper.ui.dialogs.texts import CONSENT_OPERATIONS, clip_text, data_size_text, group_hex
from helper.ui.style import (
    BORDER,
    CARD,
    TEXT,
)


class ConsentDialog(Dialog):
    title_zh = "网站请求授权"
    title_en = "Site permission"

    def __init__(self, request: ConsentRequest, timeout: float) -> None:
        super().__init__(timeout)
        zh, en = CONSENT_OPERATIONS.get(request.operation, (request.operation, request.operation))
        self.set_heading(f"是否允许该网站{zh}？", f"Allow this site to {en}?")
        self.add_origin(request.origin, request.insecure_origin)
        self.add_row("操作 (Action)", f"{zh} ({en})", style="Strong.TLabel")
        if request.cert_subject:
            self.add_row("证书 (Certificate)", request.cert_subject)
        if request.cert_issuer:
            self.add_row("颁发者 (Issuer)", request.cert_issuer)
        for key, value in request.details:
            self.add_row(key, value)
        if request.operation == "sign.data":
            if request.text is not None:
                self._text_box(request)
            else:
                self._digest(request)
        self.add_insecure_note(request.origin, request.insecure_origin)

        self.once = self.add_button("允许一次 (Allow once)", lambda: self._choose("once"),
                                    primary=True)  # fmt: skip
        if request.allow_always:
            self.always = self.add_button("始终允许 (Always allow)", lambda: self._choose("always"))
        self.deny = self.add_button("拒绝 (Deny)", lambda: self._choose("deny"))
        self.focus_first(self.deny)  # Enter never allows: the default is the refusal

    def _text_box(self, request: ConsentRequest) -> None:
        tk, ttk = self.tk, self.ttk
        self.add_wide(
            ttk.Label(self.body, text="待签名内容 (Content to be signed)", style="Key.TLabel"),
            pady=(8, 2),
        )
        frame = ttk.Frame(self.body, style="Card.TFrame")
        text = tk.Text(
            frame, height=8, width=56, wrap="char", relief="flat", background=CARD,
            foreground=TEXT, font=self.font_sub, padx=8, pady=6, takefocus=0,
            highlightthickness=1, highlightbackground=BORDER, highlightcolor=BORDER,
        )  # fmt: skip
        scroll = ttk.Scrollbar(frame, orient="vertical", command=text.yview, takefocus=0)
        text.configure(yscrollcommand=scroll.set)
        text.insert("1.0", clip_text(request.text or ""))
        text.configure(state="disabled")
        text.pack(side="left", fill="both", expand=True)
        scroll.pack(side="right", fill="y")
        self.add_wide(frame, pady=(0, 0))
        # the bytes behind the text, so a back end's record can be compared with it
        if request.data_size is not None:
            line = data_size_text(request.data_size)
            if request.text_encoding:
                line += f"，{request.text_encoding} 编码 ({request.text_encoding} encoded)"
            self.add_wide(ttk.Label(self.body, text=line, style="Muted.TLabel"), pady=(2, 0))
        if request.data_sha256:
            self.add_wide(
                ttk.Label(
                    self.body,
                    text="SHA-256 " + group_hex(request.data_sha256).replace("\n", "\n" + " " * 8),
                    style="Muted.TLabel",
                    font=self.font_mono,
                ),
                pady=(0, 0),
            )

    def _digest(self, request: ConsentRequest) -> None:
        ttk = self.ttk
        cell = ttk.Frame(self.body)
        if request.data_size is not None:
            ttk.Label(cell, text=data_size_text(request.data_size)).pack(anchor="w")
        if request.data_sha256:
            ttk.Label(cell, text="SHA-256", style="Muted.TLabel").pack(anchor="w", pady=(4, 0))
            ttk.Label(cell, text=group_hex(request.data_sha256), font=self.font_mono).pack(
                anchor="w"
            )
        if request.data_size is None and not request.data_sha256:
            ttk.Label(cell, text="（未提供数据摘要 no summary given）", style="Muted.TLabel").pack(
                anchor="w"
            )
        self.add_row("待签名数据 (Data)", cell)

    def _choose(self, choice: str) -> None:
        if not self.armed:  # the input delay (a stray key or click grants nothing)
            return
        self.finish({"result": "ok", "choice": choice})
