"""Native API v1 with an SM2 key on the soft SKF library: the list offers the
signing certificates (never the encryption one), a login token is ``SM2SM3``
(r ‖ s over SM3(Z ‖ signed bytes)), and sign.data signs raw and as CMS. Every
signature is checked with gmalg and OpenSSL 3 (distid), not the helper's code."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import gmalg
from asn1crypto import algos, cms

from drivers.sm2 import DEFAULT_ID
from tests.support.bridge import HALL, call, challenge, running_bridge
from tests.support.doubles import ScriptedPrompter
from tests.support.sm2 import gmalg_verifies, spki_of, verified_both_ways
from tests.support.tokens import USER_PIN


def run(coro):
    return asyncio.run(coro)


def _der_of(rs: bytes) -> bytes:
    assert len(rs) == 64
    return algos.DSASignature(
        {"r": int.from_bytes(rs[:32], "big"), "s": int.from_bytes(rs[32:], "big")}
    ).dump()


def _pick(cert: dict):
    return lambda choices: next(c.id for c in choices if c.subject_cn == cert["subject_cn"])


def test_list_offers_sm2_signing_certificates_only(skf_driver, gm_keys, fixtures, state) -> None:
    async def go() -> None:
        async with running_bridge(skf_driver, fixtures, state) as b:
            ws = await b.ws()
            certs = (await call(ws, "certificates.list"))["result"]["certificates"]
            shas = {c["sha256"]: c for c in certs}
            sign, enc = gm_keys.cert("gm_company_sign"), gm_keys.cert("gm_company_enc")
            assert sign["sha256"] in shas and enc["sha256"] not in shas
            listed = shas[sign["sha256"]]
            assert listed["key_type"] == "SM2" and listed["usage"] == "sign"
            assert listed["signing_supported"] and listed["driver"] == "skf"
            assert gm_keys.cert("gm_rsa_sign")["sha256"] in shas  # an RSA container of an SKF key
            await ws.close()

    run(go())


def test_sm2_login_token(skf_driver, gm_keys, fixtures, state) -> None:
    sign = gm_keys.cert("gm_company_sign")

    async def go() -> None:
        prompter = ScriptedPrompter(pick=_pick(sign))
        async with running_bridge(skf_driver, fixtures, state, prompter) as b:
            ws = await b.ws()
            chal = challenge()
            tok = (await call(ws, "auth.authenticate", {"challenge": chal}))["result"]
            assert tok["format"] == "certhelper-auth:1" and tok["algorithm"] == "SM2SM3"
            der = base64.b64decode(tok["certificate"])
            assert hashlib.sha256(der).hexdigest() == sign["sha256"]
            rs = base64.b64decode(tok["signature"])
            assert len(rs) == 64
            tbs = hashlib.sha256(HALL.encode()).digest() + hashlib.sha256(chal.encode()).digest()
            assert verified_both_ways(der, tbs, _der_of(rs))
            other = hashlib.sha256(b"https://x").digest() + tbs[32:]
            assert not gmalg_verifies(spki_of(der), other, _der_of(rs))
            assert prompter.kinds() == ["pick", "pin"]
            pin_req = prompter.calls[1][1]
            assert pin_req.token_label == "河北CA测试国密Key1"
            await ws.close()

    run(go())


def test_sm2_sign_data_raw_and_cms(skf_driver, gm_keys, fixtures, state) -> None:
    sign = gm_keys.cert("gm2_sign")
    data = "汇缴确认：2026年12月，金额 1234.50 元".encode()

    async def go() -> None:
        prompter = ScriptedPrompter(pick=_pick(sign))
        async with running_bridge(skf_driver, fixtures, state, prompter) as b:
            ws = await b.ws()
            b64 = base64.b64encode(data).decode()
            params = {"data": b64, "text": data.decode(), "format": "raw"}
            res = (await call(ws, "sign.data", params))["result"]
            assert res["algorithm"] == "SM2SM3"
            der = base64.b64decode(res["certificate"])
            assert hashlib.sha256(der).hexdigest() == sign["sha256"]
            assert verified_both_ways(der, data, base64.b64decode(res["signature"]))
            # the certificate is named: no picker; the session holds: no second PIN
            res = (
                await call(
                    ws,
                    "sign.data",
                    {"data": b64, "format": "cms", "certificate": sign["sha256"]},
                    rid=2,
                )
            )["result"]
            info = cms.ContentInfo.load(base64.b64decode(res["signature"]))
            si = info["content"]["signer_infos"][0]
            assert si["digest_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.401"
            assert si["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
            attrs = {a["type"].native: a["values"][0] for a in si["signed_attrs"]}
            sm3 = gmalg.SM3()
            sm3.update(data)
            assert attrs["message_digest"].native == sm3.value()
            signed_attrs = si["signed_attrs"].untag().dump()
            sig = si["signature"].native
            assert verified_both_ways(der, signed_attrs, sig, DEFAULT_ID)
            assert prompter.kinds() == ["pick", "consent", "pin", "consent"]
            await ws.close()

    run(go())


def test_a_wrong_pin_on_an_skf_key_says_the_exact_tries_left(
    skf_driver, gm_keys, fixtures, state
) -> None:
    sign = gm_keys.cert("gm_company_sign")

    async def go() -> None:
        prompter = ScriptedPrompter(pins=["000000", "111111", USER_PIN], pick=_pick(sign))
        async with running_bridge(skf_driver, fixtures, state, prompter) as b:
            ws = await b.ws()
            res = await call(ws, "auth.authenticate", {"challenge": challenge()})
            assert res["result"]["algorithm"] == "SM2SM3"
            notes = [r.retry_note for k, r in prompter.calls if k == "pin"]
            assert notes == [
                None,
                "密码错误，还可以尝试 5 次 (wrong PIN: 5 tries left)",
                "密码错误，还可以尝试 4 次 (wrong PIN: 4 tries left)",
            ]
            await ws.close()

    run(go())
