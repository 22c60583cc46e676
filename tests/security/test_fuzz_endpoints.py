"""Hypothesis-generated frames over real sockets (security.md, requirement 18): the
native ``/v1/ws`` endpoint (configured Origin) and the legacy HEBCA ``/test``
endpoint, each a real aiohttp server on loopback over the session's SoftHSM tokens
(``tests.support.bridge`` / ``tests.support.hebca``), kept running on its own loop in
a thread while each example connects as a page would.

For every example (a few frames on one connection):

- every text frame gets exactly one well-formed reply, in order: native replies carry
  the request's id where one can be read (null otherwise) and never
  ``internal_error``; HEBCA replies are ``1|<function>|<json>`` with an integer
  ``ret`` and one of certhelper's fixed texts as ``msg``, and handshakes ``0|Welcome``;
- a binary frame gets a ``bad_request`` with id null (native) or is ignored (HEBCA:
  the next reply is still the next request's); a frame over 64 KiB closes the
  connection with 1009;
- the server is alive afterwards: a valid request on the same connection (when it
  is still open) and ``/v1/ping`` on a fresh one answer correctly;
- no dialog is opened: the frames are garbage by construction (a method or function
  that can open a dialog never gets a readable request; ``fuzz_inputs``), and the
  prompter double records every dialog asked for (it refuses them all);
- nothing is logged at ERROR (no traceback) and no audit line says ``internal_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import CertHelperError
from helper.bridge.hebca.framing import split_frame
from helper.bridge.hebca.settings import HebcaOriginOptions
from helper.errors import UserCancelled
from helper.services.prompts import CertChoice, ConsentChoice
from tests.security.fuzz_inputs import (
    FUZZ,
    HEBCA_MESSAGES,
    SCALE,
    expected_id,
    hebca_frames,
    native_messages,
)
from tests.support.bridge import HALL, Bridge, running_bridge
from tests.support.doubles import ScriptedPrompter
from tests.support.hebca import SIGN_CERTS, Hebca, parse_reply, running_hebca

ENDPOINT = settings(FUZZ, max_examples=150 * SCALE)
TIMEOUT = 10.0
MAX_MESSAGE = 64 * 1024
INTERNAL_ERROR = html.escape(f"{CertHelperError.message_zh} ({CertHelperError.message_en})")

T = TypeVar("T")


def _refuse_pick(choices: list[CertChoice]) -> str:
    raise UserCancelled()


def refusing_prompter() -> ScriptedPrompter:
    """Records every dialog asked for and refuses it (none may be asked for)."""
    return ScriptedPrompter(
        pins=[UserCancelled()] * 1000,
        consents=[ConsentChoice.DENY] * 1000,
        pick=_refuse_pick,
    )


class Served(Generic[T]):
    """An ``async with`` test server held open on its own loop in a thread."""

    def __init__(self, factory: Callable[[], contextlib.AbstractAsyncContextManager[T]]) -> None:
        self._factory = factory
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.value: T | None = None
        self._thread = threading.Thread(target=self._run, name="fuzz-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with self._factory() as value:
                self.value = value
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    def __enter__(self) -> T:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None or self.value is None:
            raise RuntimeError("the test server did not start") from self._error
        return self.value

    def __exit__(self, *exc: object) -> None:
        stop = self._stop
        assert stop is not None
        self._loop.call_soon_threadsafe(stop.set)
        self._thread.join(60)
        self._loop.close()
        if self._error is not None:
            raise self._error


class ErrorRecords(logging.Handler):
    """ERROR records of the helper's loggers (a traceback in the daemon's log)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def errors() -> Iterator[ErrorRecords]:
    handler = ErrorRecords()
    loggers = [logging.getLogger(name) for name in ("helper", "aiohttp", "asyncio")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@pytest.fixture(scope="module")
def native_server(driver, fixtures, tmp_path_factory) -> Iterator[Bridge]:  # type: ignore[no-untyped-def]
    state = tmp_path_factory.mktemp("fuzz-native")
    prompter = refusing_prompter()
    with Served(lambda: running_bridge(driver, fixtures, state, prompter)) as bridge:
        yield bridge


@pytest.fixture(scope="module")
def hebca_server(driver, fixtures, tmp_path_factory) -> Iterator[Hebca]:  # type: ignore[no-untyped-def]
    state = tmp_path_factory.mktemp("fuzz-hebca")
    prompter = refusing_prompter()
    # no page PIN even for the hall: no frame may ever spend a PIN try on the session's tokens
    origins = {HALL: HebcaOriginOptions(page_pin=False)}
    with Served(
        lambda: running_hebca(driver, fixtures, state, prompter, hebca_origins=origins)
    ) as hebca:
        yield hebca


# --- what is sent -----------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    kind: str  # "text", "binary" or "oversize"
    data: str | bytes


def on_the_wire(text: str) -> str:
    """What a browser sends for a string: a lone surrogate becomes U+FFFD (a
    WebSocket text frame is UTF-8; JavaScript's send() converts to a USVString)."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def frame_lists(texts: st.SearchStrategy[str]) -> st.SearchStrategy[list[Frame]]:
    texts = texts.map(on_the_wire)
    frame = st.one_of(
        texts.map(lambda t: Frame("text", t)),
        texts.map(lambda t: Frame("text", t)),
        texts.map(lambda t: Frame("text", t)),
        st.binary(max_size=64).map(lambda b: Frame("binary", b)),
    )
    oversize = st.integers(MAX_MESSAGE + 1, MAX_MESSAGE + 4096).map(
        lambda n: [Frame("oversize", '{"id": 1, "method": "x", "pad": "' + "x" * n + '"}')]
    )
    tail = st.one_of(st.just([]), st.just([]), st.just([]), oversize)
    return st.tuples(st.lists(frame, min_size=1, max_size=6), tail).map(lambda p: p[0] + p[1])


@contextlib.asynccontextmanager
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
        yield http


async def receive(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    """The next message within TIMEOUT (the server's heartbeat pings would restart
    ``receive(timeout=…)``'s own timeout)."""
    return await asyncio.wait_for(ws.receive(), TIMEOUT)


async def next_reply(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next native message that is not a server event."""
    while True:
        msg = await receive(ws)
        assert msg.type is aiohttp.WSMsgType.TEXT, (msg.type, msg.data, ws.close_code)
        data = json.loads(msg.data)
        if "event" not in data:
            return data


async def closed_with_1009(ws: aiohttp.ClientWebSocketResponse) -> None:
    msg = await receive(ws)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
    assert ws.close_code == 1009, ws.close_code


async def ping(http: aiohttp.ClientSession, port: int) -> None:
    async with http.get(f"http://127.0.0.1:{port}/v1/ping") as r:
        assert r.status == 200 and (await r.json())["app"] == "certhelper"


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 4 * TIMEOUT))


# --- native /v1/ws ------------------------------------------------------------------


async def _native_example(port: int, frames: list[Frame]) -> None:
    async with session() as http:
        ws = await http.ws_connect(
            f"http://127.0.0.1:{port}/v1/ws", headers={"Origin": HALL}, max_msg_size=0
        )
        for f in frames:
            if f.kind == "oversize":
                await ws.send_str(str(f.data))
                await closed_with_1009(ws)
                break
            if f.kind == "binary":
                await ws.send_bytes(bytes(f.data))
                reply = await next_reply(ws)
                assert reply["id"] is None and reply["error"]["code"] == "bad_request", reply
                continue
            text = str(f.data)
            await ws.send_str(text)
            reply = await next_reply(ws)
            assert set(reply) in ({"id", "result"}, {"id", "error"}), reply
            assert reply["id"] == expected_id(text), (text[:300], reply)
            if "error" in reply:
                assert reply["error"]["code"] != "internal_error", (text[:300], reply)
                assert set(reply["error"]) == {"code", "message", "message_zh", "message_en"}
        else:  # still open: a real request is served on the same connection
            await ws.send_str(json.dumps({"id": "probe", "method": "certificates.list"}))
            reply = await next_reply(ws)
            assert reply["id"] == "probe" and reply["result"]["certificates"], reply
        await ws.close()
        await ping(http, port)


@ENDPOINT
@given(frame_lists(native_messages(dialogs=False)))
def test_native_endpoint_answers_every_frame(
    native_server: Bridge, errors: ErrorRecords, frames: list[Frame]
) -> None:
    errors.records.clear()  # this example's only
    run(_native_example(native_server.port, frames))
    assert native_server.prompter.calls == [], "garbage opened a dialog"
    assert not errors.records, [r.getMessage() for r in errors.records]


# --- legacy HEBCA /test -----------------------------------------------------------------


async def _hebca_example(port: int, frames: list[Frame]) -> None:
    async with session() as http:
        ws = await http.ws_connect(
            f"http://127.0.0.1:{port}/test", headers={"Origin": HALL}, max_msg_size=0
        )
        for f in frames:
            if f.kind == "oversize":
                await ws.send_str(str(f.data))
                await closed_with_1009(ws)
                break
            if f.kind == "binary":
                await ws.send_bytes(bytes(f.data))  # ignored: no reply (checked below)
                continue
            text = str(f.data)
            await ws.send_str(text)
            msg = await receive(ws)
            assert msg.type is aiohttp.WSMsgType.TEXT, (text[:300], msg)
            frame = split_frame(text)
            if frame.tag == "0":
                assert msg.data == "0|Welcome", (text[:300], msg.data)
                continue
            _tag, _name, data = parse_reply(msg.data, frame.function[:64])
            if data["ret"] != 0:
                assert data["msg"] in HEBCA_MESSAGES, (text[:300], data)
                assert data["msg"] != INTERNAL_ERROR, (text[:300], data)
        else:  # still open, and in step: the next reply is this request's
            await ws.send_str("1|GetSignCertCount")
            msg = await receive(ws)
            assert msg.type is aiohttp.WSMsgType.TEXT, msg
            _tag, _name, data = parse_reply(msg.data, "GetSignCertCount")
            assert data == {"ret": 0, "count": len(SIGN_CERTS)}, data
        await ws.close()


@ENDPOINT
@given(frame_lists(hebca_frames(dialogs=False)))
def test_hebca_endpoint_answers_every_frame(
    hebca_server: Hebca, errors: ErrorRecords, frames: list[Frame]
) -> None:
    errors.records.clear()  # this example's only
    run(_hebca_example(hebca_server.port, frames))
    assert hebca_server.prompter.calls == [], "garbage opened a dialog"
    assert not errors.records, [r.getMessage() for r in errors.records]
