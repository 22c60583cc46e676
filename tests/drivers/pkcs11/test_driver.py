"""The PKCS#11 driver against real SoftHSM tokens."""

from __future__ import annotations

import asyncio
import threading

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from pkcs11 import TokenFlag

from drivers import errors as E
from drivers.aio import AsyncDriver
from drivers.pkcs11 import Pkcs11Driver, map_pkcs11_error, pin_state_from_flags
from drivers.registry import get_driver
from drivers.types import Pin, PinState, SignAlgorithm
from tests.support.flags import token_flags
from tests.support.tokens import USER_PIN, Fixtures


def _serial(fx: Fixtures, name: str) -> str:
    return fx.token(name)["serial"]


def _cert_der(driver: Pkcs11Driver, fx: Fixtures, name: str) -> bytes:
    c = fx.cert(name)
    contents = driver.read_objects(c["token_serial"])
    return next(o.value for o in contents.certificates if o.key_id.hex() == c["key_id"])


def _verify(cert_der: bytes, sig: bytes, data: bytes, algorithm: SignAlgorithm) -> None:
    key = x509.load_der_x509_certificate(cert_der).public_key()
    h = {
        SignAlgorithm.RSA_PKCS1_SHA256: hashes.SHA256(),
        SignAlgorithm.RSA_PKCS1_SHA1: hashes.SHA1(),
        SignAlgorithm.ECDSA_SHA256: hashes.SHA256(),
        SignAlgorithm.ECDSA_SHA384: hashes.SHA384(),
    }[algorithm]
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(sig, data, ec.ECDSA(h))
    else:
        key.verify(sig, data, padding.PKCS1v15(), h)


def test_lists_initialised_tokens_only(driver: Pkcs11Driver, fixtures: Fixtures) -> None:
    tokens = driver.list_tokens()
    labels = sorted(t.label for t in tokens)
    assert labels == sorted(t["label"] for t in fixtures.manifest["tokens"])
    assert "" not in labels  # SoftHSM's spare uninitialised slot is skipped
    t = next(t for t in tokens if t.serial == _serial(fixtures, "key1"))
    assert t.label == "河北CA测试Key1"
    assert t.manufacturer == "SoftHSM project"
    assert t.model == "SoftHSM v2"
    assert (t.pin_min_len, t.pin_max_len) == (4, 255)  # read through C_GetTokenInfo
    assert t.login_required and not t.protected_auth_path


def test_pairs_certificates_and_keys_by_id(driver: Pkcs11Driver, fixtures: Fixtures) -> None:
    contents = driver.read_objects(_serial(fixtures, "key1"))
    cert_ids = {c.key_id.hex() for c in contents.certificates}
    key_ids = {k.key_id.hex() for k in contents.private_keys}
    want = {fixtures.cert(n)["key_id"] for n in ("company_sign", "company_enc", "trade_ec")}
    assert cert_ids == want
    assert key_ids == want
    # not logged in: the private keys are private, their public twins stand in
    assert all(k.from_public_key for k in contents.private_keys)
    ec_key = next(k for k in contents.private_keys if k.key_type == "EC")
    assert ec_key.ec_params


def test_edge_token_objects(driver: Pkcs11Driver, fixtures: Fixtures) -> None:
    contents = driver.read_objects(_serial(fixtures, "edge"))
    by_id = {c.key_id.hex(): c for c in contents.certificates}
    corrupt = fixtures.cert("corrupt")
    assert by_id[corrupt["key_id"]].value == b"not a DER certificate"
    assert {k.key_id.hex() for k in contents.private_keys} == {
        fixtures.manifest["keys_without_certificate"][0]["key_id"]
    }


def test_empty_token(driver: Pkcs11Driver, fixtures: Fixtures) -> None:
    contents = driver.read_objects(_serial(fixtures, "empty"))
    assert contents.certificates == [] and contents.private_keys == []


