"""The three tray icons, drawn with Pillow (no image files to ship):
a blue shield with 证 (normal), the same with an orange badge (attention),
and a grey one (no key). Drawn at 4× and scaled down for smooth edges."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from helper.tray.state import Status

SIZE = 64
_SCALE = 4
BLUE = (30, 99, 200, 255)
GREY = (138, 143, 152, 255)
ORANGE = (240, 130, 20, 255)
WHITE = (255, 255, 255, 255)

#: fonts with 证, per platform (first found wins; TTC collections: the SC face)
_FONTS = {
    "linux": [
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
        "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    ],
    "win32": [
        r"C:\Windows\Fonts\msyhbd.ttc",
        r"C:\Windows\Fonts\msyh.ttc",
        r"C:\Windows\Fonts\simhei.ttf",
    ],
    "darwin": [
        "/System/Library/Fonts/PingFang.ttc",
        "/System/Library/Fonts/STHeiti Medium.ttc",
        "/System/Library/Fonts/Hiragino Sans GB.ttc",
    ],
}


def _font_paths() -> list[str]:
    key = "linux" if sys.platform.startswith(("linux", "freebsd")) else sys.platform
    return _FONTS.get(key, [])


def _cjk_font(size: int) -> ImageFont.FreeTypeFont | None:
    for path in _font_paths():
        if not Path(path).exists():
            continue
        for index in range(6):  # prefer the Simplified Chinese face of a collection
            try:
                font = ImageFont.truetype(path, size, index=index)
            except OSError:
                break
            if not path.endswith(".ttc") or "SC" in " ".join(n or "" for n in font.getname()):
                return font
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return None


def _shield(draw: ImageDraw.ImageDraw, s: int, colour: tuple[int, int, int, int]) -> None:
    u = s / 64
    top, left, right, mid = 4 * u, 9 * u, 55 * u, 32 * u
    points = [
        (mid, top),
        (right, top + 8 * u),
        (right, 30 * u),
        (right - 4 * u, 42 * u),
        (mid, 60 * u),
        (left + 4 * u, 42 * u),
        (left, 30 * u),
        (left, top + 8 * u),
    ]
    draw.polygon(points, fill=colour)


def _glyph(draw: ImageDraw.ImageDraw, s: int) -> None:
    u = s / 64
    font = _cjk_font(int(30 * u))
    if font is not None:
        draw.text((32 * u, 30 * u), "证", font=font, fill=WHITE, anchor="mm")
        return
    # no CJK font: a white tick instead of the character
    draw.line([(21 * u, 31 * u), (29 * u, 39 * u), (43 * u, 22 * u)], fill=WHITE, width=int(6 * u))


def _badge(draw: ImageDraw.ImageDraw, s: int) -> None:
    u = s / 64
    box = (38 * u, 38 * u, 63 * u, 63 * u)
    draw.ellipse(box, fill=ORANGE, outline=WHITE, width=int(2 * u))
    draw.rectangle((49 * u, 43 * u, 52.5 * u, 54 * u), fill=WHITE)
    draw.rectangle((49 * u, 56 * u, 52.5 * u, 59.5 * u), fill=WHITE)


@functools.cache
def icon_for(status: Status) -> Image.Image:
    """The 64×64 RGBA icon for a tray status (cached; do not modify it)."""
    big = SIZE * _SCALE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    _shield(draw, big, GREY if status is Status.NO_KEY else BLUE)
    _glyph(draw, big)
    if status is Status.ATTENTION:
        _badge(draw, big)
    return image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
