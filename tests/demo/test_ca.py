"""The demo CA (helper/demo/ca.py, ca_issue.py) on a real aiohttp server on loopback,
signing with the renewal tests' own CA pair (tests/renewal/spec.toml). The old
certificates and the PKCS#10 requests are made here with software keys, so what is
checked is the CA alone: orders, payment, the issuing rules and every refusal."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from helper.demo.ca import create_ca_app, demo_ca_files
from helper.demo.ca_issue import HEBCA_UNIQUE_ID, certificate_subject_der
from helper.domain.renewal import renewed_validity
from helper.verify import check_chain, signed_bytes, verify_auth_token
from tests.support.cli import Cli
from tests.support.renewal import RenewalPki

ORIGIN = "http://127.0.0.1:9020"
HELPER = "https://127.0.0.1:17213"
NOW = datetime(2026, 7, 14, 8, 30, 0, tzinfo=UTC)
UNIQUE_ID = "HB130900000000123"
SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "河北省"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "沧州市"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "沧州市演示CA测试有限公司"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "财务部"),
        x509.NameAttribute(NameOID.COMMON_NAME, "沧州市演示CA测试有限公司"),
    ]
)
CJK = re.compile(r"[\u4e00-\u9fff]")


def utf8_der(text: str) -> bytes:
    raw = text.encode("utf-8")
    return bytes([0x0C, len(raw)]) + raw


def new_key(kind: str) -> Any:
    return (
        rsa.generate_private_key(65537, 2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )


def make_cert(
    issuer: x509.Certificate,
    issuer_key: Any,
    key: Any,
    *,
    not_after: datetime,
    subject: x509.Name = SUBJECT,
    unique_id: bool = True,
) -> x509.Certificate:
    """An "old" certificate the way the fixture CA issues them."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - timedelta(days=365))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if unique_id:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(HEBCA_UNIQUE_ID, utf8_der(UNIQUE_ID)), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_csr(key: Any, subject: x509.Name = SUBJECT) -> bytes:
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(Encoding.DER)


def b64(data: bytes | x509.Certificate) -> str:
    if isinstance(data, x509.Certificate):
        data = data.public_bytes(Encoding.DER)
    return base64.b64encode(data).decode()


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ca_app(renewal_pki: RenewalPki, clock: Clock) -> web.Application:
    issuing = renewal_pki.issuing_cert()
    return create_ca_app(
        issuing,
        renewal_pki.issuing_key(),
        chain=[issuing],
        origin=ORIGIN,
        helper_base=HELPER,
        now=clock,
    )