@pytest.mark.parametrize(
    ("cert", "algorithm"),
    [
        ("company_sign", SignAlgorithm.RSA_PKCS1_SHA256),
        ("company_sign", SignAlgorithm.RSA_PKCS1_SHA1),
        ("trade_ec", SignAlgorithm.ECDSA_SHA256),
        ("trade_ec", SignAlgorithm.ECDSA_SHA384),
    ],
)
def test_sign_verifies(driver: Pkcs11Driver, fixtures: Fixtures, cert: str, algorithm) -> None:
    c = fixtures.cert(cert)
    der = _cert_der(driver, fixtures, cert)
    data = "沧州公积金 汇缴 2026-11".encode()
    driver.login(c["token_serial"], Pin(USER_PIN))
    try:
        assert driver.is_logged_in(c["token_serial"])
        sig = driver.sign(c["token_serial"], bytes.fromhex(c["key_id"]), data, algorithm)
        sig2 = driver.sign(c["token_serial"], bytes.fromhex(c["key_id"]), data, algorithm)
    finally:
        driver.logout(c["token_serial"])
    _verify(der, sig, data, algorithm)
    _verify(der, sig2, data, algorithm)
    with pytest.raises(InvalidSignature):
        _verify(der, sig, data + b"!", algorithm)
    assert not driver.is_logged_in(c["token_serial"])


def test_logged_in_listing_shows_real_private_keys(driver, fixtures) -> None:
    serial = _serial(fixtures, "key1")
    driver.login(serial, Pin(USER_PIN))
    try:
        contents = driver.read_objects(serial)
        assert len(contents.private_keys) == 3
        assert not any(k.from_public_key for k in contents.private_keys)
    finally:
        driver.logout(serial)


def test_sign_needs_login(driver: Pkcs11Driver, fixtures: Fixtures) -> None:
    c = fixtures.cert("company_sign")
    with pytest.raises(E.NotLoggedIn):
        driver.sign(c["token_serial"], bytes.fromhex(c["key_id"]), b"x", "rsa-pkcs1-sha256")


def test_sign_with_unknown_key(driver: Pkcs11Driver, fixtures: Fixtures) -> None:
    serial = _serial(fixtures, "key1")
    driver.login(serial, Pin(USER_PIN))
    try:
        with pytest.raises(E.KeyNotFound):
            driver.sign(serial, b"\x00" * 20, b"x", SignAlgorithm.RSA_PKCS1_SHA256)
        # an EC signature asked of an RSA key: no EC key has that id
        rsa = fixtures.cert("company_sign")
        with pytest.raises(E.KeyNotFound):
            driver.sign(serial, bytes.fromhex(rsa["key_id"]), b"x", SignAlgorithm.ECDSA_SHA256)
    finally:
        driver.logout(serial)


def test_token_absent(driver: Pkcs11Driver) -> None:
    with pytest.raises(E.TokenAbsent):
        driver.read_objects("no-such-serial")
    with pytest.raises(E.TokenAbsent):
        driver.login("no-such-serial", Pin(USER_PIN))


