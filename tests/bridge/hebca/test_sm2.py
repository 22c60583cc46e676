"""The HEBCA endpoint with an SM2 key on the soft SKF library (docs/hebca-compat.md,
"SM2"): SM2 certificates are selectable, SignText/SignB64 make SM3-with-SM2
signatures as DER SEQUENCE{r, s}, P7SignB64 attached SM2 CMS, Digest answers SM3.
Every signature is checked with gmalg and OpenSSL 3 (distid), not the helper's code."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import gmalg
from asn1crypto import cms

from tests.support.doubles import ScriptedPrompter
from tests.support.hebca import b64, call, idx, js, ok, running_hebca
from tests.support.sm2 import verified_both_ways
from tests.support.tokens import USER_PIN


def run(coro):
    return asyncio.run(coro)


def _sm3(data: bytes) -> bytes:
    h = gmalg.SM3()
    h.update(data)
    return h.value()


async def select(ws, sha256: str) -> bytes:
    """GetSignCert the certificate with this SHA-256; its DER."""
    count = (await ok(ws, "GetCertList"))["certlist"].count(";") + 1
    for i in range(count):
        await ok(ws, "GetSignCert", idx(i))
        der = base64.b64decode((await ok(ws, "GetCertB64"))["cert"])
        if hashlib.sha256(der).hexdigest() == sha256:
            return der
    raise AssertionError(f"{sha256} is not a sign certificate of the endpoint")


def test_sm2_certificates_are_sign_and_crypt_certificates(
    skf_driver, gm_keys, fixtures, state
) -> None:
    async def go() -> None:
        async with running_hebca(skf_driver, fixtures, state) as h:
            ws = await h.ws()
            certs = (await ok(ws, "GetCertList"))["certlist"].split(";")
            shas = {hashlib.sha256(base64.b64decode(c)).hexdigest() for c in certs}
            assert gm_keys.cert("gm_company_sign")["sha256"] in shas
            assert gm_keys.cert("gm2_sign")["sha256"] in shas
            assert gm_keys.cert("gm_company_enc")["sha256"] not in shas  # 加密: never signs
            await ws.close()

    run(go())


def test_sm2_sign_text_sign_b64_and_p7(skf_driver, gm_keys, fixtures, state) -> None:
    cert = gm_keys.cert("gm_company_sign")
    text = "登录挑战 challenge-0f3a ✓"
    blob = "补缴申请 2026-12 金额 300.00 元".encode()

    async def go() -> None:
        prompter = ScriptedPrompter()
        async with running_hebca(skf_driver, fixtures, state, prompter) as h:
            ws = await h.ws()
            der = await select(ws, cert["sha256"])
            await ok(ws, "Login", js(pin=USER_PIN))
            sig = base64.b64decode((await ok(ws, "SignText", js(signText=text)))["signature"])
            assert sig[0] == 0x30  # DER SEQUENCE{r, s}, not r ‖ s
            assert verified_both_ways(der, text.encode("utf-8"), sig)
            assert not verified_both_ways(der, text.encode("utf-8") + b"x", sig)
            sig = base64.b64decode((await ok(ws, "SignB64", js(b64data=b64(blob))))["signature"])
            assert verified_both_ways(der, blob, sig)
            p7 = base64.b64decode((await ok(ws, "P7SignB64", js(b64data=b64(blob))))["b64data"])
            info = cms.ContentInfo.load(p7)
            signed = info["content"]
            assert signed["encap_content_info"]["content"].native == blob  # attached
            si = signed["signer_infos"][0]
            assert si["digest_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.401"
            assert si["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
            attrs = {a["type"].native: a["values"][0].native for a in si["signed_attrs"]}
            assert attrs["message_digest"] == _sm3(blob)
            tbs = si["signed_attrs"].untag().dump()
            assert verified_both_ways(der, tbs, si["signature"].native)
            # P7VerifyB64 reads its own SM2 CMS
            assert (await ok(ws, "P7VerifyB64", js(b64data=b64(p7))))["result"] is True
            # the login's signature was free; SignB64 and P7SignB64 were each confirmed
            assert [k for k, _ in prompter.calls] == ["consent", "consent"]
            await ws.close()

    run(go())


def test_digest_sm3(skf_driver, gm_keys, fixtures, state) -> None:
    cert = gm_keys.cert("gm2_sign")
    data = "汇缴清册".encode()

    async def go() -> None:
        async with running_hebca(skf_driver, fixtures, state) as h:
            ws = await h.ws()
            forced = await ok(
                ws, "Digest", js(certSN=cert["serial_hex"], b64data=b64(data), digestalg="sha1")
            )
            assert forced["digestalg"] == "sm3"  # an SM2 certificate's serial forces SM3
            assert base64.b64decode(forced["digest"]) == _sm3(data)
            asked = await ok(ws, "Digest", js(certSN="00", b64data=b64(data), digestalg="SM3"))
            assert asked["digestalg"] == "sm3" and base64.b64decode(asked["digest"]) == _sm3(data)
            bad = await call(ws, "Digest", js(certSN="00", b64data=b64(data), digestalg="md4"))
            assert bad["ret"] != 0
            await ws.close()

    run(go())
