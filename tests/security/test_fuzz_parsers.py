"""Hypothesis fuzzing of every parser that reads what a page or a backend hands in
(security.md, requirement 18): the native API's message parser and parameter
checks, the HEBCA framing and its parameter readers, and the verifier's token,
certificate and chain inputs.

Property everywhere: arbitrary text, bytes and JSON-ish values end in a value or in
one of the project's documented errors — a :class:`CertHelperError` subclass with
its own code (never the bare ``internal_error``), or, for a verifier argument, the
documented ``ValueError``/``TypeError`` — and never hang (each example is bounded by
a hard timeout). Seeded (``derandomize``) and bounded, so CI sees the same examples
on every run.

The native handler and the HEBCA frame handler run in process over a real
:class:`Gate` with no key plugged in (so no dialog can legitimately open, and none
may); ``tests/security/test_fuzz_endpoints.py`` sends the same kinds of frames over
real sockets to a bridge with SoftHSM tokens."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from hypothesis import event, given
from hypothesis import strategies as st

from drivers.errors import BadInput, CertHelperError
from drivers.types import SignAlgorithm
from helper.bridge.hebca.connection import (
    HebcaConnection,
    b64_param,
    flag_param,
    index_param,
    text_param,
)
from helper.bridge.hebca.endpoint import handle_frame
from helper.bridge.hebca.framing import UnreadableParams, parse_params, split_frame
from helper.bridge.hebca.settings import HebcaSettings
from helper.bridge.native import api as native
from helper.bridge.native.usecases import NativeApi
from helper.bridge.ws import Connection
from helper.cms import build_signed_data, verify_signed_data
from helper.domain.certificate import CertificateModel
from helper.errors import BadParams, CertificateUnreadable
from helper.services.audit import AuditLog
from helper.services.gate import Gate
from helper.services.limits import GateSettings
from helper.services.params import b64decode_param, sha256_prefix
from helper.services.sessions import SessionTable
from helper.services.tokens import TokenService
from helper.verify import (
    VerifyError,
    check_chain,
    signed_bytes,
    verify_auth_token,
    verify_legacy_signature,
)
from helper.verify.errors import UnknownTokenFormat, UntrustedChain
from tests.security.fuzz_inputs import (
    ANY_TEXT,
    B64ISH,
    CHALLENGE,
    EXAMPLE_TIMEOUT,
    FEW,
    FUZZ,
    HEBCA_MESSAGES,
    JSONISH,
    PARAM_VALUE,
    SCALARS,
    bounded,
    documented,
    expected_id,
    hebca_frames,
    native_messages,
)
from tests.support.doubles import AUDIT_KEY, ScriptedPrompter

ORIGIN = "http://111.62.46.105:9010"  # the Cangzhou hall: page PIN allowed by default


# --- an in-process gate with no key plugged in -----------------------------------


class Recorder:
    """Stands in for aiohttp's WebSocketResponse under :class:`Connection`: what was
    sent (the endpoint fuzz test uses real sockets)."""

    closed = False

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_str(self, text: str) -> None:
        text.encode("utf-8")  # what aiohttp does: a lone surrogate would raise here
        self.sent.append(text)


class Rig:
    def __init__(self, state: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.prompter = ScriptedPrompter()
        self.gate = Gate(
            TokenService([]),
            self.prompter,
            SessionTable(300),
            AuditLog(state / "audit.jsonl", AUDIT_KEY, max_bytes=1 << 30),  # no rotation
            GateSettings(dialogs_per_minute=10**6),
        )
        self.hebca_settings = HebcaSettings()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, EXAMPLE_TIMEOUT))


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    with tempfile.TemporaryDirectory() as d:
        r = Rig(Path(d))
        yield r
        r.loop.close()
    assert r.prompter.calls == [], "garbage opened a dialog"


# --- native API -------------------------------------------------------------------


@FUZZ
@given(native_messages())
def test_native_parser_raises_only_bad_request(text: str) -> None:
    with bounded():
        native._peek_id(text)  # never raises
    try:
        with bounded():
            rid, method, params = native._parse(text)
    except CertHelperError as exc:
        assert exc.code in ("bad_request", "bad_params"), exc
        return
    assert isinstance(method, str) and isinstance(params, dict)
    assert rid == expected_id(text) and rid is not None
    with bounded():
        native.carries_pin(params)  # never raises, whatever the depth


@FUZZ
@given(st.one_of(SCALARS, JSONISH, st.text(min_size=90, max_size=110)))
def test_safe_ids_can_always_be_sent(rid: Any) -> None:
    safe = native._safe_id(rid)
    assert safe is None or safe == rid
    json.dumps({"id": safe}, ensure_ascii=False).encode("utf-8")


@FUZZ
@given(native_messages())
def test_every_native_message_gets_one_well_formed_reply(rig: Rig, text: str) -> None:
    recorder = Recorder()
    conn = Connection(recorder, ORIGIN)  # type: ignore[arg-type]
    handler = native.NativeSocket(NativeApi(rig.gate), None)
    rig.run(handler._handle(conn, text))
    assert len(recorder.sent) == 1, recorder.sent
    reply = json.loads(recorder.sent[0])
    assert set(reply) in ({"id", "result"}, {"id", "error"}), reply
    event(reply["error"]["code"] if "error" in reply else "result")
    if "error" in reply:
        assert reply["error"]["code"] != "internal_error", (text[:200], reply)
    assert reply["id"] == expected_id(text), (text[:200], reply)


@FUZZ
@given(PARAM_VALUE, st.booleans())
def test_base64_and_fingerprint_params(value: Any, urlsafe: bool) -> None:
    for check in (
        lambda: b64decode_param(value, "data", urlsafe=urlsafe),
        lambda: sha256_prefix(value),
    ):
        with bounded(), contextlib.suppress(BadParams):
            check()


# --- HEBCA framing ----------------------------------------------------------------


@FUZZ
@given(st.one_of(ANY_TEXT, hebca_frames()))
def test_frames_split_and_params_parse_or_are_unreadable(text: str) -> None:
    with bounded():
        frame = split_frame(text)
    assert (
        f"{frame.tag}|{frame.function}" == text
        or text.startswith(f"{frame.tag}|{frame.function}|")
        or (frame.function == "" and frame.tag == text)
    )
    try:
        with bounded():
            params = parse_params(frame.function, frame.raw_param)
    except UnreadableParams:
        return
    assert isinstance(params, dict)


@FUZZ
@given(PARAM_VALUE)
def test_hebca_param_readers_raise_only_bad_params(value: Any) -> None:
    for read in (text_param, b64_param):
        with bounded(), contextlib.suppress(BadParams):
            read(value, "x")
    with bounded(), contextlib.suppress(BadParams):
        index_param(value)
    assert flag_param(value) in (True, False)


@FUZZ
@given(hebca_frames())
def test_every_hebca_frame_gets_one_well_formed_reply(rig: Rig, text: str) -> None:
    conn = HebcaConnection(ORIGIN, rig.hebca_settings.options(ORIGIN), rig.hebca_settings, rig.gate)
    before = len(_audit_lines(rig))
    reply = rig.run(handle_frame(conn, text))
    assert isinstance(reply, str)
    if split_frame(text).tag == "0":
        assert reply == "0|Welcome"
        return
    tag, function, body = reply.split("|", 2)
    assert tag == "1" and function == split_frame(text).function[:64]
    assert "|" not in body and body.isascii()
    data = json.loads(body)
    assert isinstance(data["ret"], int) and not isinstance(data["ret"], bool)
    if data["ret"] != 0:
        assert data["msg"] in HEBCA_MESSAGES  # a fixed text, never the page's
    outcomes = [json.loads(x)["outcome"] for x in _audit_lines(rig)[before:]]
    event(outcomes[-1] if outcomes else "no audit")
    assert outcomes and "internal_error" not in outcomes, (text[:200], outcomes)


def _audit_lines(rig: Rig) -> list[str]:
    path = rig.gate.audit_log.path
    return path.read_text("utf-8").splitlines() if path.exists() else []


# --- the verifier's inputs --------------------------------------------------------

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # fixed, like the keys: the same DER every run
BEFORE, AFTER = NOW - timedelta(days=60), NOW + timedelta(days=300)


def _pki() -> tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey]:
    root_key = ec.derive_private_key(0x5EED_0001, ec.SECP256R1())
    leaf_key = ec.derive_private_key(0x5EED_0002, ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fuzz Root CA")])
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(1)
        .not_valid_before(BEFORE)
        .not_valid_after(AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "沧州市测试科技有限公司")])
        )
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(0x0651)
        .not_valid_before(BEFORE)
        .not_valid_after(AFTER)
        .sign(root_key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    return root, leaf, leaf_key


ROOT_CERT, LEAF_CERT, LEAF_KEY = _pki()
LEAF_DER = LEAF_CERT.public_bytes(serialization.Encoding.DER)
ROOT_DER = ROOT_CERT.public_bytes(serialization.Encoding.DER)


@st.composite
def mutated_der(draw: st.DrawFn, base: bytes = LEAF_DER) -> bytes:  # or any DER given
    """A real certificate with bytes changed, cut short, spliced or padded."""
    data = bytearray(base)
    for pos, value in draw(
        st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=6)
    ):
        data[pos] = value
    how = draw(st.sampled_from(["keep", "cut", "insert", "pad", "junk"]))
    if how == "cut":
        del data[draw(st.integers(0, len(data))) :]
    elif how == "insert":
        pos = draw(st.integers(0, len(data)))
        data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    elif how == "pad":
        data += draw(st.sampled_from([b"\0" * 4, b"\0\1", b"-----BEGIN"]))
    elif how == "junk":
        return draw(st.binary(max_size=300))
    return bytes(data)


def _real_signature() -> bytes:
    der = LEAF_KEY.sign(
        signed_bytes(ORIGIN, CHALLENGE), ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
    )
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


REAL_SIGNATURE = _real_signature()


def _token_dict(draw: st.DrawFn) -> dict[str, Any]:
    """A token close to the real one: most fields right, some fuzzed."""
    token: dict[str, Any] = {
        "format": "certhelper-auth:1",
        "certificate": base64.b64encode(draw(st.just(LEAF_DER) | mutated_der())).decode(),
        "algorithm": draw(st.sampled_from(["ES256", "ES256", "ES384", "RS256", "none"])),
        "signature": base64.b64encode(
            draw(
                st.one_of(
                    st.just(REAL_SIGNATURE),
                    st.binary(min_size=64, max_size=64),
                    st.binary(max_size=100),
                )
            )
        ).decode(),
        "origin": draw(st.sampled_from([ORIGIN, ORIGIN, ORIGIN + "/", "null"])),
        "app_version": "0.1.0",
    }
    for key in draw(st.lists(st.sampled_from(sorted(token)), max_size=2)):
        token[key] = draw(st.one_of(JSONISH, B64ISH))
    return token


def _is_the_real_token(token: Any) -> bool:
    real = {
        "format": "certhelper-auth:1",
        "certificate": base64.b64encode(LEAF_DER).decode(),
        "algorithm": "ES256",
        "signature": base64.b64encode(REAL_SIGNATURE).decode(),
        "origin": ORIGIN,
    }
    if isinstance(token, str):
        token = json.loads(token)
    return isinstance(token, dict) and all(token.get(k) == v for k, v in real.items())


@st.composite
def tokens(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:
        return draw(ANY_TEXT)
    if kind == 2:
        return json.dumps(draw(JSONISH))
    token = _token_dict(draw)
    return token if kind == 3 else json.dumps(token)


@FEW
@given(tokens())
def test_verify_auth_token_raises_only_verify_errors(token: Any) -> None:
    """A verdict for every token: an Identity only for the untouched real one."""
    try:
        with bounded():
            who = verify_auth_token(token, CHALLENGE, ORIGIN, [ROOT_DER], now=NOW)
    except VerifyError as exc:
        assert documented(exc)
        event(exc.code)
        return
    event("verified")
    assert _is_the_real_token(token) and who.certificate_der == LEAF_DER


@FEW
@given(ANY_TEXT)
def test_verify_auth_token_refuses_any_bad_challenge(challenge: str) -> None:
    with bounded(), pytest.raises(VerifyError):
        verify_auth_token("{}", challenge, ORIGIN, [ROOT_DER], now=NOW)


@FEW
@given(mutated_der(), st.binary(max_size=80), ANY_TEXT)
def test_verify_legacy_signature_raises_only_verify_errors(
    der: bytes, signature: bytes, text: str
) -> None:
    try:
        with bounded():
            verify_legacy_signature(der, signature, text, [ROOT_DER], now=NOW)
    except VerifyError as exc:
        assert documented(exc)
    except UnicodeEncodeError:
        # the text is the backend's own argument: a lone surrogate cannot be UTF-8
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    else:
        raise AssertionError("a random signature verified")


@FEW
@given(mutated_der())
def test_check_chain_is_untrusted_or_not_a_certificate(der: bytes) -> None:
    try:
        with bounded():
            check_chain(der, [ROOT_DER], now=NOW)
    except UntrustedChain:
        pass
    except ValueError as exc:  # documented: a bad argument (not a certificate)
        assert str(exc).startswith("certificate: not a certificate"), exc


@FEW
@given(mutated_der())
def test_certificate_model_reads_or_refuses(der: bytes) -> None:
    try:
        with bounded():
            model = CertificateModel.from_der(der)
    except CertificateUnreadable:
        return
    assert model.der == der[: len(model.der)]


def _cms(data: bytes) -> bytes:
    def sign(tbs: bytes) -> bytes:
        return LEAF_KEY.sign(tbs, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))

    return build_signed_data(
        data, LEAF_DER, sign, algorithm=SignAlgorithm.ECDSA_SHA256, detached=False, signing_time=NOW
    )


SIGNED_DATA = _cms(b"\xe6\xb2\xa7\xe5\xb7\x9e login")


@FEW
@given(mutated_der(SIGNED_DATA))
def test_p7_verify_answers_true_false_or_bad_input(blob: bytes) -> None:
    """P7VerifyB64's parser: a SignedData (mutated) is valid, invalid, or refused as
    input — never another exception (the HEBCA handler maps only these)."""
    try:
        with bounded():
            verdict = verify_signed_data(blob)
    except CertHelperError as exc:
        assert documented(exc), exc
        event(exc.code)
        return
    event(str(verdict))
    assert verdict in (True, False)  # (fields outside the signature, e.g. version, may change)


@FEW
@given(mutated_der(SIGNED_DATA))
def test_p7_verify_frames_never_fail_internally(rig: Rig, blob: bytes) -> None:
    """The same blobs as a page sends them: HEBCA ``P7VerifyB64`` answers each with a
    result or a documented error, never ``internal_error``."""
    conn = HebcaConnection(ORIGIN, rig.hebca_settings.options(ORIGIN), rig.hebca_settings, rig.gate)
    param = json.dumps({"b64data": base64.b64encode(blob).decode()})
    before = len(_audit_lines(rig))
    reply = rig.run(handle_frame(conn, f"1|P7VerifyB64|{param}"))
    data = json.loads(reply.split("|", 2)[2])
    outcomes = [json.loads(x)["outcome"] for x in _audit_lines(rig)[before:]]
    assert outcomes and outcomes[-1] != "internal_error", (blob, data)
    assert data["ret"] == 0 or data["msg"] in HEBCA_MESSAGES


def test_the_fuzzed_pki_is_sound() -> None:
    """The fixtures above are right: the untouched leaf chains and a real signature
    verifies, so the refusals above are about the fuzzed parts."""
    check_chain(LEAF_DER, [ROOT_DER], now=NOW)
    assert CertificateModel.from_der(LEAF_DER).subject_cn == "沧州市测试科技有限公司"
    text = "沧州 login"
    sig = LEAF_KEY.sign(text.encode(), ec.ECDSA(hashes.SHA256()))
    assert verify_legacy_signature(LEAF_DER, sig, text, [ROOT_DER], now=NOW).serial_hex
    assert verify_signed_data(SIGNED_DATA) is True


def test_check_chain_calls_a_malformed_subject_not_a_certificate() -> None:
    """Found by the fuzzing above: a leaf whose subject is not a valid Name loads
    (cryptography reads names lazily) and used to escape ``check_chain`` as a bare
    ``ValueError`` from inside the chain builder. It is now the documented argument
    error, raised while loading."""
    cn = "沧州市测试科技有限公司".encode()
    at = LEAF_DER.index(b"\x06\x03\x55\x04\x03\x0c" + bytes([len(cn)]) + cn) + 5
    bad = LEAF_DER[:at] + b"\x00" + LEAF_DER[at + 1 :]  # UTF8String tag → tag 0
    with pytest.raises(ValueError, match=r"^certificate: not a certificate"):
        check_chain(bad, [ROOT_DER], now=NOW)


def test_p7_verify_calls_an_unreadable_signer_info_bad_input() -> None:
    """Found by fuzzing: a SignedData whose SignerInfo cannot be parsed (asn1crypto
    reads it lazily, after the outer checks) escaped ``verify_signed_data`` as a bare
    ``ValueError``, so HEBCA ``P7VerifyB64`` answered ``internal_error`` and logged a
    traceback for any page that sent one. It is now ``BadInput``."""
    sid = b"0\x171\x150\x13\x06\x03U\x04\x03\x0c\x0cFuzz Root CA\x02\x02\x06Q"
    at = SIGNED_DATA.rindex(sid) + 2  # the SignerInfo's issuer: its SET tag ...
    bad = SIGNED_DATA[:at] + b"\x00" + SIGNED_DATA[at + 1 :]  # ... becomes tag 0
    with pytest.raises(BadInput):
        verify_signed_data(bad)


def test_p7_verify_of_a_key_cryptography_lacks_is_false() -> None:
    """Found by fuzzing: a signer certificate on a curve cryptography does not know
    escaped as ``UnsupportedAlgorithm`` (``internal_error`` over HEBCA); such a
    signature cannot be verified, like other unknown key types: False."""
    p256 = bytes.fromhex("06082a8648ce3d030107")  # 1.2.840.10045.3.1.7
    bad = SIGNED_DATA.replace(p256, bytes.fromhex("06082a8648ce3d031107"))  # … 3.17.7
    assert bad != SIGNED_DATA
    assert verify_signed_data(bad) is False


def test_an_invalid_x509_version_is_a_documented_refusal() -> None:
    """Found by fuzzing: a certificate whose version is neither v1 nor v3 passes the
    domain model, then cryptography raises ``InvalidVersion``, which is not a
    ``ValueError``: it escaped ``check_chain``, the token and legacy verifiers and
    ``verify_signed_data`` (HEBCA ``P7VerifyB64``: ``internal_error``)."""
    at = LEAF_DER.index(bytes.fromhex("a003020102")) + 4
    bad = LEAF_DER[:at] + b"\x05" + LEAF_DER[at + 1 :]
    with pytest.raises(ValueError, match=r"^certificate: not a certificate"):
        check_chain(bad, [ROOT_DER], now=NOW)
    with pytest.raises(UnknownTokenFormat):
        verify_legacy_signature(bad, b"\x30\x00", "text", [ROOT_DER], now=NOW)
    at = SIGNED_DATA.index(bytes.fromhex("a003020102")) + 4
    with pytest.raises(BadInput):
        verify_signed_data(SIGNED_DATA[:at] + b"\x05" + SIGNED_DATA[at + 1 :])
