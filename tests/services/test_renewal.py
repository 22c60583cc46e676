"""renewal.status / renewal.request / renewal.install over the real bridge (WSS
framing over loopback, aiohttp test server) on a plugged SoftHSM token, with the
scripted prompter standing in for the person. Every refusal leaves the token
exactly as it was."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from drivers.pkcs11.driver import Pkcs11Driver
from helper.errors import UserCancelled
from helper.services.prompts import ConsentChoice
from helper.services.renewal import RenewalSettings
from tests.support.bridge import HALL, Bridge, call, running_bridge
from tests.support.doubles import ScriptedPrompter
from tests.support.renewal import EC_CN, RSA_CN, PluggedToken, issue, snapshot, uid_extension
from tests.support.tokens import Fixtures

CA = "https://www.hebca.com"


def sync(fn):  # type: ignore[no-untyped-def]
    """Run an async test body on a fresh event loop (as tests/bridge does)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


def load(der_or_pem: bytes) -> x509.Certificate:
    if b"-----BEGIN" in der_or_pem:
        return x509.load_pem_x509_certificate(der_or_pem)
    return x509.load_der_x509_certificate(der_or_pem)


def issuing_der(token: PluggedToken) -> bytes:
    return token.pki.issuing_cert().public_bytes(serialization.Encoding.DER)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@contextlib.asynccontextmanager
async def ca_bridge(
    driver: Pkcs11Driver,
    fx: Fixtures,
    state: Path,
    token: PluggedToken,
    prompter: ScriptedPrompter | None = None,
    *,
    archive: bool = True,
) -> AsyncIterator[Bridge]:
    settings = RenewalSettings.build(
        [CA], [token.pki.root_pem], old_certificate="archive" if archive else "remove"
    )
    async with running_bridge(
        driver, fx, state, prompter, origins=[HALL, CA], renewal=settings
    ) as b:
        yield b


async def status_of(b: Bridge, name_cn: str) -> dict[str, Any]:
    ws = await b.ws(CA)
    try:
        r = await call(ws, "renewal.status")
    finally:
        await ws.close()
    assert "result" in r, r
    return next(c for c in r["result"]["certificates"] if c["subject_cn"] == name_cn)


async def request(b: Bridge, sha: str, new_key: bool) -> dict[str, Any]:
    ws = await b.ws(CA)
    try:
        return await call(ws, "renewal.request", {"certificate": sha, "new_key": new_key})
    finally:
        await ws.close()


async def install(b: Bridge, der: bytes, chain: list[bytes] | None = None) -> dict[str, Any]:
    ws = await b.ws(CA)
    try:
        params = {"certificate": b64(der), "chain": [b64(c) for c in chain or []]}
        return await call(ws, "renewal.install", params)
    finally:
        await ws.close()


def verify_csr(csr_der: bytes, old: x509.Certificate) -> x509.CertificateSigningRequest:
    csr = x509.load_der_x509_csr(csr_der)
    assert csr.is_signature_valid
    assert csr.subject.public_bytes() == old.subject.public_bytes()  # byte for byte
    return csr


async def renew(
    b: Bridge, token: PluggedToken, cn: str, *, new_key: bool
) -> tuple[x509.Certificate, bytes, dict[str, Any]]:
    """request → issue (the test CA) → install; returns (old, new DER, install result)."""
    info = await status_of(b, cn)
    old = x509.load_der_x509_certificate(base64.b64decode(info["der"]))
    r = await request(b, info["sha256"], new_key)
    assert "result" in r, r
    csr = verify_csr(base64.b64decode(r["result"]["csr"]), old)
    assert r["result"]["key"] == ("new" if new_key else "existing")
    same = csr.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == old.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert same is not new_key
    pki = token.pki
    new_der = issue(csr.public_key(), old, pki.issuing_cert(), pki.issuing_key())
    result = await install(b, new_der, [issuing_der(token)])
    return old, new_der, result


# --- status ------------------------------------------------------------------------------


