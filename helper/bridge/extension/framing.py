"""Native-messaging framing: a 32-bit little-endian length, then UTF-8 JSON.

The browser starts ``certhelper native-host`` and talks to it on stdio with
this framing. Limits:

* browser → host: at most :data:`MAX_INBOUND` (64 KiB, the bridge's own frame
  limit). A longer frame cannot be skipped safely (its length field may be
  garbage), so :class:`Decoder` reports :class:`FrameTooLarge` and goes dead;
  the host then closes, which the extension sees as a disconnect.
* host → browser: Chromium refuses messages over 1 MiB. :func:`encode` raises
  :class:`ReplyTooLarge` instead of splitting (no protocol reply we produce
  comes near it); the host answers the request with an error frame instead.
* A frame whose body is not UTF-8 JSON or not an object is :class:`BadFrame`;
  the stream stays in sync, so the host answers with an error and goes on.
* End of input inside a frame is :class:`TruncatedFrame`.
"""

from __future__ import annotations

import json
import struct
from typing import Any

MAX_INBOUND = 64 * 1024
MAX_OUTBOUND = 1024 * 1024
_HEADER = struct.Struct("<I")


class FramingError(Exception):
    """A frame that cannot be delivered; ``code`` is what the host reports."""

    code = "bad_frame"


class BadFrame(FramingError):
    code = "bad_frame"


class FrameTooLarge(FramingError):
    code = "frame_too_large"


class TruncatedFrame(FramingError):
    code = "truncated_frame"


class ReplyTooLarge(FramingError):
    code = "reply_too_large"


def encode(message: dict[str, Any], limit: int = MAX_OUTBOUND) -> bytes:
    """One frame for the browser; :class:`ReplyTooLarge` past ``limit``."""
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(body) > limit:
        raise ReplyTooLarge(f"{len(body)} bytes > {limit}")
    return _HEADER.pack(len(body)) + body


def parse(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadFrame("not UTF-8 JSON") from exc
    if not isinstance(value, dict):
        raise BadFrame("not a JSON object")
    return value


class Decoder:
    """Incremental decoder: feed it bytes as they come, get whole frames out.

    :meth:`feed` returns, in order, each decoded message or the
    :class:`FramingError` for a frame that could not be decoded (interleaved
    good and bad frames keep their order). After :class:`FrameTooLarge` the
    decoder is dead and ignores further input.
    """

    def __init__(self, limit: int = MAX_INBOUND) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self.dead = False

    def feed(self, data: bytes) -> list[dict[str, Any] | FramingError]:
        if self.dead:
            return []
        self._buffer += data
        out: list[dict[str, Any] | FramingError] = []
        while len(self._buffer) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(self._buffer)
            if length > self.limit:
                self.dead = True
                self._buffer.clear()
                out.append(FrameTooLarge(f"{length} bytes > {self.limit}"))
                break
            if len(self._buffer) < _HEADER.size + length:
                break
            body = bytes(self._buffer[_HEADER.size : _HEADER.size + length])
            del self._buffer[: _HEADER.size + length]
            try:
                out.append(parse(body))
            except BadFrame as exc:
                out.append(exc)
        return out

    def close(self) -> TruncatedFrame | None:
        """End of input: a :class:`TruncatedFrame` if a frame was left half read."""
        if self._buffer and not self.dead:
            left = len(self._buffer)
            self._buffer.clear()
            return TruncatedFrame(f"{left} bytes of an unfinished frame")
        return None
