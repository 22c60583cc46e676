"""The consent dialog: the focused button answers Enter, Escape cancels."""

from __future__ import annotations

import hashlib

import pytest

from helper.errors import UserCancelled
from helper.services.prompts import ConsentChoice
from tests.support.desktop import Desktop
from tests.support.dialogs import HALL, consent_request


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ((), ConsentChoice.DENY),  # Enter never allows: the refusal is the default
        (("shift+Tab",), ConsentChoice.ALWAYS),
        (("shift+Tab", "shift+Tab"), ConsentChoice.ONCE),
    ],
    ids=["enter-deny", "back-always", "back-back-once"],
)
def test_keyboard_choices(desk: Desktop, keys: tuple[str, ...], expected: ConsentChoice) -> None:
    def steps() -> None:
        desk.wait_window()
        desk.key(*keys)
        if not keys:
            desk.screenshot("consent-login")
        desk.key("Return")

    choice = desk.drive(desk.prompter().ask_consent(consent_request()), steps)
    assert choice is expected


def test_deny_by_clicking_its_button(desk: Desktop) -> None:
    """The buttons sit at the bottom right, 拒绝 (Deny) last: click it with the mouse."""

    def steps() -> None:
        wid = desk.wait_window()
        x, y, w, h = desk.geometry(wid)
        # the footer's right padding is 24 px, the button ~32 px tall, ~18 px above the edge
        desk.xdo("mousemove", "--sync", str(x + w - 24 - 30), str(y + h - 18 - 14))
        desk.xdo("click", "1")

    choice = desk.drive(
        desk.prompter().ask_consent(consent_request(origin=HALL, insecure_origin=True)), steps
    )
    assert choice is ConsentChoice.DENY


def test_escape_cancels(desk: Desktop) -> None:
    def steps() -> None:
        desk.wait_window()
        desk.key("Escape")

    with pytest.raises(UserCancelled):
        desk.drive(desk.prompter().ask_consent(consent_request()), steps)


def test_no_always_button_when_not_allowed(desk: Desktop) -> None:
    """Without 始终允许 the buttons are 允许一次 → 拒绝: one step back from the
    focused 拒绝 is 允许一次."""
    text = "公积金提取申请\n申请人：张三\n金额：12,000.00 元\n" + "明细行 detail line\n" * 40

    def steps() -> None:
        desk.wait_window()
        desk.screenshot("consent-sign-text")
        desk.key("shift+Tab", "Return")

    request = consent_request(
        operation="sign.data",
        text=text,
        data_size=len(text.encode()),
        data_sha256=hashlib.sha256(text.encode()).hexdigest(),
        allow_always=False,
    )
    assert desk.drive(desk.prompter().ask_consent(request), steps) is ConsentChoice.ONCE


def test_sign_digest_only_allow_once(desk: Desktop) -> None:
    data = bytes(range(256)) * 40

    def steps() -> None:
        desk.wait_window()
        desk.screenshot("consent-sign-digest")
        desk.key("shift+Tab", "Return")

    request = consent_request(
        origin=HALL,
        insecure_origin=True,
        operation="sign.data",
        data_size=len(data),
        data_sha256=hashlib.sha256(data).hexdigest(),
        allow_always=False,
    )
    assert desk.drive(desk.prompter().ask_consent(request), steps) is ConsentChoice.ONCE


def test_long_text_is_clipped(desk: Desktop) -> None:
    from helper.ui.dialogs.texts import MAX_TEXT_CHARS, clip_text

    assert clip_text("短") == "短"
    clipped = clip_text("签" * (MAX_TEXT_CHARS + 10))
    assert clipped.startswith("签" * MAX_TEXT_CHARS)
    assert clipped.count("签") == MAX_TEXT_CHARS + 0
    assert str(MAX_TEXT_CHARS + 10) in clipped

    def steps() -> None:
        desk.wait_window()
        desk.key("Escape")

    request = consent_request(operation="sign.data", text="签" * 50_000, allow_always=False)
    with pytest.raises(UserCancelled):
        desk.drive(desk.prompter().ask_consent(request), steps)


def test_connect_request(desk: Desktop) -> None:
    def steps() -> None:
        desk.wait_window()
        desk.screenshot("consent-connect")
        desk.key("shift+Tab", "Return")

    request = consent_request(operation="connect", cert_subject=None, cert_issuer=None)
    assert desk.drive(desk.prompter().ask_consent(request), steps) is ConsentChoice.ALWAYS


def test_renewal_confirmation_shows_its_details(desk: Desktop) -> None:
    """The write confirmation lists what will happen, one row per detail: the
    window grows by those rows; Enter on 允许一次 confirms."""
    details = (
        ("新证书序列号 (New serial)", "7A3F0C21D4E5B6A7"),
        ("新有效期 (New validity)", "2026-11-26 21:00 至 (to) 2027-12-01 21:00"),
        ("原证书有效期至 (Old valid to)", "2026-12-01 21:00"),
        ("原证书 (Old certificate)", "保留为归档证书，不再使用 (kept, archived, no longer used)"),
        ("USB Key", "河北CA测试Key2"),
    )
    heights = {}
    for name, rows in (("plain", ()), ("details", details)):
        request = consent_request(
            origin="https://www.hebca.com",
            insecure_origin=False,
            operation="renewal.install",
            allow_always=False,
            details=rows,
        )

        def steps(name: str = name) -> None:
            wid = desk.wait_window()
            heights[name] = desk.geometry(wid)[3]
            if name == "details":
                desk.screenshot("consent-renewal-install")
            desk.key("shift+Tab", "Return")

        assert desk.drive(desk.prompter().ask_consent(request), steps) is ConsentChoice.ONCE
    assert heights["details"] >= heights["plain"] + 5 * 18  # five more rows


def test_parse_consent_details() -> None:
    from helper.ui.dialogs.protocol import BadRequest, parse_consent

    base = {"origin": "https://www.hebca.com", "insecure_origin": False, "operation": "x"}
    parsed = parse_consent({**base, "details": [["a", "b"], ["c", "d"]]})
    assert parsed.details == (("a", "b"), ("c", "d"))
    for bad in ("text", [["a"]], [["a", 1]], [1, 2]):
        with pytest.raises(BadRequest):
            parse_consent({**base, "details": bad})
