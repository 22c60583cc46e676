"""Findings 2 and 3: consent has one source of truth (the file `certhelper origins`
edits), a revocation stays revoked, one origin has at most one consent window at a
time, and a Deny (or a dismissed window) cancels that origin's queued dialogs."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp

from helper.errors import UserCancelled
from helper.services.consent import ConsentStore
from helper.services.prompts import ConsentChoice
from tests.support.bridge import running_bridge
from tests.support.doubles import ScriptedPrompter

SITE = "https://unconfigured.example.cn"
OTHER = "https://other.example.cn"
COMPANY = "沧州市测试科技有限公司"


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 120))


async def try_connect(b: Any, origin: str) -> int | str:
    """101 as "open" (then closed again), else the HTTP status of the refusal."""
    try:
        ws = await b.ws(origin)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await ws.close()
    return "open"


def test_a_revocation_by_the_cli_holds_in_the_running_daemon(driver, fixtures, state) -> None:
    prompter = ScriptedPrompter(
        consents=[ConsentChoice.ALWAYS, ConsentChoice.ALWAYS, ConsentChoice.ONCE]
    )

    async def go() -> tuple[Any, ...]:
        async with running_bridge(driver, fixtures, state, prompter) as b:
            first = await try_connect(b, SITE)  # asks: 始终允许
            again = await try_connect(b, SITE)  # no dialog
            ConsentStore(state / "consent.json").revoke(SITE)  # what `origins revoke` does
            after = await try_connect(b, SITE)  # asks again: 始终允许
            ConsentStore(state / "consent.json").revoke(SITE)
            other = await try_connect(b, OTHER)  # a decision for another site: 允许一次
            return first, again, after, other

    first, again, after, other = run(go())
    assert (first, again, after, other) == ("open", "open", "open", "open")
    assert [k for k, _ in prompter.calls] == ["consent", "consent", "consent"]
    recorded = json.loads((state / "consent.json").read_text("utf-8"))
    assert SITE not in recorded  # the daemon did not write the revoked decision back


def test_parallel_connections_get_one_window_and_one_deny_refuses_them_all(
    driver, fixtures, state
) -> None:
    prompter = ScriptedPrompter(consents=[ConsentChoice.DENY] * 6, delay=0.3)

    async def go() -> list[Any]:
        async with running_bridge(driver, fixtures, state, prompter) as b:
            return list(await asyncio.gather(*(try_connect(b, SITE) for _ in range(6))))

    results = run(go())
    assert results == [403] * 6
    assert [k for k, _ in prompter.calls] == ["consent"]  # one window, not six


def test_a_dismissed_window_refuses_the_waiting_connections_too(driver, fixtures, state) -> None:
    prompter = ScriptedPrompter(consents=[UserCancelled()] * 6, delay=0.3)

    async def go() -> list[Any]:
        async with running_bridge(driver, fixtures, state, prompter) as b:
            return list(await asyncio.gather(*(try_connect(b, SITE) for _ in range(6))))

    assert run(go()) == [403] * 6
    assert [k for k, _ in prompter.calls] == ["consent"]


def test_allow_once_is_one_connection_and_the_next_asks_in_turn(driver, fixtures, state) -> None:
    prompter = ScriptedPrompter(consents=[ConsentChoice.ONCE, ConsentChoice.DENY], delay=0.2)

    async def go() -> list[Any]:
        async with running_bridge(driver, fixtures, state, prompter) as b:
            return list(await asyncio.gather(*(try_connect(b, SITE) for _ in range(4))))

    results = run(go())
    assert sorted(map(str, results)) == ["403", "403", "403", "open"]
    assert [k for k, _ in prompter.calls] == ["consent", "consent"]  # once, then the Deny


def test_a_deny_cancels_that_sites_queued_sign_dialogs(driver, fixtures, state) -> None:
    """Ten sign.data requests from one page at once, the person denies the first: no
    second window from that page."""
    prompter = ScriptedPrompter(consents=[ConsentChoice.DENY] * 10, delay=0.2)
    prompter.pick = lambda choices: next(c.id for c in choices if c.subject_cn == COMPANY)
    data = base64.b64encode(b"payload").decode()

    async def go() -> list[dict]:
        async with running_bridge(driver, fixtures, state, prompter) as b:
            socks = [await b.ws() for _ in range(5)]
            for i, ws in enumerate(socks):
                for j in range(2):
                    msg = {"id": i * 2 + j, "method": "sign.data"}
                    msg["params"] = {"data": data, "format": "raw", "certificate": _sha(fixtures)}
                    await ws.send_str(json.dumps(msg))
            out = []
            for ws in socks:
                while len([r for r in out if r.get("ws") == id(ws)]) < 2:
                    r = await ws.receive_json(timeout=30)
                    if "event" not in r:
                        out.append(r | {"ws": id(ws)})
                await ws.close()
            return out

    replies = run(go())
    codes = sorted(r["error"]["code"] for r in replies)
    assert len(replies) == 10 and "consent_denied" in codes
    assert set(codes) <= {"consent_denied", "rate_limited"}
    assert [k for k, _ in prompter.calls] == ["consent"]


def _sha(fixtures: Any) -> str:
    return fixtures.cert("company_sign")["sha256"]
