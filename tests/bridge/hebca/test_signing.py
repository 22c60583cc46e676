"""Signing over the HEBCA protocol: SignText, SignB64, P7SignB64/P7VerifyB64,
the per-origin encoding and hash, the consent rule (the login's own signature
is free, every later one is shown) and UnUISign (docs/hebca-compat.md, "Signing")."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import subprocess
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from helper.bridge.hebca.settings import HebcaOriginOptions
from helper.services.prompts import ConsentChoice
from tests.support.doubles import ScriptedPrompter
from tests.support.hebca import (
    COMPANY,
    FAILED,
    HALL,
    OTHER,
    REFUSED,
    TRADE,
    b64,
    call,
    idx,
    js,
    ok,
    running_hebca,
)
from tests.support.tokens import USER_PIN


def run(coro):
    return asyncio.run(coro)


def load(cert_b64: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(base64.b64decode(cert_b64))


def verify(cert_b64: str, sig_b64: str, data: bytes, hash_alg=None) -> None:
    """RSA PKCS#1 v1.5 (SHA-256 unless told) or DER ECDSA with SHA-256."""
    key = load(cert_b64).public_key()
    sig = base64.b64decode(sig_b64)
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(sig, data, padding.PKCS1v15(), hash_alg or hashes.SHA256())
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(sig, data, ec.ECDSA(hash_alg or hashes.SHA256()))


async def login(ws, index: int = 0) -> str:
    """GetSignCert index, Login with the page's PIN; the certificate (GetCertB64)."""
    await ok(ws, "GetSignCert", idx(index))
    await ok(ws, "Login", js(pin=USER_PIN))
    return (await ok(ws, "GetCertB64"))["cert"]


def consents(prompter: ScriptedPrompter) -> list:
    return [r for k, r in prompter.calls if k == "consent"]


# --- SignText, SignB64 -------------------------------------------------------------------


@pytest.mark.parametrize(("index", "cn"), [(0, COMPANY), (1, TRADE)])
def test_sign_text(driver, fixtures, state, index, cn) -> None:
    text = "登录挑战 challenge-1234 ✓"

    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            cert = await login(ws, index)
            assert cn in load(cert).subject.rfc4514_string()
            res = await ok(ws, "SignText", js(signText=text))
            verify(cert, res["signature"], text.encode("utf-8"))
            if index == 1:  # DER-encoded ECDSA, not r||s
                assert base64.b64decode(res["signature"])[0] == 0x30
            assert h.prompter.calls == []  # the login's own signature: no dialog
            entry = h.hebca_audit()[-1]
            assert entry["operation"] == "hebca:SignText" and entry["outcome"] == "ok"
            assert (
                entry["certificate"] == fixtures.cert(["company_sign", "trade_ec"][index])["sha256"]
            )
            await ws.close()

    run(go())


def test_sign_text_gbk_and_sha1_for_a_legacy_origin(driver, fixtures, state) -> None:
    text = "河北省沧州市 测试 GBK"

    async def go() -> None:
        options = {
            HALL: HebcaOriginOptions(page_pin=True),
            OTHER: HebcaOriginOptions(page_pin=True, text_encoding="gbk", rsa_hash="sha1"),
        }
        async with running_hebca(
            driver, fixtures, state, origins=[HALL, OTHER], hebca_origins=options
        ) as h:
            ws = await h.ws(OTHER)
            cert = await login(ws, 0)
            res = await ok(ws, "SignText", js(signText=text))
            verify(cert, res["signature"], text.encode("gbk"), hashes.SHA1())
            with pytest.raises(InvalidSignature):
                verify(cert, res["signature"], text.encode("utf-8"), hashes.SHA1())
            # SignB64 uses the origin's hash too
            data = b"\x00\x01binary\xff"
            res = await ok(ws, "SignB64", js(b64data=b64(data)))
            verify(cert, res["signature"], data, hashes.SHA1())
            # the hall keeps UTF-8 and SHA-256
            ws2 = await h.ws(HALL)
            cert2 = await login(ws2, 0)
            res = await ok(ws2, "SignText", js(signText=text))
            verify(cert2, res["signature"], text.encode("utf-8"))
            await ws.close()
            await ws2.close()

    run(go())


def test_sign_b64(driver, fixtures, state) -> None:
    data = bytes(range(256)) * 3

    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            cert = await login(ws, 0)
            res = await ok(ws, "SignB64", js(b64data=b64(data)))
            verify(cert, res["signature"], data)
            # EC
            cert = await login(ws, 1)
            res = await ok(ws, "SignB64", js(b64data=b64(data)))
            verify(cert, res["signature"], data)
            await ws.close()

    run(go())


