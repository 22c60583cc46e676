"""Finding 10: wrong PINs a page sends are capped per key across every origin (two
halls cannot spend six tries on one key), and a page's failures never keep the person
out of certhelper's own PIN dialog."""

from __future__ import annotations

import asyncio
from typing import Any

from helper.bridge.hebca.settings import HebcaOriginOptions
from tests.support.doubles import ScriptedPrompter
from tests.support.hebca import CANGZHOU, FAILED, HALL, call, js, ok, running_hebca
from tests.support.tokens import USER_PIN


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 120))


def test_page_pins_are_capped_per_key_across_origins(
    driver, fixtures, state, reset_pin_counters
) -> None:
    serial = fixtures.cert("company_sign")["token_serial"]
    options = {HALL: HebcaOriginOptions(page_pin=True), CANGZHOU: HebcaOriginOptions(page_pin=True)}
    prompter = ScriptedPrompter()

    async def go() -> list[str]:
        async with running_hebca(
            driver, fixtures, state, prompter, origins=[HALL, CANGZHOU], hebca_origins=options
        ) as h:
            a, b = await h.ws(HALL), await h.ws(CANGZHOU)
            for ws in (a, b):
                await ok(ws, "GetSignCert", '{"index":0}')
            # two wrong tries from one hall, one from the other: the key's cap is reached
            for ws, pin in ((a, "000000"), (a, "000001"), (b, "000002")):
                assert (await call(ws, "Login", js(pin=pin)))["ret"] == FAILED
            # now even the right PIN from the second hall is not tried
            assert (await call(b, "Login", js(pin=USER_PIN)))["ret"] == FAILED
            assert not driver.is_logged_in(serial)
            # the person's own dialog still works, for that hall too
            await ok(b, "UILogin")
            assert driver.is_logged_in(serial)
            outcomes = [e["outcome"] for e in h.hebca_audit() if "Login" in e["operation"]]
            for ws in (a, b):
                await ws.close()
            return outcomes

    outcomes = run(go())
    assert outcomes == ["pin_incorrect"] * 3 + ["pin_attempts_exceeded", "ok"]
    assert [k for k, _ in prompter.calls] == ["pin"]
