"""Findings 6, 7 and 8 of the hardening issue: every request gets exactly one reply
with its own id, malformed input is a bad request (never an internal error, never
silence), the 64 KiB limit means what the docs say, and a GET that is not a
WebSocket upgrade causes nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tests.support.bridge import HALL, challenge, running_bridge
from tests.support.doubles import ScriptedPrompter
from tests.support.hebca import FAILED, call, js, running_hebca

HTTPS_SITE = "https://unconfigured.example.cn"


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 120))


async def replies(ws: aiohttp.ClientWebSocketResponse, n: int, timeout: float = 30) -> list[dict]:
    out: list[dict] = []
    while len(out) < n:
        data = await ws.receive_json(timeout=timeout)
        if "event" not in data:
            out.append(data)
    return out


def test_rate_limited_replies_keep_their_ids(driver, fixtures, state) -> None:
    """100 requests at once on one connection: every one answered once, by its id."""
    prompter = ScriptedPrompter(delay=0.3)

    async def go() -> list[dict]:
        async with running_bridge(driver, fixtures, state, prompter) as b:
            ws = await b.ws()
            for i in range(100):
                msg = {"id": f"r{i}", "method": "auth.authenticate"}
                msg["params"] = {"challenge": challenge()}
                await ws.send_str(json.dumps(msg))
            got = await replies(ws, 100)
            await ws.close()
            return got

    got = run(go())
    ids = [r["id"] for r in got]
    assert sorted(ids) == sorted(f"r{i}" for i in range(100))  # each once, none null
    limited = [r for r in got if r.get("error", {}).get("code") == "rate_limited"]
    assert limited, "the in-flight cap was never reached"


def test_a_lone_surrogate_id_still_gets_one_reply(driver, fixtures, state) -> None:
    async def go() -> dict:
        async with running_bridge(driver, fixtures, state) as b:
            ws = await b.ws()
            await ws.send_str('{"id": "\\ud800", "method": "certificates.list"}')
            [reply] = await replies(ws, 1, timeout=5)
            await ws.close()
            return reply

    reply = run(go())
    assert reply["id"] is None and reply["error"]["code"] == "bad_request"


def test_deep_nesting_is_a_bad_request(driver, fixtures, state) -> None:
    deep = '{"id": 7, "method": "x", "params": {"a": ' + "[" * 20000 + "]" * 20000 + "}}"

    async def go() -> dict:
        async with running_bridge(driver, fixtures, state) as b:
            ws = await b.ws()
            await ws.send_str(deep)
            [reply] = await replies(ws, 1, timeout=10)
            await ws.close()
            return reply

    reply = run(go())
    assert reply["error"]["code"] == "bad_request"


def test_64_kib_messages_are_allowed_and_one_byte_more_is_not(driver, fixtures, state) -> None:
    async def send(ws: aiohttp.ClientWebSocketResponse, size: int) -> Any:
        head = '{"id": 1, "method": "auth.logout", "params": {"pad": "'
        tail = '"}}'
        await ws.send_str(head + "x" * (size - len(head) - len(tail)) + tail)
        return await ws.receive(timeout=10)

    async def go() -> tuple[Any, Any, Any]:
        async with running_bridge(driver, fixtures, state) as b:
            ws = await b.ws()
            fits = await send(ws, 64 * 1024)
            await ws.close()
            ws = await b.ws()
            too_big = await send(ws, 64 * 1024 + 1)
            code = ws.close_code
            await ws.close()
            return fits, too_big, code

    fits, too_big, code = run(go())
    assert fits.type == aiohttp.WSMsgType.TEXT and json.loads(fits.data)["id"] == 1
    assert too_big.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and code == 1009


def test_a_plain_get_on_the_socket_opens_no_dialog(driver, fixtures, state) -> None:
    prompter = ScriptedPrompter()

    async def go() -> int:
        async with running_bridge(driver, fixtures, state, prompter) as b:
            r = await b.http.get(b.url("/v1/ws"), headers={"Origin": HTTPS_SITE})
            status = r.status
            r.release()
            return status

    status = run(go())
    assert prompter.calls == []  # requirement 6: GET has no side effects
    assert status in (400, 426)


def test_hebca_deep_nesting_and_odd_base64_are_bad_params(driver, fixtures, state) -> None:
    async def go() -> tuple[dict, dict, list[str]]:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws(HALL)
            deep = await call(ws, "SignText", '{"signText": ' + "[" * 20000 + "]" * 20000 + "}")
            odd = await call(ws, "ReadRegB64", js(key="/w==", name="dmVyc2lvbg=="))
            await ws.close()
            return deep, odd, [e["outcome"] for e in h.hebca_audit()]

    deep, odd, outcomes = run(go())
    assert deep["ret"] == FAILED and odd["ret"] == FAILED
    assert outcomes[-2:] == ["bad_params", "bad_params"]
