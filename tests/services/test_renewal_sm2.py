"""renewal.status / renewal.request / renewal.install for an SM2 certificate on the soft
SKF key, over the real bridge (WSS framing over loopback) with the scripted prompter as
the person: the request is SM2-with-SM3 (checked with gmalg and ``openssl req -verify``
with the GM/T 0009 ID), the demo CA's SM2 issuer renews it, the install writes it with one
SKF_ImportCertificate, and the renewed certificate signs (gmalg and OpenSSL). A key pulled
out while the person confirms, or a certificate that does not chain, leaves the key exactly
as it was."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import csr as asn1_csr
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509

from drivers.skf.driver import SkfDriver, key_id
from helper.demo.ca_sm2 import Sm2Issuer, issue_sm2_renewal
from helper.domain.renewal import RenewalWindow
from helper.services.prompts import ConsentChoice, ConsentRequest
from helper.services.renewal import RenewalSettings
from tests.support.bridge import HALL, Bridge, call, running_bridge
from tests.support.doubles import ScriptedPrompter
from tests.support.skf import GmKeys
from tests.support.sm2 import (
    gmalg_verifies,
    openssl_verifies,
    spki_of,
    verified_both_ways,
)
from tests.support.tokens import Fixtures

CA = "https://www.hebca.com"
EXPIRING_CN = "沧州市即将到期测试有限公司"  # gm_expiring: SM2, expires in 5 days
OLD = "即将到期"


def sync(fn):  # type: ignore[no-untyped-def]
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def der_of(path: str | Path) -> bytes:
    _, _, der = pem.unarmor(Path(path).read_bytes())
    return der


def issuer_of(gm: GmKeys) -> Sm2Issuer:
    issuing = Path(gm.section["ca"]["issuing"])
    return Sm2Issuer.load(issuing, issuing.with_suffix(".key"))


# --- the bridge -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def ca_bridge(
    driver: SkfDriver,
    fx: Fixtures,
    state: Path,
    gm: GmKeys,
    prompter: ScriptedPrompter | None = None,
) -> AsyncIterator[Bridge]:
    settings = RenewalSettings.build([CA], [gm.section["ca"]["root"]])
    async with running_bridge(
        driver, fx, state, prompter, origins=[HALL, CA], renewal=settings
    ) as b:
        yield b


async def on_ca(b: Bridge, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    ws = await b.ws(CA)
    try:
        return await call(ws, method, params or {})
    finally:
        await ws.close()


async def status_of(b: Bridge, cn: str) -> dict[str, Any]:
    r = await on_ca(b, "renewal.status")
    assert "result" in r, r
    return next(c for c in r["result"]["certificates"] if c["subject_cn"] == cn)


def check_request(csr: bytes, old_der: bytes, tmp: Path) -> bytes:
    """The request's SPKI, after checking it independently: SM2-with-SM3 by that key
    (gmalg, ``openssl dgst`` and ``openssl req -verify`` with the ID) and the old subject
    byte for byte."""
    req = asn1_csr.CertificationRequest.load(csr)
    info = req["certification_request_info"]
    assert req["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    assert info["subject"].dump() == asn1_x509.Certificate.load(old_der).subject.dump()
    spki = info["subject_pk_info"].dump()
    tbs, signature = info.dump(), bytes(req["signature"])
    assert gmalg_verifies(spki, tbs, signature) and openssl_verifies(spki, tbs, signature)
    (tmp / "req.der").write_bytes(csr)
    done = subprocess.run(
        ["openssl", "req", "-inform", "DER", "-in", str(tmp / "req.der"), "-noout",
         "-verify", "-vfyopt", "distid:1234567812345678"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "verify OK" in done.stdout + done.stderr, done.stderr
    return spki


def snapshot(drv: SkfDriver, serial: str) -> list[tuple[Any, ...]]:
    contents = drv.read_objects(serial)
    certs = sorted(("cert", c.key_id, c.label, c.value) for c in contents.certificates)
    keys = sorted(("key", k.key_id, k.key_type) for k in contents.private_keys)
    return [*certs, *keys]


async def request_and_issue(
    b: Bridge, gm: GmKeys, tmp: Path, *, new_key: bool
) -> tuple[bytes, bytes, dict[str, Any]]:
    """status → request → the CA issues: (old DER, new DER, request result)."""
    info = await status_of(b, EXPIRING_CN)
    assert info["key_type"] == "SM2" and info["in_window"] is True
    old = base64.b64decode(info["der"])
    r = await on_ca(b, "renewal.request", {"certificate": info["sha256"], "new_key": new_key})
    assert "result" in r, r
    assert r["result"]["key"] == ("new" if new_key else "existing")
    csr = base64.b64decode(r["result"]["csr"])
    spki = check_request(csr, old, tmp)
    assert (spki == spki_of(old)) is not new_key
    issued = issue_sm2_renewal(old, csr, issuer_of(gm), datetime.now(UTC))
    assert issued.same_key is not new_key
    return old, issued.der, r["result"]


# --- tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("new_key", [False, True], ids=["same-key", "new-key"])
@sync
async def test_sm2_renewal_then_the_renewed_certificate_signs(
    skf_driver: SkfDriver,
    gm_keys: GmKeys,
    fixtures: Fixtures,
    state: Path,
    tmp_path: Path,
    new_key: bool,
) -> None:
    serial = gm_keys.serial("gm1")
    keys_before = {k.key_id for k in skf_driver.read_objects(serial).private_keys}
    prompter = ScriptedPrompter()
    async with ca_bridge(skf_driver, fixtures, state, gm_keys, prompter) as b:
        renewed: list[tuple[str, str]] = []
        assert b.renewal is not None
        b.renewal.on_renewed = lambda old, new: renewed.append((old, new))
        old, new_der, _ = await request_and_issue(b, gm_keys, tmp_path, new_key=new_key)
        chain = [b64(issuer_of(gm_keys).der)]
        r = await on_ca(b, "renewal.install", {"certificate": b64(new_der), "chain": chain})
        assert "result" in r, r
        new_sha = hashlib.sha256(new_der).hexdigest()
        assert r["result"]["installed"] == new_sha
        assert r["result"]["replaced"] == hashlib.sha256(old).hexdigest()
        assert r["result"]["old_certificate"] == ("archived" if new_key else "removed")
        assert renewed == [(hashlib.sha256(old).hexdigest(), new_sha)]

        # what the person saw: confirm the request, the PIN, confirm the write (which
        # says what becomes of the old certificate); the login held for the write
        kinds = [(k, getattr(req, "operation", None)) for k, req in prompter.calls]
        assert kinds == [
            ("consent", "renewal.request"),
            ("pin", "renewal.request"),
            ("consent", "renewal.install"),
        ]
        asked = dict(prompter.calls[0][1].details)["将要进行 (What happens)"]
        assert ("新建容器" in asked) is new_key
        shown = dict(prompter.calls[2][1].details)["原证书 (Old certificate)"]
        assert ("归档" if new_key else "替换") in shown

        # the hall is offered the renewed certificate only, and it signs
        ws = await b.ws(HALL)
        listed = (await call(ws, "certificates.list"))["result"]["certificates"]
        mine = [c for c in listed if c["subject"]["cn"] == EXPIRING_CN]
        assert [c["sha256"] for c in mine] == [new_sha]
        data = "续期后签名：2026年12月".encode()
        params = {"data": b64(data), "format": "raw", "certificate": new_sha}
        res = (await call(ws, "sign.data", params, rid=2))["result"]
        await ws.close()
        assert res["algorithm"] == "SM2SM3"
        assert base64.b64decode(res["certificate"]) == new_der
        assert verified_both_ways(new_der, data, base64.b64decode(res["signature"]))

    contents = skf_driver.read_objects(serial)
    by_value = {c.value: c for c in contents.certificates}
    assert new_der in by_value
    if new_key:
        assert by_value[old].label.startswith("archived-") and by_value[old].key_id == key_id(
            OLD, sign=True
        )
        assert by_value[new_der].key_id != key_id(OLD, sign=True)
    else:
        assert old not in by_value and by_value[new_der].key_id == key_id(OLD, sign=True)
    keys_after = {k.key_id for k in contents.private_keys}
    assert keys_before <= keys_after  # no key deleted
    assert len(keys_after) == len(keys_before) + (1 if new_key else 0)


class PullingPrompter(ScriptedPrompter):
    """Confirms the install and pulls the key out at that moment, before the write."""

    def __init__(self, gm: GmKeys) -> None:
        super().__init__()
        self.gm = gm
        self.aside: Path | None = None

    async def ask_consent(self, request: ConsentRequest) -> ConsentChoice:
        choice = await super().ask_consent(request)
        if request.operation == "renewal.install" and self.aside is None:
            self.aside = self.gm.pull_out("gm1")
        return choice


@pytest.mark.parametrize("new_key", [False, True], ids=["same-key", "new-key"])
@sync
async def test_key_pulled_out_during_install_leaves_it_as_it_was(
    skf_driver: SkfDriver,
    gm_keys: GmKeys,
    fixtures: Fixtures,
    state: Path,
    tmp_path: Path,
    new_key: bool,
) -> None:
    serial = gm_keys.serial("gm1")
    prompter = PullingPrompter(gm_keys)
    async with ca_bridge(skf_driver, fixtures, state, gm_keys, prompter) as b:
        old, new_der, _ = await request_and_issue(b, gm_keys, tmp_path, new_key=new_key)
        before = snapshot(skf_driver, serial)
        chain = [b64(issuer_of(gm_keys).der)]
        r = await on_ca(b, "renewal.install", {"certificate": b64(new_der), "chain": chain})
        assert r["error"]["code"] == "token_absent", r
        assert prompter.aside is not None
        gm_keys.plug_in(prompter.aside, "gm1")
        assert snapshot(skf_driver, serial) == before
        info = await status_of(b, EXPIRING_CN)  # the old certificate is still the current one
        assert base64.b64decode(info["der"]) == old

        # re-inserted, the install goes through (a new PIN: the pull ended the login)
        r = await on_ca(b, "renewal.install", {"certificate": b64(new_der), "chain": chain})
        assert "result" in r, r
        assert prompter.kinds()[-2:] == ["consent", "pin"]
    assert new_der in [c.value for c in skf_driver.read_objects(serial).certificates]


@sync
async def test_a_certificate_that_does_not_verify_is_not_written(
    skf_driver: SkfDriver,
    gm_keys: GmKeys,
    fixtures: Fixtures,
    state: Path,
    tmp_path: Path,
) -> None:
    serial = gm_keys.serial("gm1")
    prompter = ScriptedPrompter()
    async with ca_bridge(skf_driver, fixtures, state, gm_keys, prompter) as b:
        _old, new_der, _ = await request_and_issue(b, gm_keys, tmp_path, new_key=False)
        before = snapshot(skf_driver, serial)
        cert = asn1_x509.Certificate.load(new_der)
        signature = bytearray(bytes(cert["signature_value"]))
        signature[-3] ^= 0x01  # inside s: still DER, no longer the CA's signature
        forged = asn1_x509.Certificate(
            {
                "tbs_certificate": cert["tbs_certificate"].copy(),
                "signature_algorithm": cert["signature_algorithm"].copy(),
                "signature_value": bytes(signature),
            }
        ).dump()
        chain = [b64(issuer_of(gm_keys).der)]
        r = await on_ca(b, "renewal.install", {"certificate": b64(forged), "chain": chain})
        assert r["error"]["code"] == "renewal_untrusted", r
        assert snapshot(skf_driver, serial) == before
        assert [k for k, _ in prompter.calls].count("consent") == 1  # the request's only


@sync
async def test_sm2_request_through_a_vendor_pkcs11_module(
    p11sm2_driver: Any, p11sm2: Any, fixtures: Fixtures, state: Path, tmp_path: Path
) -> None:
    """An SM2 key behind a vendor PKCS#11 mechanism (softp11sm2): the existing key signs
    an SM2 request; a new key is refused before any dialog (no SM2 key generation there)."""
    old = p11sm2.cert_der
    settings = RenewalSettings.build([CA], window=RenewalWindow(before_days=400))
    prompter = ScriptedPrompter()
    async with running_bridge(
        p11sm2_driver, fixtures, state, prompter, origins=[HALL, CA], renewal=settings
    ) as b:
        sha = hashlib.sha256(old).hexdigest()
        r = await on_ca(b, "renewal.request", {"certificate": sha, "new_key": True})
        assert r["error"]["code"] == "mechanism_unsupported", r
        assert prompter.calls == []
        r = await on_ca(b, "renewal.request", {"certificate": sha, "new_key": False})
        assert "result" in r, r
        spki = check_request(base64.b64decode(r["result"]["csr"]), old, tmp_path)
        assert spki == spki_of(old)
        assert prompter.kinds() == ["consent", "pin"]
