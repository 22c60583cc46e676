"""The demo CA renews SM2 certificates (helper/demo/ca_sm2.py) on a real aiohttp server on
loopback, with the SM2 issuing CA of the session's fixture build. The old certificates are
the soft SKF key's; the requests are signed by a gmalg software key (new key) or on the
soft key (same key). Every issued signature is checked with OpenSSL 3 (``dgst -sm3
-sigopt distid:…`` over the TBS) and gmalg, not with the CA's own code."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gmalg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from asn1crypto import algos, keys, pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from drivers.skf.driver import SkfDriver, key_id
from drivers.types import Pin, SignAlgorithm
from helper.csr import build_csr, subject_der
from helper.demo.ca import create_ca_app, demo_ca_files
from helper.demo.ca_sm2 import Sm2Issuer
from helper.domain.renewal import renewed_validity
from tests.support.renewal import RenewalPki
from tests.support.skf import GmKeys
from tests.support.sm2 import gmalg_verifies, openssl_verifies, spki_of
from tests.support.tokens import USER_PIN, Fixtures

ORIGIN = "http://127.0.0.1:9020"
HELPER = "https://127.0.0.1:17213"
NOW = datetime(2026, 12, 6, 8, 30, 0, tzinfo=UTC)


def der_of(path: str | Path) -> bytes:
    _, _, der = pem.unarmor(Path(path).read_bytes())
    return der


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class SoftSm2:
    """An SM2 key pair in software (gmalg), for requests with a new key."""

    def __init__(self, uid: bytes = b"1234567812345678") -> None:
        d, self.point = gmalg.SM2(pc_mode=gmalg.PC_MODE.RAW).generate_keypair()
        self.d, self.uid = d, uid
        if len(self.point) == 64:
            self.point = b"\x04" + self.point

    @property
    def spki(self) -> bytes:
        return keys.PublicKeyInfo(
            {
                "algorithm": {"algorithm": "ec", "parameters": ("named", "1.2.156.10197.1.301")},
                "public_key": self.point,
            }
        ).dump()

    def sign(self, message: bytes) -> bytes:
        r, s = gmalg.SM2(sk=self.d, uid=self.uid, pk=self.point).sign(message)
        return algos.DSASignature(
            {"r": int.from_bytes(r, "big"), "s": int.from_bytes(s, "big")}
        ).dump()


def soft_csr(old_der: bytes, key: SoftSm2, subject: bytes | None = None) -> bytes:
    return build_csr(
        subject or subject_der(old_der), key.spki, key.sign, algorithm=SignAlgorithm.SM2_SM3
    )


@pytest.fixture
def sm2_issuer(gm_keys: GmKeys) -> Sm2Issuer:
    issuing = Path(gm_keys.section["ca"]["issuing"])
    return Sm2Issuer.load(issuing, issuing.with_suffix(".key"))


@pytest.fixture
def ca_app(renewal_pki: RenewalPki, sm2_issuer: Sm2Issuer) -> web.Application:
    issuing = renewal_pki.issuing_cert()
    return create_ca_app(
        issuing,
        renewal_pki.issuing_key(),
        chain=[issuing],
        origin=ORIGIN,
        helper_base=HELPER,
        now=lambda: NOW,
        sm2=sm2_issuer,
    )


def run(app: web.Application, scenario: Callable[[TestClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            await scenario(client)

    asyncio.run(main())


async def post(client: TestClient, path: str, body: Any) -> tuple[int, dict]:
    resp = await client.post(path, json=body)
    return resp.status, await resp.json()


async def paid_order(client: TestClient, old: bytes) -> str:
    await client.get("/")
    status, order = await post(client, "/api/orders", {"certificate": b64(old)})
    assert status == 201, order
    status, paid = await post(client, f"/api/orders/{order['order_id']}/pay", {})
    assert status == 200 and paid["status"] == "paid"
    return str(order["order_id"])


def cert_on_key(drv: SkfDriver, serial: str, container: str) -> bytes:
    kid = key_id(container, sign=True)
    return next(c.value for c in drv.read_objects(serial).certificates if c.key_id == kid)


@pytest.mark.parametrize("same_key", [True, False], ids=["same-key", "new-key"])
def test_sm2_renewal_issues_an_sm2_certificate(
    ca_app: web.Application,
    sm2_issuer: Sm2Issuer,
    skf_driver: SkfDriver,
    gm_keys: GmKeys,
    same_key: bool,
) -> None:
    serial = gm_keys.serial("gm1")
    container = "沧州市测试科技有限公司"  # gm_company_sign: carries the HEBCA unique ID
    old = cert_on_key(skf_driver, serial, container)
    if same_key:
        skf_driver.login(serial, Pin(USER_PIN))
        kid = key_id(container, sign=True)
        spki = spki_of(old)
        csr = build_csr(
            subject_der(old),
            spki,
            lambda tbs: skf_driver.sign(serial, kid, tbs, SignAlgorithm.SM2_SM3),
            algorithm=SignAlgorithm.SM2_SM3,
        )
    else:
        key = SoftSm2()
        spki, csr = key.spki, soft_csr(old, key)

    async def scenario(client: TestClient) -> None:
        status, inspected = await post(client, "/api/inspect", {"certificates": [b64(old)]})
        assert status == 200
        assert inspected["certificates"] == [
            {"sha256": hashlib.sha256(old).hexdigest(), "ours": True}
        ]
        oid = await paid_order(client, old)
        status, issued = await post(client, f"/api/orders/{oid}/csr", {"csr": b64(csr)})
        assert status == 200, issued
        assert issued["chain"] == [b64(sm2_issuer.der)]  # the SM2 issuing CA, not the RSA one
        assert issued["order"]["key"] == ("existing" if same_key else "new")
        new = base64.b64decode(issued["certificate"])
        check_sm2_issued(new, old, spki, sm2_issuer)
        status, done = await post(
            client,
            f"/api/orders/{oid}/installed",
            {"installed": hashlib.sha256(new).hexdigest(), "old_certificate": "archived"},
        )
        assert status == 200 and done["order"]["status"] == "installed"

    run(ca_app, scenario)


def check_sm2_issued(new_der: bytes, old_der: bytes, spki: bytes, issuer: Sm2Issuer) -> None:
    new, old = asn1_x509.Certificate.load(new_der), asn1_x509.Certificate.load(old_der)
    assert new["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    assert new["tbs_certificate"]["signature"]["algorithm"].dotted == "1.2.156.10197.1.501"
    tbs, signature = new["tbs_certificate"].dump(), bytes(new["signature_value"])
    issuing_spki = spki_of(issuer.der)
    assert openssl_verifies(issuing_spki, tbs, signature)
    assert gmalg_verifies(issuing_spki, tbs, signature)
    assert not gmalg_verifies(issuing_spki, tbs + b"x", signature)
    # OpenSSL reads it as an SM2 certificate of the request's key
    assert new.public_key.dump() == spki
    assert new.subject.dump() == old.subject.dump()  # byte for byte
    assert new.issuer.dump() == asn1_x509.Certificate.load(issuer.der).subject.dump()
    assert new.serial_number != old.serial_number
    not_before, not_after = renewed_validity(old.not_valid_after, NOW)
    assert (new.not_valid_before, new.not_valid_after) == (not_before, not_after)
    assert new.not_valid_after == old.not_valid_after + timedelta(days=365)

    def ext(cert: asn1_x509.Certificate, name: str) -> Any:
        found = [
            e
            for e in cert["tbs_certificate"]["extensions"]
            if name in (e["extn_id"].native, e["extn_id"].dotted)
        ]
        return (found[0]["critical"].native, found[0]["extn_value"].dump()) if found else None

    for name in ("key_usage", "extended_key_usage", "1.2.156.112586.1.4"):
        assert ext(new, name) is not None and ext(new, name) == ext(old, name)
    assert new.key_identifier == hashlib.sha1(new.public_key["public_key"].native).digest()
    assert new.authority_key_identifier == asn1_x509.Certificate.load(issuer.der).key_identifier
    assert new.basic_constraints_value["ca"].native is False
    # cryptography loads it (the helper's install path parses it so)
    assert x509.load_der_x509_certificate(new_der).serial_number == new.serial_number


def test_sm2_requests_that_do_not_prove_the_key_are_refused(
    ca_app: web.Application, skf_driver: SkfDriver, gm_keys: GmKeys
) -> None:
    old = cert_on_key(skf_driver, gm_keys.serial("gm1"), "即将到期")
    wrong_id = soft_csr(old, SoftSm2(uid=b"not the GM/T 0009 ID"))
    other_subject = asn1_x509.Name.build({"common_name": "别的公司"}).dump()
    subject = soft_csr(old, SoftSm2(), subject=other_subject)
    rsa_key = rsa.generate_private_key(65537, 2048)
    rsa_csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.load_der_x509_certificate(old).subject)
        .sign(rsa_key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )
    # an SM2 certificate this CA did not sign: its signature altered
    cert = asn1_x509.Certificate.load(old)
    sig = bytearray(bytes(cert["signature_value"]))
    sig[-3] ^= 1
    foreign = asn1_x509.Certificate(
        {
            "tbs_certificate": cert["tbs_certificate"].copy(),
            "signature_algorithm": cert["signature_algorithm"].copy(),
            "signature_value": bytes(sig),
        }
    ).dump()

    async def scenario(client: TestClient) -> None:
        oid = await paid_order(client, old)
        for csr, code in (
            (wrong_id, "bad_csr_signature"),
            (subject, "subject_mismatch"),
            (rsa_csr, "unsupported_key"),
            (b"\x30\x03abc", "bad_csr"),
        ):
            status, body = await post(client, f"/api/orders/{oid}/csr", {"csr": b64(csr)})
            assert (status, body["error"]["code"]) == (400, code), body
            assert "(" in body["error"]["message"]
        status, body = await post(client, "/api/inspect", {"certificates": [b64(foreign)]})
        assert body["certificates"][0]["ours"] is False
        status, body = await post(client, "/api/orders", {"certificate": b64(foreign)})
        assert (status, body["error"]["code"]) == (400, "not_our_certificate")

    run(ca_app, scenario)


def test_without_an_sm2_issuer_sm2_certificates_are_not_ours(
    renewal_pki: RenewalPki, skf_driver: SkfDriver, gm_keys: GmKeys
) -> None:
    issuing = renewal_pki.issuing_cert()
    app = create_ca_app(
        issuing, renewal_pki.issuing_key(), chain=[issuing], origin=ORIGIN, helper_base=HELPER
    )
    old = cert_on_key(skf_driver, gm_keys.serial("gm1"), "即将到期")

    async def scenario(client: TestClient) -> None:
        await client.get("/")
        status, body = await post(client, "/api/inspect", {"certificates": [b64(old)]})
        assert status == 200 and body["certificates"][0]["ours"] is False
        status, body = await post(client, "/api/orders", {"certificate": b64(old)})
        assert (status, body["error"]["code"]) == (400, "not_our_certificate")

    run(app, scenario)


def test_demo_ca_files_find_the_sm2_ca(fixtures: Fixtures) -> None:
    files = demo_ca_files(fixtures.dir)
    ca = fixtures.manifest["skf"]["ca"]
    assert files.sm2_root == Path(ca["root"]) and files.sm2_issuing == Path(ca["issuing"])
    assert files.roots == [files.root, files.sm2_root]
    issuer = files.load_sm2()
    assert issuer is not None and issuer.der == der_of(ca["issuing"])
    # the key is the certificate's: what it signs verifies with the certificate's key
    message = b"demo CA SM2 key check"
    assert gmalg_verifies(spki_of(issuer.der), message, issuer.sign(message))
    assert str(issuer.d) not in repr(issuer)
