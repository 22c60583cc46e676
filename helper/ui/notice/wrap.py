"""Line breaking for mixed Chinese and English text (Tk wraps CJK badly)."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


NO_START = frozenset("，。、；：？！）」』》】〉”’…％,.;:?!)]}%")
#: may not end a line (opening punctuation)
NO_END = frozenset("（「『《【〈“‘([{")


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _segments(paragraph: str) -> list[tuple[str, str]]:
    """Unbreakable pieces of a paragraph, each with the spaces before it (dropped
    where the line breaks). A line may break between two Chinese characters (not
    before closing or after opening punctuation) and at spaces between two Latin
    words; spaces next to Chinese text glue, so 剩余 4 天 and 于 2026-11-30 到 stay
    whole."""
    units: list[tuple[str, str]] = []  # (kind, text): "cjk" | "word" | "space"
    for ch in paragraph:
        kind = "space" if ch == " " else "cjk" if _is_wide(ch) else "word"
        if kind != "cjk" and units and units[-1][0] == kind:
            units[-1] = (kind, units[-1][1] + ch)
        else:
            units.append((kind, ch))
    out: list[tuple[str, str]] = []
    cur, gap = "", ""
    for i, (kind, text) in enumerate(units):
        prev = units[i - 1] if i else None
        if kind == "space":
            after = units[i + 1] if i + 1 < len(units) else None
            if prev and after and prev[0] == after[0] == "word":
                out.append((cur, gap))
                cur, gap = "", text
            elif cur:
                cur += text  # glued to the Chinese beside it
            continue
        if (
            cur
            and prev is not None
            and prev[0] != "space"
            and "cjk" in (prev[0], kind)
            and text[0] not in NO_START
            and prev[1][-1] not in NO_END
        ):
            out.append((cur, gap))
            cur, gap = "", ""
        cur += text
    if cur:
        out.append((cur, gap))
    return out


def wrap_text(text: str, measure: Callable[[str], int], width: int) -> str:
    """``text`` with line breaks so no line is wider than ``width`` (as ``measure``
    says), breaking the way Chinese text breaks (see :func:`_segments`). Tk's own
    wrapping breaks only at spaces, which splits 剩余 4 天 and leaves half-empty
    lines in Chinese."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for seg, gap in _segments(paragraph):
            candidate = line + gap + seg if line else seg
            if not line or measure(candidate) <= width:
                line = candidate
            else:
                lines.append(line)
                line = seg
            while measure(line) > width and len(line) > 1:  # one piece wider than a line
                cut = max((n for n in range(1, len(line)) if measure(line[:n]) <= width), default=1)
                lines.append(line[:cut])
                line = line[cut:].lstrip(" ")
        lines.append(line)
    return "\n".join(lines)
