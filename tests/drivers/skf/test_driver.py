"""SkfDriver: the TokenDriver over a real SKF library (libsoftskf through ctypes).

Enumeration as tokens, dual certificates, SM2 and RSA signatures checked outside our
code (gmalg, OpenSSL 3 with distid, cryptography), PIN counters down to a real lock
(and no SKF_VerifyPIN after it), change-PIN, removal mid-session, not-an-SKF library.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from drivers import errors as E
from drivers.hotplug import HotplugPoller
from drivers.registry import get_driver
from drivers.skf.driver import SkfDriver, key_id, split_key_id
from drivers.types import Pin, PinState, SignAlgorithm
from tests.support.skf import GmKeys
from tests.support.sm2 import gmalg_verifies, openssl_verifies, spki_of, verified_both_ways
from tests.support.tokens import USER_PIN

MESSAGE = "沧州公积金 汇缴 2026-12 单位 1301".encode()
WRONG = "000000"


def cert_der(drv: SkfDriver, serial: str, kid: bytes) -> bytes:
    return next(c.value for c in drv.read_objects(serial).certificates if c.key_id == kid)


def test_devices_are_tokens_with_exact_pin_counters(skf_driver: SkfDriver, gm_keys: GmKeys):
    tokens = {t.serial: t for t in skf_driver.list_tokens()}
    assert set(tokens) == {gm_keys.serial(n) for n in ("gm1", "gm2", "gm_empty")}
    t = tokens[gm_keys.serial("gm1")]
    assert (t.label, t.family, t.module_path) == ("河北CA测试国密Key1", "skf", gm_keys.library)
    assert (t.pin_retries_left, t.pin_max_retries, t.pin_is_default) == (6, 6, True)
    assert t.pin_state is PinState.OK and t.manufacturer.startswith("certhelper softskf")
    caps = skf_driver.capabilities
    assert (
        SignAlgorithm.SM2_SM3 in caps.algorithms
        and SignAlgorithm.ECDSA_SHA256 not in caps.algorithms
    )
    assert caps.pin_retry_counts and caps.default_pin_flag and caps.device_events


def test_containers_give_the_dual_certificates_and_their_keys(
    skf_driver: SkfDriver, gm_keys: GmKeys
) -> None:
    serial = gm_keys.serial("gm1")
    contents = skf_driver.read_objects(serial)  # no login needed in SKF
    by_sha = {hashlib.sha256(c.value).hexdigest(): c for c in contents.certificates}
    names = ("gm_company_sign", "gm_company_enc", "gm_rsa_sign", "gm_expiring")
    assert set(by_sha) == {gm_keys.cert(n)["sha256"] for n in names}
    sign = by_sha[gm_keys.cert("gm_company_sign")["sha256"]]
    enc = by_sha[gm_keys.cert("gm_company_enc")["sha256"]]
    container = gm_keys.cert("gm_company_sign")["container"]
    assert (sign.key_id, enc.key_id) == (
        key_id(container, sign=True),
        key_id(container, sign=False),
    )
    assert split_key_id(enc.key_id) == (container, False)
    keys = {k.key_id: k for k in contents.private_keys}
    assert keys[sign.key_id].key_type == keys[enc.key_id].key_type == "SM2"
    assert keys[key_id("RSA-2048", sign=True)].key_type == "RSA"
    assert keys[key_id("RSA-2048", sign=True)].key_bits == 2048
    public = {p.key_id: p.spki for p in skf_driver.public_keys(serial)}
    assert public[sign.key_id] == spki_of(sign.value)  # the key pair matches its certificate
    assert public[enc.key_id] == spki_of(enc.value)
    assert skf_driver.read_objects(gm_keys.serial("gm_empty")).certificates == []


def test_sm2_signature_verifies_outside_our_code(skf_driver: SkfDriver, gm_keys: GmKeys) -> None:
    serial = gm_keys.serial("gm1")
    kid = key_id(gm_keys.cert("gm_company_sign")["container"], sign=True)
    with pytest.raises(E.NotLoggedIn):
        skf_driver.sign(serial, kid, MESSAGE, SignAlgorithm.SM2_SM3)
    skf_driver.login(serial, Pin(USER_PIN))
    assert skf_driver.is_logged_in(serial)
    der = cert_der(skf_driver, serial, kid)
    sig = skf_driver.sign(serial, kid, MESSAGE, SignAlgorithm.SM2_SM3)
    assert verified_both_ways(der, MESSAGE, sig)
    assert not gmalg_verifies(spki_of(der), MESSAGE + b"!", sig)
    # another distinguishing ID: verifies with that ID only
    other = skf_driver.sign(
        serial, kid, MESSAGE, SignAlgorithm.SM2_SM3, sm2_id=b"HB130900000000001"
    )
    assert openssl_verifies(spki_of(der), MESSAGE, other, b"HB130900000000001")
    assert gmalg_verifies(spki_of(der), MESSAGE, other, b"HB130900000000001")
    assert not gmalg_verifies(spki_of(der), MESSAGE, other)
    # the encryption half never signs; RSA algorithms do not fit an SM2 container
    with pytest.raises(E.MechanismUnsupported):
        skf_driver.sign(
            serial, key_id(split_key_id(kid)[0], sign=False), MESSAGE, SignAlgorithm.SM2_SM3
        )
    with pytest.raises(E.MechanismUnsupported):
        skf_driver.sign(serial, kid, MESSAGE, SignAlgorithm.RSA_PKCS1_SHA256)
    with pytest.raises(E.MechanismUnsupported):
        skf_driver.sign(serial, kid, MESSAGE, SignAlgorithm.ECDSA_SHA256)
    with pytest.raises(E.KeyNotFound):
        skf_driver.sign(
            serial, key_id("no such container", sign=True), MESSAGE, SignAlgorithm.SM2_SM3
        )
    skf_driver.logout(serial)
    assert not skf_driver.is_logged_in(serial)
    with pytest.raises(E.NotLoggedIn):
        skf_driver.sign(serial, kid, MESSAGE, SignAlgorithm.SM2_SM3)


@pytest.mark.parametrize(
    "algorithm", [SignAlgorithm.RSA_PKCS1_SHA256, SignAlgorithm.RSA_PKCS1_SHA1]
)
def test_rsa_container_signs_pkcs1(skf_driver: SkfDriver, gm_keys: GmKeys, algorithm) -> None:
    serial, kid = gm_keys.serial("gm1"), key_id("RSA-2048", sign=True)
    skf_driver.login(serial, Pin(USER_PIN))
    sig = skf_driver.sign(serial, kid, MESSAGE, algorithm)
    public = x509.load_der_x509_certificate(cert_der(skf_driver, serial, kid)).public_key()
    digest = hashes.SHA256() if algorithm is SignAlgorithm.RSA_PKCS1_SHA256 else hashes.SHA1()
    public.verify(sig, MESSAGE, padding.PKCS1v15(), digest)  # type: ignore[union-attr]
    with pytest.raises(E.MechanismUnsupported):
        skf_driver.sign(serial, kid, MESSAGE, SignAlgorithm.SM2_SM3)


def test_wrong_pins_count_down_to_a_real_lock(skf_driver: SkfDriver, gm_keys: GmKeys) -> None:
    serial = gm_keys.serial("gm2")
    calls = []
    real_verify = skf_driver.lib.verify_pin

    def counting(*args, **kw):
        calls.append(1)
        return real_verify(*args, **kw)

    skf_driver.lib.verify_pin = counting  # type: ignore[method-assign]
    left = []
    for _ in range(5):
        with pytest.raises(E.PinIncorrect) as info:
            skf_driver.login(serial, Pin(WRONG))
        left.append(info.value.data["retries_left"])
        t = skf_driver.token_info(serial)
        assert t.pin_retries_left == left[-1]
    assert left == [5, 4, 3, 2, 1]
    assert skf_driver.token_info(serial).pin_state is PinState.FINAL_TRY
    with pytest.raises(E.PinLocked):
        skf_driver.login(serial, Pin(WRONG))  # the sixth wrong try locks it
    assert len(calls) == 6
    t = skf_driver.token_info(serial)
    assert (t.pin_state, t.pin_retries_left) == (PinState.LOCKED, 0)
    # locked for real: even the right PIN is refused, and without trying it
    with pytest.raises(E.PinLocked):
        skf_driver.login(serial, Pin(USER_PIN))
    with pytest.raises(E.PinLocked):
        skf_driver.change_pin(serial, Pin(USER_PIN), Pin("24681357"))
    assert len(calls) == 6
    # a fresh driver (a restarted daemon) sees the lock in the library's counters
    fresh = SkfDriver(gm_keys.library)
    try:
        assert fresh.token_info(serial).pin_state is PinState.LOCKED
    finally:
        fresh.close()


def test_change_pin_clears_the_default_flag(skf_driver: SkfDriver, gm_keys: GmKeys) -> None:
    serial, new = gm_keys.serial("gm1"), Pin("86429731")
    with pytest.raises(E.PinIncorrect) as info:
        skf_driver.change_pin(serial, Pin(WRONG), new)
    assert info.value.data["retries_left"] == 5
    assert skf_driver.token_info(serial).pin_is_default is True
    skf_driver.change_pin(serial, Pin(USER_PIN), new)
    t = skf_driver.token_info(serial)
    assert (t.pin_is_default, t.pin_retries_left) == (False, 6)  # a success resets the count
    with pytest.raises(E.PinIncorrect):
        skf_driver.login(serial, Pin(USER_PIN))
    skf_driver.login(serial, new)
    assert skf_driver.is_logged_in(serial)


def test_pin_of_bad_length_is_refused_by_the_key(skf_driver: SkfDriver, gm_keys: GmKeys) -> None:
    serial = gm_keys.serial("gm1")
    with pytest.raises((E.PinLenRange, E.PinInvalid)):
        skf_driver.change_pin(serial, Pin(USER_PIN), Pin("12"))
    skf_driver.login(serial, Pin(USER_PIN))  # the old PIN still works


def test_removal_mid_session_drops_the_login(skf_driver: SkfDriver, gm_keys: GmKeys) -> None:
    serial = gm_keys.serial("gm1")
    kid = key_id(gm_keys.cert("gm_company_sign")["container"], sign=True)
    skf_driver.login(serial, Pin(USER_PIN))
    aside = gm_keys.pull_out("gm1")
    with pytest.raises(E.TokenAbsent):
        skf_driver.sign(serial, kid, MESSAGE, SignAlgorithm.SM2_SM3)
    assert not skf_driver.is_logged_in(serial)
    assert serial not in {t.serial for t in skf_driver.list_tokens()}
    gm_keys.plug_in(aside, "gm1")
    assert serial in {t.serial for t in skf_driver.list_tokens()}
    with pytest.raises(E.NotLoggedIn):  # back, but a new session: log in again
        skf_driver.sign(serial, kid, MESSAGE, SignAlgorithm.SM2_SM3)
    skf_driver.login(serial, Pin(USER_PIN))
    assert skf_driver.sign(serial, kid, MESSAGE, SignAlgorithm.SM2_SM3)


def test_hotplug_poller_sees_skf_devices(skf_driver: SkfDriver, gm_keys: GmKeys) -> None:
    poller = HotplugPoller([skf_driver])
    assert {e.token.serial for e in poller.poll() if e.kind == "inserted"} == {
        gm_keys.serial(n) for n in ("gm1", "gm2", "gm_empty")
    }
    aside = gm_keys.pull_out("gm2")
    assert [(e.kind, e.token.serial) for e in poller.poll()] == [("removed", gm_keys.serial("gm2"))]
    gm_keys.plug_in(aside, "gm2")
    assert [(e.kind, e.token.serial) for e in poller.poll()] == [
        ("inserted", gm_keys.serial("gm2"))
    ]


def test_registry_loads_skf_and_refuses_what_is_not(gm_keys: GmKeys) -> None:
    drv = get_driver(gm_keys.library, family="skf")
    assert isinstance(drv, SkfDriver) and get_driver(gm_keys.library, family="skf") is drv
    with pytest.raises(E.ModuleLoadFailed, match="not an SKF"):
        SkfDriver("libc.so.6")
    with pytest.raises(E.ModuleLoadFailed):
        SkfDriver("/no/such/libskf.so")


def test_key_ids_round_trip_and_refuse_strangers() -> None:
    assert split_key_id(key_id("沧州/容器", sign=True)) == ("沧州/容器", True)
    for bad in (b"", b"/sign", b"abc", b"\xff\xfe/enc"):
        with pytest.raises(E.KeyNotFound):
            split_key_id(bad)
