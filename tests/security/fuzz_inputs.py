"""What the fuzz tests send: hypothesis strategies for native-API messages, HEBCA
frames and parameter values, the settings they run under, and the oracles they share
(``tests/security/test_fuzz_parsers.py`` in process, ``test_fuzz_endpoints.py`` over
real sockets)."""

from __future__ import annotations

import base64
import contextlib
import html
import json
import os
import signal
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import helper.bridge.hebca.refused  # registers the HEBCA errors; its tables name the functions
from drivers.errors import ALL_ERRORS, CertHelperError
from helper.bridge.hebca.framing import TEMPLATES, UnreadableParams, parse_params

#: CI runs the bounded default; CERTHELPER_FUZZ_SCALE=20 (say) hunts deeper by hand
SCALE = max(1, int(os.environ.get("CERTHELPER_FUZZ_SCALE", "1")))
FUZZ = settings(
    derandomize=True,  # seeded: the same examples on every run
    database=None,
    deadline=None,
    max_examples=400 * SCALE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(FUZZ, max_examples=250 * SCALE)
EXAMPLE_TIMEOUT = 10.0  # "never hangs": one example, one bound

#: methods and functions that may open a dialog when their request is valid
NATIVE_DIALOG_METHODS = frozenset({"auth.authenticate", "sign.data"})
HEBCA_DIALOG_FUNCTIONS = frozenset(
    {
        "SelectSignCert",
        "SelectCryptCert",
        "SelectSignCertFilterDevice",
        "UILogin",
        "SignText",
        "SignB64",
        "P7SignB64",
        "Login",
        "CspLogin",
        "UnUICertLogin",
        "UnUISign",
    }
)
NATIVE_METHODS = [
    "certificates.list",
    "auth.authenticate",
    "sign.data",
    "auth.logout",
    "renewal.status",
    "renewal.request",
    "renewal.install",
    "renewal.",
]
HEBCA_REFUSED = sorted(helper.bridge.hebca.refused.REFUSED)
HEBCA_FUNCTIONS = sorted(set(helper.bridge.hebca.refused.HANDLERS) - set(HEBCA_REFUSED))
HEBCA_ODD_NAMES = ["Nope", "0", "", "toString", "__proto__", "getcertlist", "GetCertList "]
#: every fixed error text a HEBCA reply's msg may hold
HEBCA_MESSAGES = {html.escape(f"{c.message_zh} ({c.message_en})") for c in ALL_ERRORS}


@contextlib.contextmanager
def bounded(seconds: float = EXAMPLE_TIMEOUT) -> Iterator[None]:
    """Fail an example that runs longer than ``seconds`` (a hang is a finding)."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"one example ran over {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def documented(exc: BaseException) -> bool:
    return isinstance(exc, CertHelperError) and exc.code != CertHelperError.code


# --- strategies -----------------------------------------------------------------

SURROGATES = st.sampled_from(["\ud800", "\udfff", "a\udc80b"])
ANY_TEXT = st.one_of(st.text(max_size=80), SURROGATES, st.text(st.characters(), max_size=40))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    ANY_TEXT,
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)
B64ISH = st.one_of(
    st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
    st.binary(max_size=64).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n", max_size=60),
    st.sampled_from(["/w==", "====", "=", "A", "AB=", "\u0660\u0661", "Zm9v\x00"]),
)
#: a valid challenge (32 bytes, base64url), fixed so every run sends the same
CHALLENGE = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()
PARAM_VALUE = st.one_of(JSONISH, B64ISH, st.just(CHALLENGE))
NATIVE_PARAMS = st.one_of(
    JSONISH,
    st.dictionaries(
        st.sampled_from(
            ["challenge", "data", "format", "text", "certificate", "new_key", "chain", "PIN"]
        ),
        PARAM_VALUE,
        max_size=5,
    ),
)


@st.composite
def native_messages(draw: st.DrawFn, *, dialogs: bool = True) -> str:
    """Text frames from plain junk to well-formed requests with hostile fields.
    ``dialogs=False``: never a valid request of a method that opens a dialog (no
    challenge, no data), so any dialog the bridge opens is a finding."""
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return draw(ANY_TEXT)
    if kind == 1:
        return json.dumps(draw(JSONISH))
    if kind == 2:  # nested absurdly deep, on its own or in a field
        # not near the interpreter's recursion limit (~1000), where parsing succeeds or
        # not depending on how deep the parser's own stack already is
        depth = draw(st.integers(1, 300) | st.integers(3000, 30000))
        inner = "[" * depth + "]" * depth
        return draw(st.sampled_from([inner, '{"id": 1, "method": "x", "params": ' + inner + "}"]))
    msg: dict[str, Any] = {}
    # kinds 3-4: each field present or not, good or bad, on its own; 5-7: a proper
    # envelope, so the fuzz reaches the methods' own checks
    well_formed = kind >= 5
    good_id = st.one_of(st.integers(-(2**53), 2**53), st.text(max_size=100))
    bad_id = st.one_of(SCALARS, st.text(min_size=95, max_size=105), JSONISH, SURROGATES)
    methods = st.sampled_from(NATIVE_METHODS)
    bad_method = st.one_of(ANY_TEXT, JSONISH)
    for name, good, bad in (
        ("id", good_id, bad_id),
        ("method", methods, bad_method),
        ("params", NATIVE_PARAMS, JSONISH),
    ):
        if well_formed or draw(st.integers(0, 4)) > 0:
            msg[name] = draw(good if well_formed or draw(st.booleans()) else bad)
    if not dialogs and str(msg.get("method")) in NATIVE_DIALOG_METHODS:
        params = msg.get("params")
        if isinstance(params, dict):
            params.pop("challenge", None)
            params.pop("data", None)
    text = json.dumps(msg, ensure_ascii=draw(st.booleans()))
    if not well_formed and draw(st.booleans()):  # and cut or spliced
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "}", '"', "\\", "\x00", ",}"]))
    return text


def hebca_param_text(function: str) -> st.SearchStrategy[str]:
    fields = TEMPLATES.get(function, ("index", "b64data"))
    shaped = st.lists(st.one_of(ANY_TEXT, B64ISH), min_size=len(fields), max_size=len(fields)).map(
        lambda values: (
            "{" + ",".join(f'"{k}":"{v}"' for k, v in zip(fields, values, strict=True)) + "}"
        )
    )
    return st.one_of(
        ANY_TEXT,
        shaped,
        st.dictionaries(st.sampled_from([*fields, "index", "signflag"]), PARAM_VALUE).map(
            json.dumps
        ),
        st.sampled_from(
            [
                '{"index":undefined}',
                '{"index":CN}',
                '{"index":-1}',
                '{"index":99999999999999999999999}',
                '{"index":"٣"}',
                '{"index":1e999}',
                '{"key":"/w==","name":"dmVyc2lvbg=="}',
                '{"signText":' + "[" * 20000 + "]" * 20000 + "}",
                '{"a":"\\u',
                "{" * 5000,
            ]
        ),
    )


@st.composite
def hebca_frames(draw: st.DrawFn, *, dialogs: bool = True) -> str:
    """``1|function|param`` frames, the function mostly one the endpoint knows.
    ``dialogs=False``: a function that may open a dialog only gets a parameter
    that cannot be read (refused before its handler runs)."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(ANY_TEXT)
    pick = draw(st.integers(0, 9))  # weighted: most frames reach a handler
    if pick < 7:
        function = draw(st.sampled_from(HEBCA_FUNCTIONS))
    elif pick == 7:
        function = draw(st.sampled_from(HEBCA_REFUSED + HEBCA_ODD_NAMES))
    else:
        function = draw(ANY_TEXT)
    tag = draw(st.sampled_from(["1", "1", "2", "", "x", " 1"]))
    if kind == 1 and (dialogs or function not in HEBCA_DIALOG_FUNCTIONS):
        return f"{tag}|{function}"
    param = draw(hebca_param_text(function if kind == 2 else "Digest"))
    if not dialogs and function in HEBCA_DIALOG_FUNCTIONS and tag != "0":
        with contextlib.suppress(UnreadableParams):
            parse_params(function, param)
            param = "{" + param  # readable: made unreadable
            parse_params(function, param)
            param = "{oops"
    return f"{tag}|{function}|{param}"


def expected_id(text: str) -> Any:
    """The id a reply must carry: the request's when it is a string (≤ 100 chars,
    valid Unicode) or an integer within ±2**53, else null (bridge-protocol.md)."""
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError):
        return None
    rid = msg.get("id") if isinstance(msg, dict) else None
    if isinstance(rid, str):
        ok = len(rid) <= 100 and not any(0xD800 <= ord(c) <= 0xDFFF for c in rid)
        return rid if ok else None
    if isinstance(rid, int) and not isinstance(rid, bool) and abs(rid) <= 2**53:
        return rid
    return None