def run(app: web.Application, scenario: Callable[[TestClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            await scenario(client)

    asyncio.run(main())


async def post(client: TestClient, path: str, body: Any, **kw: Any) -> tuple[int, dict]:
    resp = await client.post(path, json=body, **kw)
    return resp.status, await resp.json()


async def paid_order(client: TestClient, old: x509.Certificate) -> str:
    await client.get("/")
    status, order = await post(client, "/api/orders", {"certificate": b64(old)})
    assert status == 201, order
    status, paid = await post(client, f"/api/orders/{order['order_id']}/pay", {})
    assert status == 200 and paid["status"] == "paid"
    return order["order_id"]


def assert_refused(status: int, body: dict, code: str, http: int = 400) -> None:
    assert (status, body["error"]["code"]) == (http, code), body
    message = body["error"]["message"]
    # Chinese first, English beside
    assert CJK.search(message) and re.search(r"\([^)]*[A-Za-z]{3,}[^)]*\)", message), message


# --- issuing -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rsa", "ec"])
@pytest.mark.parametrize("same_key", [True, False], ids=["same-key", "new-key"])
def test_renewal_issues_a_certificate_by_the_rules(
    ca_app: web.Application,
    renewal_pki: RenewalPki,
    clock: Clock,
    kind: str,
    same_key: bool,
) -> None:
    issuing, root = renewal_pki.issuing_cert(), renewal_pki.root_pem.read_bytes()
    old_key = new_key(kind)
    old = make_cert(issuing, renewal_pki.issuing_key(), old_key, not_after=NOW + timedelta(days=5))
    key = old_key if same_key else new_key(kind)

    async def scenario(client: TestClient) -> None:
        page = await client.get("/")
        assert page.status == 200
        text = await page.text()
        assert "河北CA 数字证书在线服务（演示）" in text
        assert f'src="{HELPER}/v1/certhelper.js"' in text and 'src="/static/ca.js"' in text
        csp = page.headers["Content-Security-Policy"]
        assert f"script-src 'self' {HELPER}" in csp and "wss://127.0.0.1:17213" in csp

        status, inspected = await post(client, "/api/inspect", {"certificates": [b64(old)]})
        assert status == 200
        assert inspected == {"certificates": [{"sha256": sha(old), "ours": True}]}

        status, order = await post(client, "/api/orders", {"certificate": b64(old)})
        assert status == 201
        assert order["status"] == "unpaid" and order["amount"] == "100.00"
        assert re.fullmatch(r"YQ20260714\d{10}", order["order_id"])
        assert order["subject_cn"] == "沧州市演示CA测试有限公司"
        assert order["expected_not_after"] == "2027-07-19T08:30:00Z"  # old + 365 days
        oid = order["order_id"]

        status, body = await post(client, f"/api/orders/{oid}/csr", {"csr": b64(make_csr(key))})
        assert_refused(status, body, "order_unpaid")
        status, paid = await post(client, f"/api/orders/{oid}/pay", {})
        assert status == 200 and paid["status"] == "paid"

        status, issued = await post(client, f"/api/orders/{oid}/csr", {"csr": b64(make_csr(key))})
        assert status == 200, issued
        assert issued["chain"] == [b64(issuing)]
        new = x509.load_der_x509_certificate(base64.b64decode(issued["certificate"]))
        assert issued["order"]["status"] == "issued"
        assert issued["order"]["key"] == ("existing" if same_key else "new")
        assert issued["order"]["sha256"] == sha(new)

        check_issued(new, old, key, issuing, root)

        # the helper wrote it; a wrong thumbprint is refused first
        status, body = await post(client, f"/api/orders/{oid}/installed", {"installed": sha(old)})
        assert_refused(status, body, "certificate_mismatch")
        status, done = await post(
            client,
            f"/api/orders/{oid}/installed",
            {"installed": sha(new), "old_certificate": "archived"},
        )
        assert status == 200 and done["receipt"] == f"/orders/{oid}"
        assert done["order"]["status"] == "installed"

        receipt = await (await client.get(done["receipt"])).text()
        assert f'id="receipt-order">{oid}<' in receipt
        assert 'id="receipt-amount">100.00 元（演示，未实际扣款）<' in receipt
        serial = f"{new.serial_number:X}"
        serial = serial if len(serial) % 2 == 0 else "0" + serial  # whole bytes
        assert f'id="receipt-serial">{serial}<' in receipt
        assert 'data-iso="2027-07-19T08:30:00Z">2027年07月19日 16:30<' in receipt  # 北京时间
        assert 'id="receipt-subject">沧州市演示CA测试有限公司<' in receipt
        assert ("沿用原密钥" if same_key else "新密钥对") in receipt
        assert "办理完成" in receipt

        # a finished order issues nothing more
        status, body = await post(client, f"/api/orders/{oid}/csr", {"csr": b64(make_csr(key))})
        assert_refused(status, body, "order_done")

    run(ca_app, scenario)


def sha(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def check_issued(
    new: x509.Certificate, old: x509.Certificate, key: Any, issuing: x509.Certificate, root: bytes
) -> None:
    # chains to the renewal root (the project's own chain builder), signed SHA-256
    check_chain(new, [root], [issuing], now=NOW)
    new.verify_directly_issued_by(issuing)
    assert isinstance(new.signature_hash_algorithm, hashes.SHA256)
    # a token made with the key logs in against the renewal root (verify_auth_token)
    challenge = "c" * 43
    tbs = signed_bytes(ORIGIN, challenge)
    if isinstance(key, rsa.RSAPrivateKey):
        sig, alg = key.sign(tbs, padding.PKCS1v15(), hashes.SHA256()), "RS256"
    else:
        r, s = decode_dss_signature(key.sign(tbs, ec.ECDSA(hashes.SHA256())))
        sig, alg = r.to_bytes(32, "big") + s.to_bytes(32, "big"), "ES256"  # JWS r||s
    token = {
        "format": "certhelper-auth:1",
        "certificate": b64(new),
        "algorithm": alg,
        "signature": b64(sig),
        "origin": ORIGIN,
        "app_version": "0.1.0",
    }
    identity = verify_auth_token(token, challenge, ORIGIN, [root], NOW, intermediates=[issuing])
    assert identity.hebca_unique_id == UNIQUE_ID
    assert identity.subject_cn == "沧州市演示CA测试有限公司"

    # subject byte for byte, the request's key, a fresh random serial
    assert certificate_subject_der(new) == certificate_subject_der(old)
    assert new.public_key() == key.public_key()
    assert new.serial_number != old.serial_number and new.serial_number > 0
    # key usage, extended key usage and the HEBCA unique ID copied (criticality too)
    for oid in (
        x509.oid.ExtensionOID.KEY_USAGE,
        x509.oid.ExtensionOID.EXTENDED_KEY_USAGE,
        HEBCA_UNIQUE_ID,
    ):
        a, b = new.extensions.get_extension_for_oid(oid), old.extensions.get_extension_for_oid(oid)
        assert (a.value, a.critical) == (b.value, b.critical)
    ski = new.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    aki = new.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    issuing_ski = issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == issuing_ski.digest
    assert new.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    # valid from five minutes ago until a year after the old expiry
    assert new.not_valid_before_utc == NOW - timedelta(minutes=5)
    assert new.not_valid_after_utc == old.not_valid_after_utc + timedelta(days=365)


def test_an_expired_certificate_is_renewed_from_today(
    ca_app: web.Application,
    renewal_pki: RenewalPki,
) -> None:
    key = new_key("rsa")
    old = make_cert(
        renewal_pki.issuing_cert(),
        renewal_pki.issuing_key(),
        key,
        not_after=NOW - timedelta(days=10),
        unique_id=False,
    )

    async def scenario(client: TestClient) -> None:
        oid = await paid_order(client, old)
        status, issued = await post(client, f"/api/orders/{oid}/csr", {"csr": b64(make_csr(key))})
        assert status == 200, issued
        new = x509.load_der_x509_certificate(base64.b64decode(issued["certificate"]))
        assert new.not_valid_after_utc == NOW + timedelta(days=365)
        assert new.not_valid_before_utc == NOW - timedelta(minutes=5)
        with pytest.raises(x509.ExtensionNotFound):  # nothing to copy, nothing invented
            new.extensions.get_extension_for_oid(HEBCA_UNIQUE_ID)

    run(ca_app, scenario)


def test_validity_rule() -> None:
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    # expiring: a year from the old expiry, so no day of the paid year is lost
    assert renewed_validity(now + timedelta(days=5), now) == (
        now - timedelta(minutes=5),
        now + timedelta(days=370),
    )
    # already expired: a year from now
    assert renewed_validity(now - timedelta(days=40), now) == (
        now - timedelta(minutes=5),
        now + timedelta(days=365),
    )
    # expiring this very second
    assert renewed_validity(now, now)[1] == now + timedelta(days=365)


# --- refusals ----------------------------------------------------------------------


def test_bad_input_is_refused_with_400_and_nothing_breaks(
    ca_app: web.Application,
    renewal_pki: RenewalPki,
) -> None:
    issuing, issuing_key = renewal_pki.issuing_cert(), renewal_pki.issuing_key()
    key = new_key("rsa")
    old = make_cert(issuing, issuing_key, key, not_after=NOW + timedelta(days=5))
    # another CA with the very same name: only the signature tells them apart
    impostor_key = rsa.generate_private_key(65537, 2048)
    impostor = (
        x509.CertificateBuilder()
        .subject_name(issuing.subject)
        .issuer_name(issuing.subject)
        .public_key(impostor_key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=100))
        .sign(impostor_key, hashes.SHA256())
    )
    foreign = make_cert(impostor, impostor_key, key, not_after=NOW + timedelta(days=5))
    # the same subject text, but C as UTF8String instead of PrintableString
    respelled = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN", _type=x509.name._ASN1Type.UTF8String)
            if a.oid == NameOID.COUNTRY_NAME
            else a
            for a in SUBJECT
        ]
    )
    assert respelled.rfc4514_string() == SUBJECT.rfc4514_string()
    other_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "沧州市别家公司")])
    good_csr = make_csr(key)
    tampered = bytearray(good_csr)
    tampered[-1] ^= 0x01  # the last byte of the signature

    async def scenario(client: TestClient) -> None:
        # orders
        for body, code in (
            ({"certificate": "@@not base64@@"}, "bad_base64"),
            ({"certificate": ""}, "bad_request"),
            ({"certificate": 42}, "bad_request"),
            ({}, "bad_request"),
            ({"certificate": b64(b"not a certificate")}, "bad_certificate"),
            ({"certificate": b64(good_csr)}, "bad_certificate"),
            ({"certificate": b64(foreign)}, "not_our_certificate"),
        ):
            status, reply = await post(client, "/api/orders", body)
            assert_refused(status, reply, code)
        status, reply = await post(client, "/api/inspect", {"certificates": [b64(foreign)]})
        assert status == 200 and reply["certificates"][0]["ours"] is False
        status, reply = await post(client, "/api/inspect", {"certificates": ["%%%"]})
        assert_refused(status, reply, "bad_base64")
        status, reply = await post(client, "/api/inspect", {"certificates": "x"})
        assert_refused(status, reply, "bad_request")

        # not JSON, not an object, a foreign page
        resp = await client.post("/api/orders", data="certificate=x")
        assert_refused(resp.status, await resp.json(), "unsupported_media_type", 415)
        resp = await client.post(
            "/api/orders", data="{nope", headers={"Content-Type": "application/json"}
        )
        assert_refused(resp.status, await resp.json(), "bad_request")
        status, reply = await post(client, "/api/orders", ["list"])
        assert_refused(status, reply, "bad_request")
        status, reply = await post(
            client,
            "/api/orders",
            {"certificate": b64(old)},
            headers={"Origin": "http://evil.example"},
        )
        assert_refused(status, reply, "bad_origin", 403)

        # unknown orders
        status, reply = await post(client, "/api/orders/YQ00000000/pay", {})
        assert_refused(status, reply, "unknown_order")
        status, reply = await post(client, "/api/orders/YQ00000000/csr", {"csr": b64(good_csr)})
        assert_refused(status, reply, "unknown_order")
        resp = await client.get("/api/orders/YQ00000000")
        assert_refused(resp.status, await resp.json(), "unknown_order")
        resp = await client.get("/orders/YQ00000000")
        assert resp.status == 404 and "订单不存在" in await resp.text()

        # requests
        oid = await paid_order(client, old)
        csr_path = f"/api/orders/{oid}/csr"
        for body, code in (
            ({"csr": "!!"}, "bad_base64"),
            ({}, "bad_request"),
            ({"csr": b64(b"\x30\x03\x02\x01\x00")}, "bad_csr"),
            ({"csr": b64(old)}, "bad_csr"),  # a certificate is not a request
            ({"csr": b64(bytes(tampered))}, "bad_csr_signature"),
            ({"csr": b64(make_csr(key, other_subject))}, "subject_mismatch"),
            ({"csr": b64(make_csr(key, respelled))}, "subject_mismatch"),
            ({"csr": b64(make_csr(rsa.generate_private_key(65537, 1024)))}, "weak_key"),
        ):
            status, reply = await post(client, csr_path, body)
            assert_refused(status, reply, code)
        status, reply = await post(client, f"/api/orders/{oid}/installed", {"installed": "00"})
        assert_refused(status, reply, "not_issued")

        # another browser (no session cookie) cannot see or use the order
        async with aiohttp.ClientSession() as other:
            await other.get(client.make_url("/"))  # its own session
            resp = await other.post(client.make_url(csr_path), json={"csr": b64(good_csr)})
            assert_refused(resp.status, await resp.json(), "unknown_order")
            resp = await other.get(client.make_url(f"/orders/{oid}"))
            assert resp.status == 404

        # after all that, the same order still renews
        status, issued = await post(client, csr_path, {"csr": b64(good_csr)})
        assert status == 200, issued
        resp = await client.get(f"/orders/{oid}")
        assert resp.status == 200 and "新证书已签发，待写入 USB Key" in await resp.text()

    run(ca_app, scenario)