@sync
async def test_status_lists_certificates_and_windows(
    driver, fixtures, state, renewal_token: PluggedToken
) -> None:
    async with ca_bridge(driver, fixtures, state, renewal_token) as b:
        expiring = await status_of(b, RSA_CN)
        fresh = await status_of(b, "沧州市新证书测试有限公司")
    assert expiring["in_window"] is True and 3 <= expiring["days_left"] <= 5
    assert expiring["token_serial"] == renewal_token.serial
    assert expiring["hebca_unique_id"] == "HB130900000000099"
    assert fresh["in_window"] is False and fresh["days_left"] > 300
    start = datetime.fromisoformat(fresh["window_start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(fresh["not_after"].replace("Z", "+00:00"))
    assert end - start == timedelta(days=90)


# --- both paths ----------------------------------------------------------------------------


@pytest.mark.parametrize("new_key", [False, True], ids=["same-key", "new-key"])
@sync
async def test_renewal_writes_the_certificate(
    driver, fixtures, state, renewal_token: PluggedToken, new_key: bool
) -> None:
    serial = renewal_token.serial
    keys_before = {k.key_id for k in driver.read_objects(serial).private_keys}
    prompter = ScriptedPrompter()
    async with ca_bridge(driver, fixtures, state, renewal_token, prompter) as b:
        renewed: list[tuple[str, str]] = []
        assert b.renewal is not None
        b.renewal.on_renewed = lambda old, new: renewed.append((old, new))
        old, new_der, r = await renew(b, renewal_token, RSA_CN, new_key=new_key)
        assert "result" in r, r
        new = x509.load_der_x509_certificate(new_der)
        assert r["result"]["old_certificate"] == "archived"
        assert r["result"]["installed"] == new.fingerprint(hashes.SHA256()).hex()
        assert renewed == [(old.fingerprint(hashes.SHA256()).hex(), r["result"]["installed"])]

        # what the person saw: confirm the request, the PIN, confirm the write
        kinds = [(k, getattr(req, "operation", None)) for k, req in prompter.calls]
        assert kinds == [
            ("consent", "renewal.request"),
            ("pin", "renewal.request"),
            ("consent", "renewal.install"),
        ]
        shown = dict(prompter.calls[2][1].details)
        assert any("至" in v for v in shown.values())

        # the new certificate is what logins use now; the old one is archived
        ws = await b.ws(HALL)
        listed = (await call(ws, "certificates.list"))["result"]["certificates"]
        await ws.close()
        mine = [c for c in listed if c["subject"]["cn"] == RSA_CN]
        assert [c["sha256"] for c in mine] == [r["result"]["installed"]]

    contents = driver.read_objects(serial)
    by_value = {c.value: c for c in contents.certificates}
    written = by_value[new_der]
    archived = by_value[old.public_bytes(serialization.Encoding.DER)]
    assert written.label == RSA_CN
    assert archived.label.startswith("archived-") and archived.label.endswith(":" + RSA_CN)
    keys_after = {k.key_id for k in contents.private_keys}
    assert keys_before <= keys_after  # no key deleted
    assert len(keys_after) == len(keys_before) + (1 if new_key else 0)
    if new_key:
        assert written.key_id in keys_after - keys_before
    else:
        assert written.key_id == archived.key_id

    # a signature from the token with the renewed certificate's key verifies
    driver.login(serial, __import__("drivers.types", fromlist=["Pin"]).Pin("123456"))
    try:
        sig = driver.sign(serial, written.key_id, b"after renewal", _rsa())
    finally:
        driver.logout(serial)
    pub = new.public_key()
    assert isinstance(pub, rsa.RSAPublicKey)
    pub.verify(sig, b"after renewal", padding.PKCS1v15(), hashes.SHA256())


def _rsa():  # type: ignore[no-untyped-def]
    from drivers.types import SignAlgorithm

    return SignAlgorithm.RSA_PKCS1_SHA256


@sync
async def test_ec_certificate_with_a_new_key(
    driver, fixtures, state, renewal_token: PluggedToken
) -> None:
    async with ca_bridge(driver, fixtures, state, renewal_token, archive=False) as b:
        old, new_der, r = await renew(b, renewal_token, EC_CN, new_key=True)
    assert "result" in r, r
    assert r["result"]["old_certificate"] == "removed"
    new = x509.load_der_x509_certificate(new_der)
    assert isinstance(new.public_key(), ec.EllipticCurvePublicKey)
    assert new.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    values = {c.value for c in driver.read_objects(renewal_token.serial).certificates}
    assert new_der in values
    assert old.public_bytes(serialization.Encoding.DER) not in values  # removed, key kept
    assert len(driver.read_objects(renewal_token.serial).private_keys) == 4


# --- refusals: the token is left as it was ---------------------------------------------------


@sync
async def test_hall_origin_is_refused_every_method(
    driver, fixtures, state, renewal_token: PluggedToken
) -> None:
    before = snapshot(driver, renewal_token.serial)
    prompter = ScriptedPrompter()
    async with ca_bridge(driver, fixtures, state, renewal_token, prompter) as b:
        b.consent.record("https://evil.example", "always")  # consent does not help
        info = await status_of(b, RSA_CN)
        old = x509.load_der_x509_certificate(base64.b64decode(info["der"]))
        pki = renewal_token.pki
        der = issue(old.public_key(), old, pki.issuing_cert(), pki.issuing_key())
        for origin in (HALL, "https://evil.example"):
            ws = await b.ws(origin)
            for method, params in (
                ("renewal.status", {}),
                ("renewal.request", {"certificate": info["sha256"], "new_key": True}),
                ("renewal.install", {"certificate": b64(der)}),
            ):
                r = await call(ws, method, params)
                assert r["error"]["code"] == "renewal_origin_refused", (origin, method, r)
            await ws.close()
    assert prompter.calls == []  # not even a dialog
    assert snapshot(driver, renewal_token.serial) == before
    audit = [json.loads(x) for x in (state / "audit.jsonl").read_text().splitlines()]
    assert sum(a["outcome"] == "renewal_origin_refused" for a in audit) == 6


@sync
async def test_outside_the_window_is_refused(
    driver, fixtures, state, renewal_token: PluggedToken
) -> None:
    before = snapshot(driver, renewal_token.serial)
    prompter = ScriptedPrompter()
    async with ca_bridge(driver, fixtures, state, renewal_token, prompter) as b:
        info = await status_of(b, "沧州市新证书测试有限公司")
        r = await request(b, info["sha256"], True)
    assert r["error"]["code"] == "renewal_not_due"
    assert prompter.calls == []
    assert snapshot(driver, renewal_token.serial) == before


async def _refused_install(
    driver,
    fixtures,
    state,
    token: PluggedToken,
    make,
    code: str,  # type: ignore[no-untyped-def]
) -> ScriptedPrompter:
    """Install what ``make(old)`` returns; expect ``code`` and an unchanged token."""
    before = snapshot(driver, token.serial)
    prompter = ScriptedPrompter()
    async with ca_bridge(driver, fixtures, state, token, prompter) as b:
        info = await status_of(b, RSA_CN)
        old = x509.load_der_x509_certificate(base64.b64decode(info["der"]))
        r = await install(b, make(old), [issuing_der(token)])
    assert r.get("error", {}).get("code") == code, r
    assert snapshot(driver, token.serial) == before
    return prompter


@sync
async def test_key_not_on_the_token(driver, fixtures, state, renewal_token) -> None:
    pki = renewal_token.pki
    soft = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    prompter = await _refused_install(
        driver,
        fixtures,
        state,
        renewal_token,
        lambda old: issue(soft.public_key(), old, pki.issuing_cert(), pki.issuing_key()),
        "renewal_key_mismatch",
    )
    assert prompter.calls == []


@sync
async def test_foreign_ca(driver, fixtures, state, renewal_token, fixtures_ca) -> None:
    cert, key = fixtures_ca
    await _refused_install(
        driver,
        fixtures,
        state,
        renewal_token,
        lambda old: issue(old.public_key(), old, cert, key),
        "renewal_untrusted",
    )


@sync
async def test_different_subject(driver, fixtures, state, renewal_token) -> None:
    pki = renewal_token.pki
    other = x509.Name.from_rfc4514_string("CN=沧州市另一家测试公司,O=沧州市另一家测试公司,C=CN")
    await _refused_install(
        driver,
        fixtures,
        state,
        renewal_token,
        lambda old: issue(
            old.public_key(), old, pki.issuing_cert(), pki.issuing_key(), subject=other
        ),
        "renewal_subject_mismatch",
    )


@sync
async def test_different_unique_id(driver, fixtures, state, renewal_token) -> None:
    pki = renewal_token.pki

    def make(old: x509.Certificate) -> bytes:
        builder_cert = issue(
            old.public_key(), old, pki.issuing_cert(), pki.issuing_key(), copy_extensions=False
        )
        # same subject, but another holder's HEBCA unique ID
        cert = x509.load_der_x509_certificate(builder_cert)
        b = (
            x509.CertificateBuilder()
            .subject_name(cert.subject)
            .issuer_name(cert.issuer)
            .public_key(cert.public_key())
            .serial_number(cert.serial_number)
            .not_valid_before(cert.not_valid_before_utc)
            .not_valid_after(cert.not_valid_after_utc)
            .add_extension(uid_extension("HB130900000000777"), critical=False)
        )
        return b.sign(pki.issuing_key(), hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    await _refused_install(driver, fixtures, state, renewal_token, make, "renewal_subject_mismatch")


@sync
async def test_older_validity(driver, fixtures, state, renewal_token) -> None:
    pki = renewal_token.pki
    await _refused_install(
        driver,
        fixtures,
        state,
        renewal_token,
        lambda old: issue(
            old.public_key(),
            old,
            pki.issuing_cert(),
            pki.issuing_key(),
            not_after=old.not_valid_after_utc - timedelta(days=1),
        ),
        "renewal_not_newer",
    )


@sync
async def test_not_a_certificate(driver, fixtures, state, renewal_token) -> None:
    await _refused_install(
        driver, fixtures, state, renewal_token, lambda old: b"\x30\x03\x02\x01\x01", "bad_params"
    )


@pytest.mark.parametrize("answer", [ConsentChoice.DENY, UserCancelled()], ids=["deny", "cancel"])
@sync
async def test_user_cancels_the_write(driver, fixtures, state, renewal_token, answer) -> None:
    pki = renewal_token.pki
    prompter = ScriptedPrompter(consents=[answer])
    before = snapshot(driver, renewal_token.serial)
    async with ca_bridge(driver, fixtures, state, renewal_token, prompter) as b:
        info = await status_of(b, RSA_CN)
        old = x509.load_der_x509_certificate(base64.b64decode(info["der"]))
        der = issue(old.public_key(), old, pki.issuing_cert(), pki.issuing_key())
        r = await install(b, der, [issuing_der(renewal_token)])
    assert r["error"]["code"] in ("consent_denied", "user_cancelled"), r
    assert [(k, req.operation) for k, req in prompter.calls] == [("consent", "renewal.install")]
    assert snapshot(driver, renewal_token.serial) == before


@sync
async def test_user_cancels_the_request(driver, fixtures, state, renewal_token) -> None:
    prompter = ScriptedPrompter(consents=[ConsentChoice.DENY])
    before = snapshot(driver, renewal_token.serial)
    async with ca_bridge(driver, fixtures, state, renewal_token, prompter) as b:
        info = await status_of(b, RSA_CN)
        r = await request(b, info["sha256"], True)
    assert r["error"]["code"] == "consent_denied"
    assert [k for k, _ in prompter.calls] == ["consent"]  # no PIN asked, no key made
    assert snapshot(driver, renewal_token.serial) == before


@sync
async def test_token_removed_between_request_and_install(
    driver, fixtures, state, renewal_token: PluggedToken, tmp_path: Path
) -> None:
    async with ca_bridge(driver, fixtures, state, renewal_token) as b:
        info = await status_of(b, RSA_CN)
        old = x509.load_der_x509_certificate(base64.b64decode(info["der"]))
        r = await request(b, info["sha256"], True)
        csr = verify_csr(base64.b64decode(r["result"]["csr"]), old)
        pki = renewal_token.pki
        der = issue(csr.public_key(), old, pki.issuing_cert(), pki.issuing_key())
        before = snapshot(driver, renewal_token.serial)
        saved = tmp_path / "pulled"
        import shutil

        shutil.copytree(renewal_token.path, saved)  # the key, out of the slot
        renewal_token.unplug()
        await b.gate.token_removed(renewal_token.serial)
        r = await install(b, der, [issuing_der(renewal_token)])
        assert r["error"]["code"] == "token_absent", r
        shutil.copytree(saved, renewal_token.path)  # plugged back in: as it was
    driver.logout(renewal_token.serial)
    driver.list_tokens(rescan=True)
    assert snapshot(driver, renewal_token.serial) == before


@sync
async def test_the_same_certificate_twice(driver, fixtures, state, renewal_token) -> None:
    async with ca_bridge(driver, fixtures, state, renewal_token) as b:
        _old, new_der, r = await renew(b, renewal_token, RSA_CN, new_key=False)
        assert "result" in r, r
        before = snapshot(driver, renewal_token.serial)
        again = await install(b, new_der, [issuing_der(renewal_token)])
    assert again["error"]["code"] == "certificate_exists"
    assert snapshot(driver, renewal_token.serial) == before


@pytest.fixture
def fixtures_ca(fixtures: Fixtures) -> tuple[x509.Certificate, Any]:
    """The session fixtures' issuing CA: real, but not one the renewal trusts."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    pem = Path(fixtures.manifest["ca"]["issuing"])
    cert = x509.load_pem_x509_certificate(pem.read_bytes())
    key = load_pem_private_key(pem.with_suffix(".key").read_bytes(), None)
    return cert, key


def test_window_arithmetic() -> None:
    from helper.domain.renewal import RenewalWindow, archive_label, is_archived, strip_archive

    w = RenewalWindow()
    exp = datetime(2027, 1, 1, tzinfo=UTC)
    assert not w.contains(exp, exp - timedelta(days=91))
    assert w.contains(exp, exp - timedelta(days=90))
    assert w.contains(exp, exp + timedelta(days=365))
    assert not w.contains(exp, exp + timedelta(days=366))
    label = archive_label("沧州市续期测试有限公司", datetime(2026, 11, 26, tzinfo=UTC))
    assert label == "archived-20261126:沧州市续期测试有限公司"
    assert is_archived(label) and not is_archived("沧州市续期测试有限公司")
    assert archive_label(label, datetime(2027, 1, 2, tzinfo=UTC)).count("archived-") == 1
    assert strip_archive(label) == "沧州市续期测试有限公司"
