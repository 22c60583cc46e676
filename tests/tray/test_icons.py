"""The three icons: 64×64 RGBA, distinct, grey without a key, a badge for attention."""

from __future__ import annotations

from helper.tray.icons import BLUE, GREY, ORANGE, SIZE, icon_for
from helper.tray.state import Status


def near(pixel: tuple[int, ...], colour: tuple[int, ...], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel[:3], colour[:3], strict=True))


def test_icons() -> None:
    icons = {s: icon_for(s) for s in Status}
    for image in icons.values():
        assert image.size == (SIZE, SIZE) and image.mode == "RGBA"
        assert image.getpixel((0, 0))[3] == 0  # transparent corner
    assert len({im.tobytes() for im in icons.values()}) == 3
    shield = (14, 40)  # left part of the shield, clear of the glyph and the badge
    assert near(icons[Status.NORMAL].getpixel(shield), BLUE)
    assert near(icons[Status.NO_KEY].getpixel(shield), GREY)
    assert near(icons[Status.ATTENTION].getpixel(shield), BLUE)
    assert near(icons[Status.ATTENTION].getpixel((42, 52)), ORANGE)
    assert not near(icons[Status.NORMAL].getpixel((42, 52)), ORANGE)
