"""Frames of the HEBCA protocol: split, read hand-built parameters, write replies.

The client builds parameters by string concatenation without any escaping
(hebca-p11-protocol.md, section 2.1): a backslash is a literal character, raw
control characters and quotes may appear inside values, ``undefined`` appears
for missing fields, and names may be inserted unquoted. Parsing therefore goes
strict JSON → lenient JSON → a template match on the shape the client builds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

#: functions whose parameter is an object of string fields only, in client order
TEMPLATES: dict[str, tuple[str, ...]] = {
    "SignText": ("signText",),
    "SignB64": ("b64data",),
    "P7SignB64": ("b64data",),
    "P7VerifyB64": ("b64data",),
    "Login": ("pin",),
    "CspLogin": ("pin",),
    "UnUICertLogin": ("certSN", "password"),
    "UnUISign": ("certSN", "b64data"),
    "IsCertOnline": ("cn",),
    "IsCertLogined": ("cn",),
    "SelectSignCertFilterDevice": ("deviceNames",),
    "Digest": ("certSN", "b64data", "digestalg"),
    "ReadRegB64": ("key", "name"),
}

_UNDEFINED = re.compile(r"(:\s*)undefined(\s*[,}])")
_BARE_WORD = re.compile(r"(:\s*)(?!true\b|false\b|null\b)([A-Za-z_][A-Za-z0-9_]*)(\s*[,}])")


class UnreadableParams(ValueError):
    """The parameter could not be read in any of the three ways."""


@dataclass(frozen=True)
class Frame:
    tag: str
    function: str
    raw_param: str | None  # None when the frame had no third field


def split_frame(text: str) -> Frame:
    """Split on the first two ``|`` only: values may contain ``|``."""
    parts = text.split("|", 2)
    tag = parts[0]
    function = parts[1] if len(parts) > 1 else ""
    return Frame(tag, function, parts[2] if len(parts) > 2 else None)


def is_handshake(frame: Frame) -> bool:
    return frame.tag == "0"


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        out.setdefault(k, v)
    return out


def _strict(raw: str) -> Any:
    return json.loads(raw, object_pairs_hook=_first_wins)


def _lenient(raw: str) -> Any:
    text = raw.replace("\\", "\\\\")  # a backslash is always a literal character
    text = _UNDEFINED.sub(r"\1null\2", text)
    text = _BARE_WORD.sub(r'\1"\2"\3', text)
    return json.loads(text, strict=False, object_pairs_hook=_first_wins)


def _template(raw: str, keys: tuple[str, ...]) -> dict[str, Any]:
    pattern = "^\\{" + ",".join(f'"{re.escape(k)}":"(.*?)"' for k in keys) + "\\}$"
    # the last value takes the rest greedily, so quotes inside it survive
    pattern = pattern[: pattern.rfind("(.*?)")] + "(.*)" + pattern[pattern.rfind("(.*?)") + 5 :]
    m = re.match(pattern, raw, re.DOTALL)
    if m is None:
        raise UnreadableParams(raw[:0])
    return dict(zip(keys, m.groups(), strict=True))


def parse_params(function: str, raw: str | None) -> dict[str, Any]:
    """The parameter object of a request ({} when there is none)."""
    if raw is None or raw.strip() == "":
        return {}
    candidates = []
    if "\\" not in raw:  # with a backslash, strict JSON would misread it as an escape
        candidates.append(_strict)
    candidates.append(_lenient)
    for parse in candidates:
        try:
            value = parse(raw)
        except (ValueError, RecursionError):  # RecursionError: nested absurdly deep
            continue
        if isinstance(value, dict):
            return value
    keys = TEMPLATES.get(function)
    if keys:
        return _template(raw, keys)
    raise UnreadableParams("unreadable parameter")


def encode_reply(function: str, payload: dict[str, Any]) -> str:
    """``1|<function>|<json>``: ASCII-only JSON (so U+2028/2029 are escaped)
    with every ``|`` written as ``\\u007c`` — the client splits on ``|`` and
    evals the third field."""
    body = json.dumps(payload, ensure_ascii=True, separators=(",", ":")).replace("|", "\\u007c")
    return f"1|{function}|{body}"


HANDSHAKE_REPLY = "0|Welcome"