def test_sign_without_login_asks_the_pin_first(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            await ok(ws, "GetSignCert", '{"index":0}')
            cert = (await ok(ws, "GetCertB64"))["cert"]
            res = await ok(ws, "SignText", js(signText="challenge"))
            verify(cert, res["signature"], b"challenge")
            assert h.prompter.kinds() == ["pin"]  # the login's own signature: no consent
            assert (await ok(ws, "IsCertLogined", js(cn=COMPANY)))["result"] is True
            await ws.close()

    run(go())


# --- the consent rule ----------------------------------------------------------------------


def test_every_later_signature_shows_the_consent_dialog(driver, fixtures, state) -> None:
    text2 = "汇缴 2026-11 金额 12,345.00 元"
    data = "单位编号 1301".encode()

    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            cert = await login(ws, 0)
            await ok(ws, "SignText", js(signText="challenge"))
            assert consents(h.prompter) == []
            res = await ok(ws, "SignText", js(signText=text2))
            verify(cert, res["signature"], text2.encode())
            (c,) = consents(h.prompter)
            assert c.text == text2 and c.origin == HALL
            assert c.cert_subject == COMPANY
            res = await ok(ws, "SignB64", js(b64data=b64(data)))
            verify(cert, res["signature"], data)
            c = consents(h.prompter)[-1]
            assert c.data_size == len(data) and c.data_sha256 == hashlib.sha256(data).hexdigest()
            res = await ok(ws, "P7SignB64", js(b64data=b64(data)))
            c = consents(h.prompter)[-1]
            assert c.data_size == len(data) and c.data_sha256 == hashlib.sha256(data).hexdigest()
            assert len(consents(h.prompter)) == 3
            assert h.prompter.kinds().count("pin") == 0
            # a new login: its first signature is free again
            await ok(ws, "Logout")
            await login(ws, 0)
            await ok(ws, "SignText", js(signText="challenge-2"))
            assert len(consents(h.prompter)) == 3
            await ok(ws, "SignText", js(signText="again"))
            assert len(consents(h.prompter)) == 4
            await ws.close()

    run(go())


@pytest.mark.parametrize("func", ["SignText", "SignB64", "P7SignB64"])
def test_denied_consent_signs_nothing(driver, fixtures, state, func) -> None:
    async def go() -> None:
        prompter = ScriptedPrompter(consents=[ConsentChoice.DENY])
        async with running_hebca(driver, fixtures, state, prompter) as h:
            ws = await h.ws()
            await login(ws, 0)
            await ok(ws, "SignText", js(signText="challenge"))
            param = js(signText="转账 1000000 元") if func == "SignText" else js(b64data=b64("x"))
            res = await call(ws, func, param)
            assert res["ret"] != 0
            assert res["ret"] == FAILED
            assert "signature" not in res and "b64data" not in res
            assert prompter.kinds() == ["consent"]
            entry = h.hebca_audit()[-1]
            assert entry["operation"] == f"hebca:{func}" and entry["outcome"] != "ok"
            await ws.close()

    run(go())


# --- P7SignB64, P7VerifyB64 ---------------------------------------------------------------------


def _openssl_verify(tmp: Path, blob: bytes, chain: Path) -> subprocess.CompletedProcess:
    p7, out = tmp / "s.p7s", tmp / "out.bin"
    p7.write_bytes(blob)
    return subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(p7),
            "-CAfile",
            str(chain),
            "-purpose",
            "any",
            "-out",
            str(out),
        ],
        capture_output=True,
    )


@pytest.mark.parametrize("index", [0, 1])
def test_p7_sign_attached_and_verify(driver, fixtures, state, tmp_path, index) -> None:
    data = "P7 签名内容 content-0123456789".encode()

    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            cert = await login(ws, index)
            res = await ok(ws, "P7SignB64", js(b64data=b64(data)))
            blob = base64.b64decode(res["b64data"])
            info = cms.ContentInfo.load(blob)
            assert info["content_type"].native == "signed_data"
            signed = info["content"]
            assert signed["encap_content_info"]["content"].native == data  # attached
            (signer,) = signed["signer_infos"]
            assert signer["signed_attrs"].native  # with signed attributes
            certs = [c.chosen.dump() for c in signed["certificates"]]
            assert base64.b64decode(cert) in certs  # and the signer certificate
            proc = _openssl_verify(tmp_path, blob, fixtures.ca_chain)
            assert proc.returncode == 0, proc.stderr
            assert (tmp_path / "out.bin").read_bytes() == data
            res = await ok(ws, "P7VerifyB64", js(b64data=b64(blob)))
            assert res["result"] is True
            # tampered content
            bad = blob.replace(data, data.replace(b"0123", b"9999"))
            assert bad != blob
            res = await call(ws, "P7VerifyB64", js(b64data=b64(bad)))
            assert res["ret"] != 0 or res["result"] is False, res
            assert _openssl_verify(tmp_path, bad, fixtures.ca_chain).returncode != 0
            # garbage
            res = await call(ws, "P7VerifyB64", js(b64data=b64(b"not a pkcs7")))
            assert res["ret"] != 0 or res["result"] is False, res
            await ws.close()

    run(go())


# --- UnUISign ----------------------------------------------------------------------------


def test_un_ui_sign_refused_by_default(driver, fixtures, state) -> None:
    sn = fixtures.cert("company_sign")["serial_hex"]

    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            param = js(certSN=sn, b64data=b64("silent"))
            assert (await call(ws, "UnUISign", param))["ret"] == REFUSED
            await login(ws, 0)
            res = await call(ws, "UnUISign", param)
            assert res["ret"] == REFUSED and "signature" not in res
            assert h.prompter.calls == []
            entry = h.hebca_audit()[-1]
            assert entry["operation"] == "hebca:UnUISign" and entry["outcome"] != "ok"
            await ws.close()

    run(go())


def test_un_ui_sign_with_silent_sign_after_a_login(driver, fixtures, state) -> None:
    sn = fixtures.cert("company_sign")["serial_hex"]
    data = b"silent payload"

    async def go() -> None:
        options = {HALL: HebcaOriginOptions(page_pin=True, silent_sign=True)}
        async with running_hebca(driver, fixtures, state, hebca_origins=options) as h:
            ws = await h.ws()
            param = js(certSN=sn, b64data=b64(data))
            # not before this connection has logged in
            assert (await call(ws, "UnUISign", param))["ret"] == REFUSED
            cert = await login(ws, 0)
            for _ in range(3):  # no dialog, not even for later signatures
                res = await ok(ws, "UnUISign", param)
                verify(cert, res["signature"], data)
            assert h.prompter.calls == []
            # another connection of the same origin has not logged in
            ws2 = await h.ws()
            assert (await call(ws2, "UnUISign", param))["ret"] == REFUSED
            await ws2.close()
            assert h.prompter.calls == []
            await ws.close()

    run(go())
