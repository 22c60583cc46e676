"""HEBCA framing: splitting, lenient parameters, reply escaping (docs/hebca-compat.md)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helper.bridge.hebca.framing import (
    UnreadableParams,
    encode_reply,
    is_handshake,
    parse_params,
    split_frame,
)


def test_split_on_the_first_two_bars_only() -> None:
    f = split_frame('1|SignText|{"signText":"a|b|c"}')
    assert (f.tag, f.function, f.raw_param) == ("1", "SignText", '{"signText":"a|b|c"}')
    assert split_frame("1|GetCertB64").raw_param is None
    assert is_handshake(split_frame("0|1591600000000"))
    assert not is_handshake(split_frame("1|0"))


@pytest.mark.parametrize(
    ("function", "raw", "expected"),
    [
        ("SignText", r'{"signText":"C:\a\b.txt"}', {"signText": r"C:\a\b.txt"}),
        ("SignText", r'{"signText":"C:\new"}', {"signText": r"C:\new"}),  # never an escape
        ("GetSignCert", '{"index":undefined}', {"index": None}),
        ("GetSubjectItem", '{"index":CN}', {"index": "CN"}),
        ("GetSignCert", '{"index":3}', {"index": 3}),
        ("SignText", '{"signText":"he said "hi""}', {"signText": 'he said "hi"'}),
        ("SignText", '{"signText":"line1\nline2"}', {"signText": "line1\nline2"}),
        (
            "UnUICertLogin",
            '{"certSN":"AB","password":"p"w|x"}',
            {"certSN": "AB", "password": 'p"w|x'},
        ),
        ("SignText", '{"signText":"a","signText":"b"}', {"signText": "a"}),  # first wins
        ("SignText", '{"signText":"x","evil":"y"}', {"signText": "x", "evil": "y"}),
        ("GenerateFileKeyB64", '{"b64data":"undefined"}', {"b64data": "undefined"}),
        ("GetCertB64", None, {}),
        ("GetCertB64", "", {}),
    ],
)
def test_lenient_parameters(function: str, raw: str | None, expected: dict) -> None:
    assert parse_params(function, raw) == expected


@pytest.mark.parametrize("raw", ["{oops", "[1,2]", '"x"', '{"index":}'])
def test_unreadable_parameters(raw: str) -> None:
    with pytest.raises(UnreadableParams):
        parse_params("GetSignCert", raw)


@given(st.text(max_size=200), st.sampled_from(["SignText", "GetSignCert", "UnUICertLogin", "X"]))
def test_any_parameter_text_parses_or_is_refused_cleanly(raw: str, function: str) -> None:
    with contextlib.suppress(UnreadableParams):
        assert isinstance(parse_params(function, raw), dict)


@given(
    st.dictionaries(
        st.text(max_size=10).filter(lambda k: k != "ret"), st.text(max_size=50), max_size=5
    )
)
def test_replies_are_ascii_and_bar_free(payload: dict) -> None:
    reply = encode_reply("SignText", {"ret": 0, **payload})
    tag, func, body = reply.split("|", 2)
    assert (tag, func) == ("1", "SignText")
    assert "|" not in body and body.isascii()
    assert json.loads(body)["ret"] == 0


def test_origin_options_merge_over_the_hall_defaults() -> None:
    from helper.bridge.hebca.settings import settings_from_config
    from helper.config import Config

    cfg = Config(
        hebca_origins={
            "http://111.62.46.105:9010": {"text_encoding": "GBK"},
            "HTTPS://Hall.Example.CN": {"page_pin": True},
        }
    )
    s = settings_from_config(cfg)
    cangzhou = s.options("http://111.62.46.105:9010")
    assert cangzhou.page_pin and cangzhou.text_encoding == "gbk"  # page_pin kept
    assert s.options("https://hall.example.cn").page_pin
    assert not s.options("https://other.example.cn").page_pin
    assert s.version_number == 0x070000
