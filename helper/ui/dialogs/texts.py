"""What the dialogs say, worked out without Tk: operation names, PIN length
hints, sizes and digests, the plain-http test, clipped text."""

from __future__ import annotations

from helper.services.prompts import PinRequest

#: the most text the consent dialog shows of the data to be signed
MAX_TEXT_CHARS = 4000
#: no dialog is narrower (pixels)
MIN_WIDTH = 580

#: operation → (Chinese, English) as the PIN dialog names it
PIN_OPERATIONS = {
    "auth.authenticate": ("登录", "Log in"),
    "sign.data": ("签名", "Sign"),
    "renewal.request": ("申请证书延期", "Request the certificate's renewal"),
}
#: operation → (Chinese, English) as the consent dialog asks for it
CONSENT_OPERATIONS = {
    "connect": ("连接证书助手", "connect to the certificate helper"),
    "certificates.list": ("读取证书列表", "read your certificate list"),
    "auth.authenticate": ("使用证书登录", "log in with your certificate"),
    "sign.data": ("签名数据", "sign data with your certificate"),
    "renewal.request": ("为证书申请延期", "request the renewal of your certificate"),
    "renewal.install": (
        "把延期后的证书写入 USB Key",
        "write the renewed certificate onto your USB key",
    ),
}


def pin_length_range(request: PinRequest) -> tuple[int, int | None]:
    """The PIN lengths the OK button accepts: (min, max or None)."""
    lo = max(request.pin_min_len or 1, 1)
    hi = request.pin_max_len
    if hi is not None and hi < lo:  # a token reporting nonsense: trust only the minimum
        hi = None
    return lo, hi


def pin_length_hint(lo: int, hi: int | None) -> str:
    if hi is not None:
        if hi == lo:
            return f"{lo} 位 ({lo} characters)"
        return f"{lo}–{hi} 位 ({lo}–{hi} characters)"
    if lo > 1:
        return f"至少 {lo} 位 (at least {lo} characters)"
    return ""


def data_size_text(size: int) -> str:
    return f"数据大小 {size} 字节 ({size} bytes)"


def group_hex(digest: str) -> str:
    """A hex digest in groups of 8, 4 groups a line, for reading aloud and comparing."""
    groups = [digest[i : i + 8] for i in range(0, len(digest), 8)]
    return "\n".join(" ".join(groups[i : i + 4]) for i in range(0, len(groups), 4))


def is_plain_http(origin: str) -> bool:
    """Marked 不安全 even if the caller forgot to say so."""
    return origin.strip().lower().startswith("http:")


def clip_text(text: str) -> str:
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return (
        text[:MAX_TEXT_CHARS]
        + f"\n…（仅显示前 {MAX_TEXT_CHARS} 个字符，共 {len(text)} 个"
        + f" / first {MAX_TEXT_CHARS} of {len(text)} characters shown）"
    )
