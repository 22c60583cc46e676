"""HEBCA GenKeyPair / ImportCert: allowed for a configured CA origin only, with
exactly the checks and dialogs of renewal.request / renewal.install; refused
(1007, token untouched) for every other origin."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from helper.bridge.hebca.settings import HebcaOriginOptions
from helper.services.renewal import RenewalSettings
from tests.support.doubles import ScriptedPrompter
from tests.support.hebca import HALL, REFUSED, Hebca, call, js, ok, running_hebca
from tests.support.renewal import RSA_CN, PluggedToken, issue, snapshot

CA = "https://www.hebca.com"


@contextlib.asynccontextmanager
async def ca_hebca(
    driver, fixtures, state: Path, token: PluggedToken, prompter: ScriptedPrompter | None = None
) -> AsyncIterator[Hebca]:
    options = {HALL: HebcaOriginOptions(page_pin=True), CA: HebcaOriginOptions()}
    async with running_hebca(
        driver,
        fixtures,
        state,
        prompter,
        origins=[HALL, CA],
        hebca_origins=options,
        renewal=RenewalSettings.build([CA], [token.pki.root_pem]),
    ) as h:
        yield h


def _old(driver, token: PluggedToken) -> x509.Certificate:
    for c in driver.read_objects(token.serial).certificates:
        if c.label == RSA_CN:
            return x509.load_der_x509_certificate(c.value)
    raise AssertionError("no renewal certificate")


def test_gen_key_pair_then_import_cert(driver, fixtures, state, renewal_token) -> None:
    prompter = ScriptedPrompter()
    keys_before = len(driver.read_objects(renewal_token.serial).private_keys)

    async def go() -> None:
        async with ca_hebca(driver, fixtures, state, renewal_token, prompter) as h:
            ws = await h.ws(CA)
            res = await ok(ws, "GenKeyPair", '{"cn":"' + RSA_CN + '","rsaflag":true}')
            public = serialization.load_der_public_key(base64.b64decode(res["pubkeyb64"]))
            old = _old(driver, renewal_token)
            assert public.public_numbers() != old.public_key().public_numbers()  # type: ignore[union-attr]
            pki = renewal_token.pki
            der = issue(public, old, pki.issuing_cert(), pki.issuing_key())
            # the page sends no chain: the configured anchor must be enough here
            assert h.renewal is not None
            h.renewal.settings = RenewalSettings.build([CA], [pki.root_pem, pki.issuing_pem])
            b64cert = base64.b64encode(der).decode()
            await ok(ws, "ImportCert", js(b64cert=b64cert, signflag="true"))
            await ws.close()
            return der

    der = asyncio.run(go())
    ops = [(k, getattr(r, "operation", None)) for k, r in prompter.calls]
    assert ops == [
        ("consent", "renewal.request"),
        ("pin", "renewal.request"),
        ("consent", "renewal.install"),
    ]
    contents = driver.read_objects(renewal_token.serial)
    labels = {c.value: c.label for c in contents.certificates}
    assert labels[der] == RSA_CN
    assert any(label.startswith("archived-") for label in labels.values())
    assert len(contents.private_keys) == keys_before + 1


def test_refused_for_a_hall_even_when_logged_in(driver, fixtures, state, renewal_token) -> None:
    before = snapshot(driver, renewal_token.serial)
    prompter = ScriptedPrompter()

    async def go() -> None:
        async with ca_hebca(driver, fixtures, state, renewal_token, prompter) as h:
            ws = await h.ws(HALL)
            old = _old(driver, renewal_token)
            pki = renewal_token.pki
            der = issue(old.public_key(), old, pki.issuing_cert(), pki.issuing_key())
            for func, param in (
                ("GenKeyPair", '{"cn":"' + RSA_CN + '","rsaflag":true}'),
                ("ImportCert", js(b64cert=base64.b64encode(der).decode(), signflag="true")),
            ):
                res = await call(ws, func, param)
                assert res["ret"] == REFUSED, (func, res)
            await ws.close()

    asyncio.run(go())
    assert prompter.calls == []
    assert snapshot(driver, renewal_token.serial) == before


def test_import_cert_runs_the_same_checks(driver, fixtures, state, renewal_token) -> None:
    """A foreign-key certificate through ImportCert: refused like renewal.install."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    before = snapshot(driver, renewal_token.serial)

    async def go() -> dict:
        async with ca_hebca(driver, fixtures, state, renewal_token) as h:
            ws = await h.ws(CA)
            old = _old(driver, renewal_token)
            pki = renewal_token.pki
            soft = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            der = issue(soft.public_key(), old, pki.issuing_cert(), pki.issuing_key())
            res = await call(ws, "ImportCert", js(b64cert=base64.b64encode(der).decode()))
            await ws.close()
            return res

    res = asyncio.run(go())
    assert res["ret"] not in (0, REFUSED), res
    assert "密钥" in res["msg"]  # our own text: the key is not on the USB key
    assert snapshot(driver, renewal_token.serial) == before


def test_gen_key_pair_sm2_is_unsupported(driver, fixtures, state, renewal_token) -> None:
    before = snapshot(driver, renewal_token.serial)

    async def go() -> dict:
        async with ca_hebca(driver, fixtures, state, renewal_token) as h:
            ws = await h.ws(CA)
            res = await call(ws, "GenKeyPair", '{"cn":"' + RSA_CN + '","rsaflag":false}')
            await ws.close()
            return res

    assert asyncio.run(go())["ret"] == REFUSED
    assert snapshot(driver, renewal_token.serial) == before