# --- the CLI -------------------------------------------------------------------------


def test_demo_ca_without_the_demo_token(cli: Cli, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="make demo"):
        demo_ca_files(tmp_path / "nothing")
    r = cli("demo-ca", "--port", "0")
    assert r.returncode == 2, r
    assert "演示 Key 尚未生成" in r.stderr and "the demo token has not been built" in r.stderr


def test_demo_ca_files_from_a_built_token(renewal_pki: RenewalPki) -> None:
    files = demo_ca_files(renewal_pki.dir)
    assert files.root == renewal_pki.root_pem
    assert files.key == renewal_pki.issuing_key_path
    cert, key = files.load()
    assert cert == renewal_pki.issuing_cert()
    assert key.public_key() == cert.public_key()


def test_orders_older_than_a_day_are_dropped(
    ca_app: web.Application,
    renewal_pki: RenewalPki,
    clock: Clock,
) -> None:
    key = new_key("ec")
    old = make_cert(
        renewal_pki.issuing_cert(),
        renewal_pki.issuing_key(),
        key,
        not_after=NOW + timedelta(days=5),
    )

    async def scenario(client: TestClient) -> None:
        first = await paid_order(client, old)
        clock.now = NOW + timedelta(hours=23)
        second = await paid_order(client, old)
        resp = await client.get(f"/api/orders/{first}")
        assert resp.status == 200  # 23 hours: still there
        clock.now = NOW + timedelta(days=1, hours=1)
        await paid_order(client, old)
        resp = await client.get(f"/api/orders/{first}")
        assert_refused(resp.status, await resp.json(), "unknown_order")
        resp = await client.get(f"/api/orders/{second}")
        assert resp.status == 200

    run(ca_app, scenario)
