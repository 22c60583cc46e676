"""Certificate enumeration, selection and contents, Digest, and the host
functions that are answered (docs/hebca-compat.md, "Certificates", "Host functions")."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from helper.errors import UserCancelled
from tests.support.doubles import ScriptedPrompter
from tests.support.hebca import (
    COMPANY,
    CRYPT_CERTS,
    FAILED,
    HALL,
    HEBCA_UID,
    KEY1,
    KEY2,
    NO_CERT,
    REFUSED,
    SIGN_CERTS,
    TRADE,
    b64,
    call,
    cst,
    der_of,
    idx,
    js,
    ok,
    running_hebca,
    sign_order,
)
from tests.support.tokens import USER_PIN


def run(coro):
    return asyncio.run(coro)


def sha(cert_b64: str) -> str:
    return hashlib.sha256(base64.b64decode(cert_b64)).hexdigest()


def spki(der: bytes) -> bytes:
    return (
        x509.load_der_x509_certificate(der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _pick(cn: str):
    return lambda choices: next(c.id for c in choices if c.subject_cn == cn)


def _cancel(_choices):
    raise UserCancelled()


# --- counts and order -------------------------------------------------------------------


def test_counts_and_documented_order(driver, fixtures, state) -> None:
    # the order the doc prescribes, worked out from the fixtures, is the one the tests assume
    assert sign_order(fixtures) == SIGN_CERTS

    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            res = await ok(ws, "GetCertCount")
            assert res["count"] == len(SIGN_CERTS) + len(CRYPT_CERTS) == 5
            assert isinstance(res["count"], int)
            res = await ok(ws, "GetSignCertCount")
            assert res["count"] == 4 and isinstance(res["count"], int)
            await ws.close()
            assert h.prompter.calls == []  # a configured hall enumerates without a dialog
            ops = [(e["operation"], e["outcome"], e["origin"]) for e in h.hebca_audit()]
            assert ops == [
                ("hebca:GetCertCount", "ok", HALL),
                ("hebca:GetSignCertCount", "ok", HALL),
            ]

    run(go())


def test_nothing_selected_yet(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            assert (await call(ws, "GetCertB64"))["ret"] == NO_CERT
            assert (await call(ws, "GetSubjectItem", '{"index":0}'))["ret"] == NO_CERT
            assert (await call(ws, "SignText", js(signText="x")))["ret"] == NO_CERT
            assert h.prompter.calls == []
            await ws.close()

    run(go())


# --- GetSignCert, GetCertB64, GetSubjectItem ---------------------------------------------


def _subject_items(name: str, cn: str) -> dict[int, str]:
    uid = HEBCA_UID if name == "company_sign" else ""
    return {
        0: cn,
        1: cn,  # every fixture's O equals its CN
        2: "财务部",
        3: "沧州市",
        4: "河北省",
        5: "CN",
        6: "",
        7: uid,
        8: "",
        9: "",
        10: uid,
    }


_NAMES = {
    "CN": 0,
    "O": 1,
    "OU": 2,
    "L": 3,
    "ST": 4,
    "C": 5,
    "E": 6,
    "G": 7,
    "SN": 8,
    "SERIALNUMBER": 8,
    "T": 9,
    "UID": 10,
}


def test_get_sign_cert_each_index_with_subject_items(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            for index, name in enumerate(SIGN_CERTS):
                entry = fixtures.cert(name)
                res = await ok(ws, "GetSignCert", idx(index))
                cert = (await ok(ws, "GetCertB64"))["cert"]
                assert sha(cert) == entry["sha256"], (index, name)
                assert base64.b64decode(cert) == der_of(driver, fixtures, name)
                items = _subject_items(name, entry["subject_cn"])
                for i, want in items.items():
                    res = await ok(ws, "GetSubjectItem", idx(i))
                    assert res["content"] == want, (name, i, res)
                for item, i in _NAMES.items():  # the client inserts a name unquoted
                    res = await ok(ws, "GetSubjectItem", idx(item))
                    assert res["content"] == items[i], (name, item, res)
            assert h.prompter.calls == []
            await ws.close()

    run(go())


@pytest.mark.parametrize("index", ["4", "5", "100", "-1"])
def test_index_out_of_range(driver, fixtures, state, index) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            await ok(ws, "GetSignCert", '{"index":2}')
            assert (await call(ws, "GetSignCert", idx(index)))["ret"] == NO_CERT
            assert (await call(ws, "GetSignCertNotAfter", idx(index)))["ret"] == NO_CERT
            # the selection is unchanged
            cert = (await ok(ws, "GetCertB64"))["cert"]
            assert sha(cert) == fixtures.cert("expiring")["sha256"]
            await ws.close()

    run(go())


# --- GetCertList, IsCertOnline, GetSignCertNotAfter -----------------------------------------


def test_get_cert_list(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            res = await ok(ws, "GetCertList")
            certs = res["certlist"].split(";")
            serials = res["certsnlist"].split(";")
            assert [sha(c) for c in certs] == [fixtures.cert(n)["sha256"] for n in SIGN_CERTS]
            assert serials == [fixtures.cert(n)["serial_hex"] for n in SIGN_CERTS]
            for s in serials:
                assert s == s.upper() and len(s) % 2 == 0 and int(s, 16) > 0
            # the client uses the position in certsnlist as the GetSignCert index
            for index, s in enumerate(serials):
                await ok(ws, "GetSignCert", idx(index))
                cert = x509.load_der_x509_certificate(
                    base64.b64decode((await ok(ws, "GetCertB64"))["cert"])
                )
                assert int(s, 16) == cert.serial_number
            await ws.close()

    run(go())


def test_is_cert_online(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            for cn in (COMPANY, TRADE, fixtures.cert("expiring")["subject_cn"]):
                res = await ok(ws, "IsCertOnline", js(cn=cn))
                assert res["result"] == 1 and not isinstance(res["result"], bool), cn
            assert (await ok(ws, "IsCertOnline", js(cn=fixtures.cert("expired")["subject_cn"])))[
                "result"
            ] == 1
            for cn in ("不存在的公司", "沧州市测试科技", COMPANY + " ", ""):
                assert (await ok(ws, "IsCertOnline", js(cn=cn)))["result"] == 0, cn
            await ws.close()

    run(go())


def test_get_sign_cert_not_after(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            await ok(ws, "GetSignCert", '{"index":1}')
            for index, name in enumerate(SIGN_CERTS):
                res = await ok(ws, "GetSignCertNotAfter", idx(index))
                assert res["certnotafter"] == cst(fixtures.cert(name)["not_after"]), name
            # it does not change the selection
            assert sha((await ok(ws, "GetCertB64"))["cert"]) == fixtures.cert("trade_ec")["sha256"]
            await ws.close()

    run(go())


# --- the picker ------------------------------------------------------------------------------


def test_select_sign_cert_shows_the_picker(driver, fixtures, state) -> None:
    async def go() -> None:
        prompter = ScriptedPrompter(pick=_pick(TRADE))
        async with running_hebca(driver, fixtures, state, prompter) as h:
            ws = await h.ws()
            await ok(ws, "SelectSignCert")
            assert prompter.kinds() == ["pick"]
            choices = prompter.calls[0][1]
            assert sorted(c.serial_hex for c in choices) == sorted(
                fixtures.cert(n)["serial_hex"] for n in SIGN_CERTS
            )
            assert sha((await ok(ws, "GetCertB64"))["cert"]) == fixtures.cert("trade_ec")["sha256"]
            # the chosen one is also the sign certificate
            res = await ok(ws, "GetPubKeyData", '{"signflag":true}')
            assert base64.b64decode(res["pubkey"]) == spki(der_of(driver, fixtures, "trade_ec"))
            # cancelled: an error, and the selection stays
            prompter.pick = _cancel
            assert (await call(ws, "SelectSignCert"))["ret"] == FAILED
            assert sha((await ok(ws, "GetCertB64"))["cert"]) == fixtures.cert("trade_ec")["sha256"]
            await ws.close()

    run(go())


def test_select_sign_cert_after_a_login_still_asks(driver, fixtures, state) -> None:
    """Several certificates fit, so the picker opens, even while the origin
    is logged in to one of them: the person may want another."""

    async def go() -> None:
        prompter = ScriptedPrompter(pick=_pick(TRADE))
        async with running_hebca(driver, fixtures, state, prompter) as h:
            ws = await h.ws()
            await ok(ws, "GetSignCert", idx(0))
            await ok(ws, "Login", js(pin=USER_PIN))
            await ok(ws, "SelectSignCert")
            assert prompter.kinds() == ["pick"]
            assert sha((await ok(ws, "GetCertB64"))["cert"]) == fixtures.cert("trade_ec")["sha256"]
            await ws.close()

    run(go())


def test_select_crypt_cert_without_a_dialog(driver, fixtures, state) -> None:
    async def go() -> None:
        prompter = ScriptedPrompter(pick=_pick(COMPANY))
        async with running_hebca(driver, fixtures, state, prompter) as h:
            ws = await h.ws()
            await ok(ws, "SelectSignCert")
            assert prompter.kinds() == ["pick"]
            await ok(ws, "SelectCryptCert")
            assert prompter.kinds() == ["pick"]  # exactly one crypt certificate: no dialog
            cert = (await ok(ws, "GetCertB64"))["cert"]
            assert sha(cert) == fixtures.cert("company_enc")["sha256"]
            enc = spki(der_of(driver, fixtures, "company_enc"))
            sign = spki(der_of(driver, fixtures, "company_sign"))
            assert enc != sign
            res = await ok(ws, "GetPubKeyData", '{"signflag":false}')
            assert base64.b64decode(res["pubkey"]) == enc
            res = await ok(ws, "GetPubKeyData", '{"signflag":true}')  # the sign cert stayed
            assert base64.b64decode(res["pubkey"]) == sign
            await ws.close()

    run(go())


def test_select_sign_cert_filter_device(driver, fixtures, state) -> None:
    async def go() -> None:
        prompter = ScriptedPrompter(pick=_pick(COMPANY))
        async with running_hebca(driver, fixtures, state, prompter) as h:
            ws = await h.ws()
            await ok(ws, "SelectSignCertFilterDevice", js(deviceNames=KEY2 + ";"))
            assert prompter.kinds() == ["pick"]
            choices = prompter.calls[0][1]
            assert sorted(c.serial_hex for c in choices) == sorted(
                fixtures.cert(n)["serial_hex"] for n in ("company_sign", "trade_ec")
            )
            assert {c.token_label for c in choices} == {KEY1}
            cert = (await ok(ws, "GetCertB64"))["cert"]
            assert sha(cert) == fixtures.cert("company_sign")["sha256"]
            # empty names are skipped; Key1 excluded leaves Key2's two
            prompter.pick = _pick(fixtures.cert("expired")["subject_cn"])
            await ok(ws, "SelectSignCertFilterDevice", js(deviceNames=";" + KEY1 + ";;"))
            choices = prompter.calls[1][1]
            assert {c.token_label for c in choices} == {KEY2} and len(choices) == 2
            cert = (await ok(ws, "GetCertB64"))["cert"]
            assert sha(cert) == fixtures.cert("expired")["sha256"]
            # both excluded: nothing fits, no dialog, selection unchanged
            res = await call(ws, "SelectSignCertFilterDevice", js(deviceNames=f"{KEY1};{KEY2}"))
            assert res["ret"] == NO_CERT
            assert prompter.kinds() == ["pick", "pick"]
            assert sha((await ok(ws, "GetCertB64"))["cert"]) == fixtures.cert("expired")["sha256"]
            await ws.close()

    run(go())


def test_get_pub_key_data_ec(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            assert (await call(ws, "GetPubKeyData", '{"signflag":true}'))["ret"] == NO_CERT
            assert (await call(ws, "GetPubKeyData", '{"signflag":false}'))["ret"] == NO_CERT
            await ok(ws, "GetSignCert", '{"index":1}')
            res = await ok(ws, "GetPubKeyData", '{"signflag":true}')
            assert base64.b64decode(res["pubkey"]) == spki(der_of(driver, fixtures, "trade_ec"))
            await ws.close()

    run(go())


# --- Digest ----------------------------------------------------------------------------------


def test_digest(driver, fixtures, state) -> None:
    data = "汇缴 2026-11 金额 12,345.00".encode()

    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            for name in ("company_sign", "trade_ec", "expired"):  # a sign cert: sha1 forced
                sn = fixtures.cert(name)["serial_hex"]
                for alg in ("sha256", "sm3", "sha1"):
                    res = await ok(ws, "Digest", js(certSN=sn, b64data=b64(data), digestalg=alg))
                    assert res["digestalg"] == "sha1", (name, alg, res)
                    assert res["digest"] == b64(hashlib.sha1(data).digest())
            unknown = "00FF"
            res = await ok(ws, "Digest", js(certSN=unknown, b64data=b64(data), digestalg="sha256"))
            assert res["digestalg"] == "sha256"
            assert res["digest"] == b64(hashlib.sha256(data).digest())
            res = await ok(ws, "Digest", js(certSN=unknown, b64data=b64(data), digestalg="sha1"))
            assert res["digestalg"] == "sha1"
            assert res["digest"] == b64(hashlib.sha1(data).digest())
            res = await ok(ws, "Digest", js(certSN=unknown, b64data=b64(data), digestalg="sm3"))
            assert res["digestalg"] == "sm3"  # the SM3 value itself: tests/bridge/hebca/test_sm2.py
            assert len(base64.b64decode(res["digest"])) == 32
            # the crypt certificate is not a sign certificate: the page's algorithm stands
            sn = fixtures.cert("company_enc")["serial_hex"]
            res = await ok(ws, "Digest", js(certSN=sn, b64data=b64(data), digestalg="sha256"))
            assert res["digestalg"] == "sha256"
            assert h.prompter.calls == []
            await ws.close()

    run(go())


# --- host functions ----------------------------------------------------------------------------

VERSION_KEY = "\\HKEY_CURRENT_USER\\Software\\Hebca\\ClientX"


@pytest.mark.parametrize(("version", "number"), [(None, 458752), ("6.3.5", 393989)])
def test_read_reg_version(driver, fixtures, state, version, number) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state, assistor_version=version) as h:
            ws = await h.ws()
            res = await ok(ws, "ReadRegB64", js(key=b64(VERSION_KEY), name=b64("version")))
            assert res["value"] == number
            assert isinstance(res["value"], int) and not isinstance(res["value"], bool)
            await ws.close()

    run(go())


def test_read_reg_version_is_case_insensitive_like_the_registry(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            for key, name in ((VERSION_KEY, "Version"), (VERSION_KEY.lower(), "VERSION")):
                res = await call(ws, "ReadRegB64", js(key=b64(key), name=b64(name)))
                assert res["ret"] == 0 and res["value"] == 458752
            await ws.close()

    run(go())


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("HKEY_CURRENT_USERSoftwareHebcaClientX", "p11ObjectDebug"),  # the client's debug probe
        (VERSION_KEY, "p11ObjectDebug"),
        (VERSION_KEY, "installpath"),
        ("\\HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run", "x"),
        ("\\HKEY_LOCAL_MACHINE\\Software\\Hebca\\ClientX", "version"),
    ],
)
def test_read_reg_anything_else_refused(driver, fixtures, state, key, name) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            res = await call(ws, "ReadRegB64", js(key=b64(key), name=b64(name)))
            assert res["ret"] == REFUSED and "value" not in res
            assert h.hebca_audit()[-1]["operation"] == "hebca:ReadRegB64"
            assert h.hebca_audit()[-1]["outcome"] != "ok"
            await ws.close()

    run(go())


def test_reload_device_and_delete_from_cert_store(driver, fixtures, state) -> None:
    async def go() -> None:
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            await ok(ws, "GetSignCert", '{"index":0}')
            assert (await ok(ws, "ReloadDevice"))["ret"] == 0
            assert (await ok(ws, "GetCertCount"))["count"] == 5
            assert (await ok(ws, "DeleteFromCertStore"))["ret"] == 0
            assert (await ok(ws, "GetSignCertCount"))["count"] == 4
            assert (
                sha((await ok(ws, "GetCertB64"))["cert"]) == fixtures.cert("company_sign")["sha256"]
            )
            assert h.prompter.calls == []
            await ws.close()

    run(go())
