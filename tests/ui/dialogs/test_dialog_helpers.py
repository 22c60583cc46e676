"""The dialog module's pure parts: request parsing, PIN length rules, texts."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from drivers.types import PinState
from helper.ui.dialogs.protocol import (
    DEFAULT_TIMEOUT,
    MAX_TIMEOUT,
    BadRequest,
    parse_consent,
    parse_picker,
    parse_pin,
    parse_timeout,
)
from helper.ui.dialogs.texts import (
    CONSENT_OPERATIONS,
    PIN_OPERATIONS,
    data_size_text,
    group_hex,
    is_plain_http,
    pin_length_hint,
    pin_length_range,
)
from tests.support.dialogs import choices, consent_request, pin_request


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
    got = pin_length_range(pin_request(lo=lo, hi=hi))
    assert got == expected
    assert pin_length_hint(*got) == hint


def test_requests_round_trip_through_json_fields() -> None:
    pin = pin_request(PinState.FINAL_TRY)
    assert parse_pin(asdict(pin)) == pin
    consent = consent_request(operation="sign.data", text="x", data_size=1, allow_always=False)
    assert parse_consent(asdict(consent)) == consent
    picked = parse_picker(
        {"origin": "https://a", "insecure_origin": False, "choices": [asdict(c) for c in choices()]}
    )
    assert picked == ("https://a", False, choices())


@pytest.mark.parametrize(
    "change",
    [{"pin_state": "melted"}, {"pin_min_len": "6"}, {"pin_max_len": True}],
)
def test_bad_pin_fields(change: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        parse_pin(asdict(pin_request()) | change)


def test_timeout_field() -> None:
    assert parse_timeout({}) == DEFAULT_TIMEOUT
    assert parse_timeout({"timeout": 2}) == 2.0
    assert parse_timeout({"timeout": 10**9}) == MAX_TIMEOUT
    for bad in (0, -1, "60", True):
        with pytest.raises(BadRequest):
            parse_timeout({"timeout": bad})


def test_texts() -> None:
    digest = "e96760a87768717bcebcfd25ddc7d46b4dbc95a4b0014def080c08539f7d90d0"
    assert group_hex(digest) == (
        "e96760a8 7768717b cebcfd25 ddc7d46b\n4dbc95a4 b0014def 080c0853 9f7d90d0"
    )
    assert data_size_text(944) == "数据大小 944 字节 (944 bytes)"
    assert is_plain_http("HTTP://111.62.46.105:9010")
    assert not is_plain_http("https://hall.example.gov.cn")
    for op in ("connect", "certificates.list", "auth.authenticate", "sign.data"):
        assert op in CONSENT_OPERATIONS
    assert PIN_OPERATIONS["auth.authenticate"][0] == "登录"
    assert PIN_OPERATIONS["sign.data"][0] == "签名"
