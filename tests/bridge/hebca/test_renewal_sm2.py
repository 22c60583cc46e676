"""HEBCA GenKeyPair {rsaflag:false} / ImportCert for an SM2 certificate on the soft SKF
key: a CA origin gets a new SM2 key pair (a new container; the old one untouched) with
the renewal dialogs, and the certificate the CA issues for it is written; a hall is
refused (1007) and the key is left exactly as it was."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import keys as asn1_keys

from drivers.skf.driver import SkfDriver, key_id
from helper.bridge.hebca.settings import HebcaOriginOptions
from helper.demo.ca_sm2 import Sm2Issuer, sm2_renewed_certificate
from helper.services.renewal import RenewalSettings
from tests.support.doubles import ScriptedPrompter
from tests.support.hebca import HALL, REFUSED, Hebca, call, js, ok, running_hebca
from tests.support.skf import GmKeys
from tests.support.sm2 import spki_of
from tests.support.tokens import Fixtures

CA = "https://www.hebca.com"
EXPIRING_CN = "沧州市即将到期测试有限公司"
OLD = "即将到期"


@contextlib.asynccontextmanager
async def ca_hebca(
    driver: SkfDriver, fx: Fixtures, state: Path, gm: GmKeys, prompter: ScriptedPrompter
) -> AsyncIterator[Hebca]:
    ca = gm.section["ca"]
    options = {HALL: HebcaOriginOptions(page_pin=True), CA: HebcaOriginOptions()}
    async with running_hebca(
        driver,
        fx,
        state,
        prompter,
        origins=[HALL, CA],
        hebca_origins=options,
        # ImportCert sends no chain: the issuing CA is configured beside the root
        renewal=RenewalSettings.build([CA], [ca["root"], ca["issuing"]]),
    ) as h:
        yield h


def snapshot(drv: SkfDriver, serial: str) -> list[tuple[Any, ...]]:
    contents = drv.read_objects(serial)
    certs = sorted((c.key_id, c.label, c.value) for c in contents.certificates)
    return [*certs, *sorted(k.key_id for k in contents.private_keys)]


def old_der(drv: SkfDriver, serial: str) -> bytes:
    kid = key_id(OLD, sign=True)
    return next(c.value for c in drv.read_objects(serial).certificates if c.key_id == kid)


def test_gen_key_pair_sm2_then_import_cert(
    skf_driver: SkfDriver, gm_keys: GmKeys, fixtures: Fixtures, state: Path
) -> None:
    serial = gm_keys.serial("gm1")
    old = old_der(skf_driver, serial)
    before = snapshot(skf_driver, serial)
    prompter = ScriptedPrompter()
    issuing = Path(gm_keys.section["ca"]["issuing"])
    issuer = Sm2Issuer.load(issuing, issuing.with_suffix(".key"))

    async def go() -> bytes:
        async with ca_hebca(skf_driver, fixtures, state, gm_keys, prompter) as h:
            ws = await h.ws(CA)
            res = await ok(ws, "GenKeyPair", js(cn=EXPIRING_CN, rsaflag=False))
            spki = base64.b64decode(res["pubkeyb64"])
            info = asn1_keys.PublicKeyInfo.load(spki)
            assert info["algorithm"]["parameters"].chosen.dotted == "1.2.156.10197.1.301"
            assert spki != spki_of(old)
            # the new key is in a new container; the old container is as it was
            assert set(before) < set(snapshot(skf_driver, serial))
            assert old_der(skf_driver, serial) == old
            der = sm2_renewed_certificate(old, spki, issuer, datetime.now(UTC)).der
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
    labels = {c.value: c.label for c in skf_driver.read_objects(serial).certificates}
    assert labels[der].startswith(OLD + "-r")
    assert labels[old].startswith("archived-") and labels[old].endswith(":" + OLD)


def test_gen_key_pair_sm2_is_refused_for_a_hall(
    skf_driver: SkfDriver, gm_keys: GmKeys, fixtures: Fixtures, state: Path
) -> None:
    serial = gm_keys.serial("gm1")
    before = snapshot(skf_driver, serial)
    prompter = ScriptedPrompter()

    async def go() -> dict[str, Any]:
        async with ca_hebca(skf_driver, fixtures, state, gm_keys, prompter) as h:
            ws = await h.ws(HALL)
            res = await call(ws, "GenKeyPair", js(cn=EXPIRING_CN, rsaflag=False))
            await ws.close()
            return res

    assert asyncio.run(go())["ret"] == REFUSED
    assert prompter.calls == []
    assert snapshot(skf_driver, serial) == before