def test_all_calls_run_on_one_worker_thread(driver: Pkcs11Driver) -> None:
    seen = set()
    for _ in range(5):
        seen.add(driver.worker.call(lambda: threading.current_thread().name))
    threads = [
        threading.Thread(
            target=lambda: seen.add(driver.worker.call(lambda: threading.current_thread().name))
        )
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 1 and next(iter(seen)).startswith("pkcs11-")
    assert threading.current_thread().name not in seen


def test_async_face(driver: Pkcs11Driver, fixtures: Fixtures) -> None:
    c = fixtures.cert("trade_ec")
    adrv = AsyncDriver(driver)

    async def go() -> bytes:
        tokens = await adrv.list_tokens()
        assert c["token_serial"] in {t.serial for t in tokens}
        await adrv.login(c["token_serial"], Pin(USER_PIN))
        try:
            return await adrv.sign(
                c["token_serial"], bytes.fromhex(c["key_id"]), b"async", SignAlgorithm.ECDSA_SHA256
            )
        finally:
            await adrv.logout(c["token_serial"])

    sig = asyncio.run(go())
    _verify(_cert_der(driver, fixtures, "trade_ec"), sig, b"async", SignAlgorithm.ECDSA_SHA256)


def test_one_driver_per_module(driver: Pkcs11Driver, module_path: str) -> None:
    assert get_driver(module_path) is driver


def test_bad_module_path(tmp_path) -> None:
    with pytest.raises(E.ModuleLoadFailed) as info:
        Pkcs11Driver(tmp_path / "missing.so")
    assert info.value.code == "module_load_failed"
    assert "missing.so" in info.value.message()


def test_module_that_is_not_pkcs11(tmp_path) -> None:
    import ctypes.util
    import os

    libc = ctypes.util.find_library("c")
    candidates = [
        f"/lib/x86_64-linux-gnu/{libc}",
        f"/usr/lib/x86_64-linux-gnu/{libc}",
        f"/lib/aarch64-linux-gnu/{libc}",
        f"/usr/lib/aarch64-linux-gnu/{libc}",
    ]
    path = next((p for p in candidates if os.path.isfile(p)), None)
    assert path, "no libc found to use as a non-PKCS#11 library"
    with pytest.raises(E.ModuleLoadFailed) as info:
        Pkcs11Driver(path)
    assert "C_GetFunctionList" in info.value.message()
    text = tmp_path / "notalib.so"
    text.write_text("not a shared object")
    with pytest.raises(E.ModuleLoadFailed):
        Pkcs11Driver(text)


@pytest.mark.parametrize(
    ("flags", "state"),
    [
        (0, PinState.OK),
        (TokenFlag.USER_PIN_COUNT_LOW, PinState.COUNT_LOW),
        (TokenFlag.USER_PIN_FINAL_TRY | TokenFlag.USER_PIN_COUNT_LOW, PinState.FINAL_TRY),
        (TokenFlag.USER_PIN_LOCKED | TokenFlag.USER_PIN_FINAL_TRY, PinState.LOCKED),
        (TokenFlag.USER_PIN_TO_BE_CHANGED, PinState.TO_BE_CHANGED),
        (TokenFlag.USER_PIN_TO_BE_CHANGED | TokenFlag.USER_PIN_COUNT_LOW, PinState.COUNT_LOW),
    ],
)
def test_pin_state_from_flags(flags: int, state: PinState) -> None:
    assert pin_state_from_flags(int(flags)) is state


def test_locked_pin_is_never_tried(driver: Pkcs11Driver, fixtures: Fixtures) -> None:
    """With the flags saying locked, even the right PIN is refused, and a wrong
    one never reaches C_Login (the real token shows no failed attempt after)."""
    serial = _serial(fixtures, "empty")
    slot = next(t.slot_id for t in driver.list_tokens() if t.serial == serial)
    with token_flags(driver, TokenFlag.USER_PIN_LOCKED, {slot}):
        assert driver.token_info(serial).pin_state is PinState.LOCKED
        with pytest.raises(E.PinLocked):
            driver.login(serial, Pin(USER_PIN))
        with pytest.raises(E.PinLocked):
            driver.login(serial, Pin("000000"))
        with pytest.raises(E.PinLocked):
            driver.change_pin(serial, Pin("000000"), Pin("24680135"))
    assert driver.token_info(serial).pin_state is PinState.OK  # no try was burned
    assert not driver.is_logged_in(serial)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PinIncorrect", E.PinIncorrect),
        ("PinLocked", E.PinLocked),
        ("PinLenRange", E.PinLenRange),
        ("TokenNotPresent", E.TokenAbsent),
        ("DeviceRemoved", E.TokenAbsent),
        ("MechanismInvalid", E.MechanismUnsupported),
        ("GeneralError", E.DeviceError),
    ],
)
def test_error_mapping(name: str, expected: type[E.CertHelperError]) -> None:
    import pkcs11.exceptions as pe

    err = map_pkcs11_error(getattr(pe, name)())
    assert isinstance(err, expected)
    assert err.detail == name  # str(exc) is empty for these: the type name is kept
    assert err.message_zh and err.message_en
