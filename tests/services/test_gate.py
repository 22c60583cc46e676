"""The gate decides with what the driver declares: an algorithm the key family
cannot make is refused before any dialog, on every transport."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from drivers.protocol import Capabilities
from drivers.types import SignAlgorithm
from tests.support.bridge import call, challenge, running_bridge
from tests.support.doubles import ScriptedPrompter
from tests.support.hebca import COMPANY, js, ok, running_hebca
from tests.support.hebca import call as hebca_call


class EcOnly:
    """The session's driver, declaring that it can make ECDSA signatures only."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def capabilities(self) -> Capabilities:
        caps = self._inner.capabilities
        ec = frozenset(a for a in caps.algorithms if a.value.startswith("ecdsa"))
        return dataclasses.replace(caps, algorithms=ec)


def test_native_login_is_refused_before_any_dialog(driver, fixtures, state) -> None:
    prompter = ScriptedPrompter()

    async def go() -> dict[str, Any]:
        async with running_bridge(EcOnly(driver), fixtures, state, prompter) as b:  # type: ignore[arg-type]
            ws = await b.ws()
            cert = fixtures.cert("company_sign")["sha256"]
            r = await call(ws, "auth.authenticate", {"challenge": challenge(), "certificate": cert})
            await ws.close()
            return r

    r = asyncio.run(go())
    assert r["error"]["code"] == "signing_unsupported"
    assert prompter.calls == []  # no PIN asked, no try spent


def test_hebca_signing_is_refused_before_any_dialog(driver, fixtures, state) -> None:
    prompter = ScriptedPrompter()

    async def go() -> dict[str, Any]:
        async with running_hebca(EcOnly(driver), fixtures, state, prompter) as h:  # type: ignore[arg-type]
            ws = await h.ws()
            await ok(ws, "SelectSignCertFilterDevice", js(deviceNames=""))
            r = await hebca_call(ws, "SignText", js(signText="x"))
            await ws.close()
            return r

    prompter.pick = lambda choices: next(c.id for c in choices if c.subject_cn == COMPANY)
    r = asyncio.run(go())
    assert r["ret"] == 1007  # signing_unsupported, as the client knows it
    assert [k for k, _ in prompter.calls] == ["pick"]  # the choice, then nothing


def test_the_pkcs11_family_declares_what_it_signs(driver) -> None:
    assert SignAlgorithm.RSA_PKCS1_SHA256 in driver.capabilities.algorithms
    assert SignAlgorithm.ECDSA_SHA256 in driver.capabilities.algorithms
