"""The demo hall's login API and pages (helper/demo/hall.py), with login tokens signed
by the real SoftHSM key of the session fixtures (no bridge, no browser)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
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
from tests.conftest import USER_PIN, Fixtures

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
        assert 'src="https://127.0.0.1:17213/v1/certhelper.js"' in page
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self' https://127.0.0.1:17213" in csp
        assert "wss://127.0.0.1:17213" in csp

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
