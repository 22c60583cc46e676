"""The dialog module's pure parts: request parsing, PIN length rules, texts."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from drivers.types import PinState
from helper.ui import dialogs
from tests.ui.helpers import choices, consent_request, pin_request


@pytest.mark.parametrize(
    ("lo", "hi", "expected", "hint"),
    [
        (6, 16, (6, 16), "6–16 位 (6–16 characters)"),
        (6, 6, (6, 6), "6 位 (6 characters)"),
        (4, None, (4, None), "至少 4 位 (at least 4 characters)"),
        (None, None, (1, None), ""),
        (0, 8, (1, 8), "1–8 位 (1–8 characters)"),
        (8, 4, (8, None), "至少 8 位 (at least 8 characters)"),  # nonsense from a token
    ],
)
def test_pin_length_rules(
    lo: int | None, hi: int | None, expected: tuple[int, int | None], hint: str
) -> None:
    got = dialogs.pin_length_range(pin_request(lo=lo, hi=hi))
    assert got == expected
    assert dialogs.pin_length_hint(*got) == hint


def test_requests_round_trip_through_json_fields() -> None:
    pin = pin_request(PinState.FINAL_TRY)
    assert dialogs.parse_pin(asdict(pin)) == pin
    consent = consent_request(operation="sign.data", text="x", data_size=1, allow_always=False)
    assert dialogs.parse_consent(asdict(consent)) == consent
    picked = dialogs.parse_picker(
        {"origin": "https://a", "insecure_origin": False, "choices": [asdict(c) for c in choices()]}
    )
    assert picked == ("https://a", False, choices())


@pytest.mark.parametrize(
    "change",
    [{"pin_state": "melted"}, {"pin_min_len": "6"}, {"pin_max_len": True}],
)
def test_bad_pin_fields(change: dict[str, object]) -> None:
    with pytest.raises(dialogs.BadRequest):
        dialogs.parse_pin(asdict(pin_request()) | change)


def test_timeout_field() -> None:
    assert dialogs.parse_timeout({}) == dialogs.DEFAULT_TIMEOUT
    assert dialogs.parse_timeout({"timeout": 2}) == 2.0
    assert dialogs.parse_timeout({"timeout": 10**9}) == dialogs.MAX_TIMEOUT
    for bad in (0, -1, "60", True):
        with pytest.raises(dialogs.BadRequest):
            dialogs.parse_timeout({"timeout": bad})


def test_texts() -> None:
    digest = "e96760a87768717bcebcfd25ddc7d46b4dbc95a4b0014def080c08539f7d90d0"
    assert dialogs.group_hex(digest) == (
        "e96760a8 7768717b cebcfd25 ddc7d46b\n4dbc95a4 b0014def 080c0853 9f7d90d0"
    )
    assert dialogs.data_size_text(944) == "数据大小 944 字节 (944 bytes)"
    assert dialogs.is_plain_http("HTTP://111.62.46.105:9010")
    assert not dialogs.is_plain_http("https://hall.example.gov.cn")
    for op in ("connect", "certificates.list", "auth.authenticate", "sign.data"):
        assert op in dialogs.CONSENT_OPERATIONS
    assert dialogs.PIN_OPERATIONS["auth.authenticate"][0] == "登录"
    assert dialogs.PIN_OPERATIONS["sign.data"][0] == "签名"
