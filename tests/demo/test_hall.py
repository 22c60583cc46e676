"""The demo hall's login API and pages (helper/demo/hall/), with login tokens signed
by the real SoftHSM key of the session fixtures (no bridge, no browser)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from drivers.types import Pin, SignAlgorithm
from helper.demo.hall import create_hall_app, split_ca_certificates
from tests.support.tokens import USER_PIN, Fixtures

ORIGIN = "http://127.0.0.1:9010"
COMPANY = "沧州市测试科技有限公司"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Signer:
    """Makes login tokens as the helper would, with the company_sign key on SoftHSM."""

    def __init__(self, driver: Any, fixtures: Fixtures) -> None:
        c = fixtures.cert("company_sign")
        self.driver = driver
        self.serial = c["token_serial"]
        self.key_id = bytes.fromhex(c["key_id"])
        self.sha256 = c["sha256"]
        self.serial_hex = c["serial_hex"]
        contents = driver.read_objects(self.serial)
        self.der = next(o.value for o in contents.certificates if o.key_id == self.key_id)

    def token(self, challenge: str, origin: str = ORIGIN, *, claimed: str | None = None) -> dict:
        tbs = (
            hashlib.sha256(origin.encode("utf-8")).digest()
            + hashlib.sha256(challenge.encode("ascii")).digest()
        )
        self.driver.login(self.serial, Pin(USER_PIN))
        try:
            sig = self.driver.sign(self.serial, self.key_id, tbs, SignAlgorithm.RSA_PKCS1_SHA256)
        finally:
            self.driver.logout(self.serial)
        return {
            "format": "certhelper-auth:1",
            "certificate": base64.b64encode(self.der).decode(),
            "algorithm": "RS256",
            "signature": base64.b64encode(sig).decode(),
            "origin": claimed or origin,
            "app_version": "0.1.0",
        }


@pytest.fixture(scope="module")
def signer(driver: Any, fixtures: Fixtures) -> Signer:
    return Signer(driver, fixtures)


@pytest.fixture(scope="module")
def anchors(fixtures: Fixtures) -> tuple[list[bytes], list[bytes]]:
    ca = fixtures.manifest["ca"]
    return [Path(ca["root"]).read_bytes()], [Path(ca["issuing"]).read_bytes()]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hall(anchors: tuple[list[bytes], list[bytes]], clock: Clock) -> web.Application:
    roots, issuing = anchors
    return create_hall_app(roots, origin=ORIGIN, now=clock, intermediates=issuing)


def run(app: web.Application, scenario: Callable[[TestClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with TestClient(TestServer(app)) as client:
            await scenario(client)

    asyncio.run(main())


async def challenge_of(client: TestClient) -> str:
    resp = await client.get("/ish/api/challenge")
    assert resp.status == 200
    return (await resp.json())["challenge"]


async def post_token(client: TestClient, token: Any, **kw: Any) -> tuple[int, dict]:
    resp = await client.post("/ish/api/login", json={"token": token}, **kw)
    return resp.status, await resp.json()


def test_challenge_is_random_single_use_and_cookie_bound(
    hall: web.Application, signer: Signer
) -> None:
    async def scenario(client: TestClient) -> None:
        resp = await client.get("/ish/api/challenge")
        body = await resp.json()
        assert resp.headers["Cache-Control"] == "no-store"
        cookie = resp.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/ish/" in cookie
        first = body["challenge"]
        assert body["expires_in"] == 300
        assert len(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))) == 32
        assert "=" not in first and "+" not in first and "/" not in first
        second = await challenge_of(client)
        assert second != first
        # the newest challenge replaces the older one: a token for the old one fails
        status, err = await post_token(client, await asyncio.to_thread(signer.token, first))
        assert status == 401 and err["error"]["code"] == "verify_bad_signature"
        # ... and that failed attempt consumed the challenge: no second try with it
        status, err = await post_token(client, await asyncio.to_thread(signer.token, second))
        assert status == 400 and err["error"]["code"] == "challenge_used"
        assert "已使用过" in err["error"]["message"]

    run(hall, scenario)


def test_login_with_a_valid_token_opens_home(
    hall: web.Application, signer: Signer, clock: Clock
) -> None:
    async def scenario(client: TestClient) -> None:
        resp = await client.get("/ish/api/challenge")
        before = resp.cookies["ISH_SESSION"].value
        token = await asyncio.to_thread(signer.token, (await resp.json())["challenge"])
        resp = await client.post("/ish/api/login", json={"token": token})
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body == {"ok": True, "company": COMPANY, "redirect": "/ish/home"}
        assert resp.cookies["ISH_SESSION"].value != before  # a new session id on login

        resp = await client.get("/ish/home")
        assert resp.status == 200
        page = await resp.text()
        assert COMPANY in page
        assert "HB130900000000001" in page  # 证书唯一标识
        assert signer.serial_hex in page
        not_after = x509.load_der_x509_certificate(signer.der).not_valid_after_utc
        assert (not_after + timedelta(hours=8)).strftime("%Y年%m月%d日") in page
        for name in ("公积金查询", "员工信息查询", "归集业务", "我要缴存", "退出"):
            assert name in page
        for slug in ("gjjcx", "ygxx", "gjyw", "wyjc"):
            resp = await client.get(f"/ish/{slug}")
            assert resp.status == 200
            text = await resp.text()
            assert "演示数据" in text and "<table" in text
        # 缴至年月 on the home page is the newest 已到账 month of 公积金查询
        paid = re.search(r'id="paid-until">(\d{4}) 年 (\d{1,2}) 月<', page)
        listing = await (await client.get("/ish/gjjcx")).text()
        newest = re.search(r"<td>(\d{4})-(\d{2})</td>", listing)
        assert (
            paid
            and newest
            and (int(paid[1]), int(paid[2]))
            == (
                int(newest[1]),
                int(newest[2]),
            )
        )
        # the login page sends a logged-in user home
        resp = await client.get("/ish/", allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/ish/home"

        resp = await client.post("/ish/logout", allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "/ish/"
        resp = await client.get("/ish/home", allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/ish/"

    run(hall, scenario)


def test_replayed_token_is_refused(hall: web.Application, signer: Signer) -> None:
    async def scenario(client: TestClient) -> None:
        token = await asyncio.to_thread(signer.token, await challenge_of(client))
        assert (await post_token(client, token))[0] == 200
        # same browser session: the challenge is gone with the login
        status, err = await post_token(client, token)
        assert status == 400 and err["error"]["code"] == "no_challenge"
        assert "重新登录" in err["error"]["message"]
        # another session (a stolen token): its own challenge does not match
        client.session.cookie_jar.clear()
        await challenge_of(client)
        status, err = await post_token(client, token)
        assert status == 401 and err["error"]["code"] == "verify_bad_signature"
        assert err["error"]["message"].startswith("证书登录失败：")
        assert (await client.get("/ish/home", allow_redirects=False)).status == 302

    run(hall, scenario)


def test_token_for_another_origin_is_refused(hall: web.Application, signer: Signer) -> None:
    async def scenario(client: TestClient) -> None:
        evil = "http://111.62.46.105.evil.example:9010"
        token = await asyncio.to_thread(signer.token, await challenge_of(client), evil)
        status, err = await post_token(client, token)
        assert status == 403 and err["error"]["code"] == "wrong_origin"
        assert err["error"]["message"] == "登录凭证不是为本网站生成的，已拒绝"
        # signed for another origin, relabelled with ours: the signature gives it away
        token = await asyncio.to_thread(
            signer.token, await challenge_of(client), evil, claimed=ORIGIN
        )
        status, err = await post_token(client, token)
        assert status == 401 and err["error"]["code"] == "verify_bad_signature"
        # a request sent by another site's page
        token = await asyncio.to_thread(signer.token, await challenge_of(client))
        status, err = await post_token(client, token, headers={"Origin": "http://evil.example"})
        assert status == 403 and err["error"]["code"] == "bad_origin"

    run(hall, scenario)


def test_expired_challenge_is_refused(hall: web.Application, signer: Signer, clock: Clock) -> None:
    async def scenario(client: TestClient) -> None:
        token = await asyncio.to_thread(signer.token, await challenge_of(client))
        clock.advance(5 * 60 + 1)
        status, err = await post_token(client, token)
        assert status == 400 and err["error"]["code"] == "challenge_expired"
        assert "过期" in err["error"]["message"]
        # just inside the lifetime is fine
        token = await asyncio.to_thread(signer.token, await challenge_of(client))
        clock.advance(5 * 60 - 1)
        assert (await post_token(client, token))[0] == 200

    run(hall, scenario)


def test_login_takes_json_only(hall: web.Application, signer: Signer) -> None:
    async def scenario(client: TestClient) -> None:
        token = await asyncio.to_thread(signer.token, await challenge_of(client))
        form = await client.post("/ish/api/login", data={"token": "x"})
        plain = await client.post(
            "/ish/api/login", data=b'{"token": {}}', headers={"Content-Type": "text/plain"}
        )
        for resp in (form, plain):
            assert resp.status == 415
            assert (await resp.json())["error"]["message"].startswith("请求格式错误")
        bad = await client.post(
            "/ish/api/login", data=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert bad.status == 400
        # none of that consumed the challenge
        assert (await post_token(client, token))[0] == 200

    run(hall, scenario)


def test_pages_need_a_login(hall: web.Application) -> None:
    async def scenario(client: TestClient) -> None:
        for path in ("/ish/home", "/ish/gjjcx", "/ish/ygxx", "/ish/gjyw", "/ish/wyjc"):
            resp = await client.get(path, allow_redirects=False)
            assert resp.status == 302 and resp.headers["Location"] == "/ish/", path
        status, err = await post_token(client, {"origin": ORIGIN})
        assert status == 400 and err["error"]["code"] == "no_challenge"
        resp = await client.get("/ish/")
        page = await resp.text()
        assert resp.status == 200
        for text in ("沧州市住房公积金管理中心", "网上业务大厅", "CA 证书登录", "河北 CA"):
            assert text in page
        # the hall's own copy of certhelper.js (it loads even when the helper is down),
        # told where the helper listens
        assert 'src="/ish/certhelper.js"' in page
        assert '<meta name="certhelper" data-port="17213" data-legacy-port="17212">' in page
        js = await client.get("/ish/certhelper.js")
        assert js.status == 200 and "function diagnose(" in await js.text()
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self' https://127.0.0.1:17213" in csp
        assert "wss://127.0.0.1:17213" in csp
        assert "http://127.0.0.1:17212" in csp  # the plain /v1/alive probe

    run(hall, scenario)


def test_untrusted_ca_is_refused(
    anchors: tuple[list[bytes], list[bytes]], signer: Signer, clock: Clock
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "别的 CA")])
    other = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(clock.now - timedelta(days=1))
        .not_valid_after(clock.now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = other.public_bytes(serialization.Encoding.PEM)
    app = create_hall_app([pem], origin=ORIGIN, now=clock, intermediates=anchors[1])

    async def scenario(client: TestClient) -> None:
        token = await asyncio.to_thread(signer.token, await challenge_of(client))
        status, err = await post_token(client, token)
        assert status == 401 and err["error"]["code"] == "verify_untrusted_chain"
        assert "受信任" in err["error"]["message"]

    run(app, scenario)


def test_ca_files_split_into_anchors_and_intermediates(fixtures: Fixtures) -> None:
    ca = fixtures.manifest["ca"]
    root, issuing = Path(ca["root"]).read_bytes(), Path(ca["issuing"]).read_bytes()
    anchors, inter = split_ca_certificates([Path(ca["chain"]).read_bytes()])
    assert len(anchors) == 1 and len(inter) == 1
    assert anchors[0] == x509.load_pem_x509_certificate(root).public_bytes(
        serialization.Encoding.DER
    )
    only_issuing, none = split_ca_certificates([issuing])
    assert len(only_issuing) == 1 and none == []
    with pytest.raises(ValueError):
        create_hall_app([], origin=ORIGIN)
    with pytest.raises(ValueError):
        create_hall_app([root], origin=ORIGIN, helper_base="http://127.0.0.1:17213")


# --- the legacy login (HEBCA-compatible endpoint: SignText over the challenge) ----------


class LegacySigner:
    """Signs like the HEBCA endpoint's SignText: the challenge text as UTF-8, RSA PKCS#1
    v1.5 SHA-256 (ECDSA SHA-256, DER, for EC keys), with a fixture key on SoftHSM."""

    def __init__(self, driver: Any, fixtures: Fixtures, name: str) -> None:
        c = fixtures.cert(name)
        self.driver = driver
        self.serial = c["token_serial"]
        self.key_id = bytes.fromhex(c["key_id"])
        self.serial_hex = c["serial_hex"]
        self.algorithm = (
            SignAlgorithm.ECDSA_SHA256 if c["key_type"] == "EC" else SignAlgorithm.RSA_PKCS1_SHA256
        )
        contents = driver.read_objects(self.serial)
        self.der = next(o.value for o in contents.certificates if o.key_id == self.key_id)

    def sign(self, text: str) -> bytes:
        self.driver.login(self.serial, Pin(USER_PIN))
        try:
            return self.driver.sign(self.serial, self.key_id, text.encode(), self.algorithm)
        finally:
            self.driver.logout(self.serial)

    def body(self, challenge: str, *, text: str | None = None, send_challenge: bool = True) -> dict:
        sig = self.sign(challenge if text is None else text)
        out = {
            "cert": base64.b64encode(self.der).decode(),
            "signature": base64.b64encode(sig).decode(),
        }
        if send_challenge:
            out["challenge"] = challenge
        return out


@pytest.fixture(scope="module")
def legacy(driver: Any, fixtures: Fixtures) -> LegacySigner:
    return LegacySigner(driver, fixtures, "company_sign")


async def legacy_challenge_of(client: TestClient) -> str:
    resp = await client.get("/ish/api/legacy/challenge")
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    assert body["expires_in"] == 300
    return body["challenge"]


async def post_legacy(client: TestClient, body: Any, **kw: Any) -> tuple[int, dict]:
    resp = await client.post("/ish/api/legacy/login", json=body, **kw)
    return resp.status, await resp.json()


def test_legacy_login_with_a_signtext_signature_opens_home(
    hall: web.Application, legacy: LegacySigner
) -> None:
    async def scenario(client: TestClient) -> None:
        resp = await client.get("/ish/api/legacy/challenge")
        before = resp.cookies["ISH_SESSION"].value
        challenge = (await resp.json())["challenge"]
        assert len(base64.urlsafe_b64decode(challenge + "=" * (-len(challenge) % 4))) == 32
        body = await asyncio.to_thread(legacy.body, challenge)
        resp = await client.post("/ish/api/legacy/login", json=body)
        assert resp.status == 200, await resp.text()
        assert await resp.json() == {"ok": True, "company": COMPANY, "redirect": "/ish/home"}
        assert resp.cookies["ISH_SESSION"].value != before  # a new session id on login
        page = await (await client.get("/ish/home")).text()
        assert COMPANY in page and "HB130900000000001" in page and legacy.serial_hex in page
        # the same home page as the modern login, and the legacy page now sends you there
        resp = await client.get("/ish/legacy", allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/ish/home"

    run(hall, scenario)


def test_legacy_challenge_is_single_use(hall: web.Application, legacy: LegacySigner) -> None:
    async def scenario(client: TestClient) -> None:
        challenge = await legacy_challenge_of(client)
        assert await legacy_challenge_of(client) != challenge  # a new one replaces it
        challenge = await legacy_challenge_of(client)
        # a failed attempt (signature over other text) consumes the challenge ...
        wrong = await asyncio.to_thread(legacy.body, challenge, text=challenge + "x")
        status, err = await post_legacy(client, wrong)
        assert status == 401 and err["error"]["code"] == "verify_bad_signature"
        assert err["error"]["message"] == "证书登录失败：登录凭证的签名无效"
        # ... so a good signature over it comes too late
        good = await asyncio.to_thread(legacy.body, challenge)
        status, err = await post_legacy(client, good)
        assert status == 400 and err["error"]["code"] == "challenge_used"
        assert "已使用过" in err["error"]["message"]
        # the server checks its stored challenge: without "challenge" in the body it works
        good = await asyncio.to_thread(
            legacy.body, await legacy_challenge_of(client), send_challenge=False
        )
        assert (await post_legacy(client, good))[0] == 200
        # the modern login's challenge is a different one (and vice versa)
        status, err = await post_token(client, {"origin": ORIGIN})
        assert status == 400 and err["error"]["code"] == "no_challenge"

    run(hall, scenario)


def test_legacy_replay_is_refused(hall: web.Application, legacy: LegacySigner) -> None:
    async def scenario(client: TestClient) -> None:
        body = await asyncio.to_thread(legacy.body, await legacy_challenge_of(client))
        assert (await post_legacy(client, body))[0] == 200
        # same browser: the challenge went with the login
        status, err = await post_legacy(client, body)
        assert status == 400 and err["error"]["code"] == "no_challenge"
        # another session replays it with its own fresh challenge: it does not match
        client.session.cookie_jar.clear()
        await legacy_challenge_of(client)
        status, err = await post_legacy(client, body)
        assert status == 400 and err["error"]["code"] == "challenge_mismatch"
        assert "不一致" in err["error"]["message"]
        # ... and without the challenge field the signature gives it away
        await legacy_challenge_of(client)
        status, err = await post_legacy(client, {k: body[k] for k in ("cert", "signature")})
        assert status == 401 and err["error"]["code"] == "verify_bad_signature"
        assert (await client.get("/ish/home", allow_redirects=False)).status == 302

    run(hall, scenario)


def test_legacy_wrong_signature_and_bad_input_are_refused(
    hall: web.Application, legacy: LegacySigner, driver: Any, fixtures: Fixtures
) -> None:
    other = LegacySigner(driver, fixtures, "trade_ec")

    async def scenario(client: TestClient) -> None:
        # the signature of another key under our certificate
        challenge = await legacy_challenge_of(client)
        mixed = await asyncio.to_thread(legacy.body, challenge)
        mixed["signature"] = base64.b64encode(
            await asyncio.to_thread(other.sign, challenge)
        ).decode()
        status, err = await post_legacy(client, mixed)
        assert status == 401 and err["error"]["code"] == "verify_bad_signature"
        # garbage signature, not base64, missing fields, not a certificate
        cases: list[tuple[Any, int, str]] = [
            (
                {"cert": mixed["cert"], "signature": base64.b64encode(b"x" * 256).decode()},
                401,
                "verify_bad_signature",
            ),
            ({"cert": mixed["cert"], "signature": "不是base64"}, 400, "bad_request"),
            ({"cert": mixed["cert"]}, 400, "bad_request"),
            (["cert", "signature"], 400, "bad_request"),
            (
                {"cert": base64.b64encode(b"not a cert").decode(), "signature": "AAAA"},
                401,
                "verify_unknown_format",
            ),
        ]
        for body, want_status, want_code in cases:
            await legacy_challenge_of(client)
            status, err = await post_legacy(client, body)
            assert (status, err["error"]["code"]) == (want_status, want_code), body
            assert err["error"]["message"]  # Chinese text for the page
        # a request sent by another site's page
        body = await asyncio.to_thread(legacy.body, await legacy_challenge_of(client))
        status, err = await post_legacy(client, body, headers={"Origin": "http://evil.example"})
        assert status == 403 and err["error"]["code"] == "bad_origin"
        assert (await post_legacy(client, body))[0] == 200  # that did not consume it

    run(hall, scenario)


def test_legacy_ecdsa_der_signature_logs_in(
    hall: web.Application, driver: Any, fixtures: Fixtures
) -> None:
    ec_signer = LegacySigner(driver, fixtures, "trade_ec")

    async def scenario(client: TestClient) -> None:
        body = await asyncio.to_thread(ec_signer.body, await legacy_challenge_of(client))
        assert base64.b64decode(body["signature"])[0] == 0x30  # DER SEQUENCE, not r||s
        status, reply = await post_legacy(client, body)
        assert status == 200 and reply["company"] == "沧州市测试贸易有限公司"

    run(hall, scenario)


def test_legacy_certificate_checks_match_the_modern_login(
    hall: web.Application, driver: Any, fixtures: Fixtures
) -> None:
    """Encryption certificate, expired certificate: refused like verify_auth_token does."""
    enc = LegacySigner(driver, fixtures, "company_enc")
    expired = LegacySigner(driver, fixtures, "expired")

    async def scenario(client: TestClient) -> None:
        for signer, code, text in (
            (enc, "verify_wrong_key_usage", "加密证书"),
            (expired, "verify_cert_expired", "已过期"),
        ):
            body = await asyncio.to_thread(signer.body, await legacy_challenge_of(client))
            status, err = await post_legacy(client, body)
            assert status == 401 and err["error"]["code"] == code
            assert text in err["error"]["message"]

    run(hall, scenario)


def test_legacy_untrusted_certificate_is_refused(
    anchors: tuple[list[bytes], list[bytes]], legacy: LegacySigner, clock: Clock
) -> None:
    # a hall that trusts another CA only
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "别的 CA")])
    other = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(clock.now - timedelta(days=1))
        .not_valid_after(clock.now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    app = create_hall_app(
        [other.public_bytes(serialization.Encoding.PEM)], origin=ORIGIN, now=clock
    )
    # ... and, at our hall, a self-made certificate with a valid signature of its own key
    own_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMPANY)])
    self_made = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(own_key.public_key())
        .serial_number(2)
        .not_valid_before(clock.now - timedelta(days=1))
        .not_valid_after(clock.now + timedelta(days=1))
        .sign(own_key, hashes.SHA256())
    )
    roots, issuing = anchors
    ours = create_hall_app(roots, origin=ORIGIN, now=clock, intermediates=issuing)

    async def at_other_ca(client: TestClient) -> None:
        body = await asyncio.to_thread(legacy.body, await legacy_challenge_of(client))
        status, err = await post_legacy(client, body)
        assert status == 401 and err["error"]["code"] == "verify_untrusted_chain"
        assert "受信任" in err["error"]["message"]

    async def self_signed(client: TestClient) -> None:
        challenge = await legacy_challenge_of(client)
        sig = own_key.sign(challenge.encode(), ec.ECDSA(hashes.SHA256()))
        body = {
            "cert": base64.b64encode(self_made.public_bytes(serialization.Encoding.DER)).decode(),
            "signature": base64.b64encode(sig).decode(),
        }
        status, err = await post_legacy(client, body)
        assert status == 401 and err["error"]["code"] == "verify_untrusted_chain"

    run(app, at_other_ca)
    run(ours, self_signed)


def test_legacy_login_takes_json_only_and_expires(
    hall: web.Application, legacy: LegacySigner, clock: Clock
) -> None:
    async def scenario(client: TestClient) -> None:
        challenge = await legacy_challenge_of(client)
        form = await client.post("/ish/api/legacy/login", data={"cert": "x", "signature": "y"})
        plain = await client.post(
            "/ish/api/legacy/login", data=b"{}", headers={"Content-Type": "text/plain"}
        )
        for resp in (form, plain):
            assert resp.status == 415
            assert (await resp.json())["error"]["message"].startswith("请求格式错误")
        bad = await client.post(
            "/ish/api/legacy/login", data=b"{nope", headers={"Content-Type": "application/json"}
        )
        assert bad.status == 400
        body = await asyncio.to_thread(legacy.body, challenge)
        clock.advance(5 * 60 + 1)
        status, err = await post_legacy(client, body)
        assert status == 400 and err["error"]["code"] == "challenge_expired"
        assert "过期" in err["error"]["message"]
        # just inside the lifetime is fine
        body = await asyncio.to_thread(legacy.body, await legacy_challenge_of(client))
        clock.advance(5 * 60 - 1)
        assert (await post_legacy(client, body))[0] == 200

    run(hall, scenario)


def test_legacy_page_and_link(
    anchors: tuple[list[bytes], list[bytes]], clock: Clock, hall: web.Application
) -> None:
    async def scenario(client: TestClient) -> None:
        page = await (await client.get("/ish/")).text()
        assert 'href="/ish/legacy"' in page and "旧版助手登录 (HEBCA 兼容接口)" in page
        resp = await client.get("/ish/legacy")
        assert resp.status == 200
        page = await resp.text()
        for text in (
            'data-hebca-port="17212"',
            "旧版接口不绑定网站地址，建议使用",
            'id="cert-select"',
            'type="text" id="cert-pin" class="pin-field"',  # masked by CSS, never saved
            ">登录</button>",
            "使用助手输入密码",
            "/ish/static/hebca-legacy-client.js",
            "/ish/static/legacy-login.js",
        ):
            assert text in page, text
        # certhelper.js only for diagnose(): why the endpoint is out of reach
        assert 'src="/ish/certhelper.js"' in page
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self';" in csp
        assert "connect-src 'self' ws://localhost:17212 http://127.0.0.1:17212;" in csp
        # the other pages do not get to talk to the legacy endpoint
        resp = await client.get("/ish/")
        assert "ws://localhost" not in resp.headers["Content-Security-Policy"]
        for name in ("hebca-legacy-client.js", "legacy-login.js"):
            resp = await client.get(f"/ish/static/{name}")
            assert resp.status == 200 and "eval(" not in await resp.text()

    run(hall, scenario)
    roots, issuing = anchors
    app = create_hall_app(roots, origin=ORIGIN, now=clock, intermediates=issuing, hebca_port=4567)

    async def other_port(client: TestClient) -> None:
        resp = await client.get("/ish/legacy")
        assert 'data-hebca-port="4567"' in await resp.text()
        assert "ws://localhost:4567" in resp.headers["Content-Security-Policy"]

    run(app, other_port)
    with pytest.raises(ValueError):
        create_hall_app(roots, origin=ORIGIN, hebca_port=0)
