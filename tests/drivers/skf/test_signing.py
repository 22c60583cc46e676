"""Signatures made by the soft key, checked by others: gmalg, OpenSSL 3 and cryptography."""

from __future__ import annotations

import ctypes
import hashlib
import subprocess
from pathlib import Path

import gmalg
import pytest
from asn1crypto import pem
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from drivers import errors as E
from drivers import sm2
from drivers.skf import Sar
from drivers.skf import abi as skf_abi
from drivers.skf.keys import EccPublicKey
from drivers.types import Pin
from tests.drivers.skf.conftest import USER_PIN, Skf

MESSAGE = "证书助手 SKF 签名测试 — 沧州市测试科技有限公司".encode()
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def sm2_key(skf: Skf, con) -> EccPublicKey:
    key = skf.lib.export_public_key(con)
    assert isinstance(key, EccPublicKey)
    return key


def openssl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], capture_output=True, check=False, timeout=60)


def test_sm2_signature_verifies_with_gmalg_and_openssl(skf: Skf, tmp_path: Path) -> None:
    dev, _, con = skf.open_container("gm_company_sign")
    key = sm2_key(skf, con)
    e = sm2.e_value(MESSAGE, (key.x, key.y))
    r, s = skf.lib.ecc_sign(con, e)
    der = sm2.signature_der(r, s)

    # gmalg computes Z and e itself from the message and the default ID
    verifier = gmalg.SM2(pk=key.point, uid=sm2.DEFAULT_ID)
    assert verifier.verify(MESSAGE, r.to_bytes(32, "big"), s.to_bytes(32, "big"))
    assert not verifier.verify(MESSAGE + b"!", r.to_bytes(32, "big"), s.to_bytes(32, "big"))

    public = tmp_path / "pub.pem"
    public.write_bytes(pem.armor("PUBLIC KEY", key.spki_der()))
    (tmp_path / "sig.der").write_bytes(der)
    (tmp_path / "msg.bin").write_bytes(MESSAGE)
    (tmp_path / "e.bin").write_bytes(e)
    # pkeyutl without -rawin verifies the given bytes as e
    done = openssl(
        "pkeyutl", "-verify", "-pubin", "-inkey", str(public),
        "-in", str(tmp_path / "e.bin"), "-sigfile", str(tmp_path / "sig.der"),
    )  # fmt: skip
    assert done.returncode == 0 and b"Signature Verified Successfully" in done.stdout, done
    # dgst computes Z and e from the original message, with the distinguishing ID
    done = openssl(
        "dgst", "-sm3", "-verify", str(public), "-sigopt", "distid:1234567812345678",
        "-signature", str(tmp_path / "sig.der"), str(tmp_path / "msg.bin"),
    )  # fmt: skip
    assert done.returncode == 0 and b"Verified OK" in done.stdout, done
    # ... and the library's own verification agrees
    assert skf.lib.ecc_verify(dev, key, e, (r, s))
    assert not skf.lib.ecc_verify(dev, key, e, (r, (s + 1) % sm2.N))


def test_sm2_signatures_are_randomised(skf: Skf) -> None:
    _, _, con = skf.open_container("gm2_sign")
    key = sm2_key(skf, con)
    e = sm2.e_value(MESSAGE, (key.x, key.y))
    first, second = skf.lib.ecc_sign(con, e), skf.lib.ecc_sign(con, e)
    assert first != second
    for r, s in (first, second):
        assert 0 < r < sm2.N and 0 < s < sm2.N


def test_signature_blob_fields_are_right_aligned(skf: Skf) -> None:
    _, _, con = skf.open_container("gm_company_sign")
    blob = skf_abi.ECCSIGNATUREBLOB()
    digest = ctypes.create_string_buffer(bytes(range(32)), 32)
    assert skf.lib.raw("SKF_ECCSignData")(con, digest, 32, ctypes.byref(blob)) == Sar.OK
    assert bytes(blob.r)[:32] == bytes(32) and bytes(blob.s)[:32] == bytes(32)
    assert any(bytes(blob.r)[32:]) and any(bytes(blob.s)[32:])


def test_sm2_sign_refuses_bad_input(skf: Skf) -> None:
    _, _, con = skf.open_container("gm_company_sign")
    with pytest.raises(E.BadInput):
        skf.lib.ecc_sign(con, b"\x01" * 31)
    sign = skf.lib.raw("SKF_ECCSignData")
    blob = skf_abi.ECCSIGNATUREBLOB()
    digest = ctypes.create_string_buffer(64)
    for length in (0, 20, 33, 64):
        assert sign(con, digest, length, ctypes.byref(blob)) == Sar.INDATALENERR
    assert sign(con, None, 32, ctypes.byref(blob)) == Sar.INVALIDPARAMERR
    assert sign(con, digest, 32, None) == Sar.INVALIDPARAMERR


def test_sm2_sign_in_an_rsa_container_is_refused(skf: Skf) -> None:
    _, _, con = skf.open_container("gm_rsa_sign")
    with pytest.raises(E.MechanismUnsupported, match="SAR_KEYINFOTYPEERR"):
        skf.lib.ecc_sign(con, bytes(32))


def test_rsa_signature_verifies_with_cryptography(skf: Skf) -> None:
    _, _, con = skf.open_container("gm_rsa_sign")
    der = skf.lib.export_certificate(con)
    assert der is not None
    public = x509.load_der_x509_certificate(der).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    digest_info = SHA256_DIGEST_INFO + hashlib.sha256(MESSAGE).digest()
    signature = skf.lib.rsa_sign(con, digest_info)
    assert len(signature) == 256
    public.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(E.BadInput):
        skf.lib.rsa_sign(con, b"x" * 246)  # more than k - 11 bytes
    with pytest.raises(E.MechanismUnsupported):
        _, _, sm2_con = skf.open_container("gm_company_sign")
        skf.lib.rsa_sign(sm2_con, digest_info)


def test_rsa_sign_buffer_negotiation(skf: Skf) -> None:
    _, _, con = skf.open_container("gm_rsa_sign")
    sign = skf.lib.raw("SKF_RSASignData")
    data = ctypes.create_string_buffer(b"abc", 3)
    size = skf_abi.ULONG(0)
    assert sign(con, data, 3, None, ctypes.byref(size)) == Sar.OK and size.value == 256
    short = ctypes.create_string_buffer(100)
    size.value = 100
    assert sign(con, data, 3, short, ctypes.byref(size)) == Sar.BUFFER_TOO_SMALL
    assert size.value == 256


def test_signing_needs_the_user_pin(skf: Skf) -> None:
    dev, app, con = skf.open_container("gm_company_sign", login=False)
    with pytest.raises(E.NotLoggedIn):
        skf.lib.ecc_sign(con, bytes(32))
    with pytest.raises(E.NotLoggedIn):
        skf.lib.gen_ecc_key_pair(con)
    with pytest.raises(E.NotLoggedIn):
        skf.lib.import_certificate(con, b"abc")
    skf.lib.verify_pin(app, Pin("12345678"), pin_type=skf_abi.PinType.ADMIN)
    with pytest.raises(E.NotLoggedIn):  # the admin PIN does not sign
        skf.lib.ecc_sign(con, bytes(32))
    skf.lib.verify_pin(app, Pin(USER_PIN))
    skf.lib.ecc_sign(con, bytes(32))
    skf.lib.clear_secure_state(app)
    with pytest.raises(E.NotLoggedIn):
        skf.lib.ecc_sign(con, bytes(32))
    # reading stays possible without a login
    assert skf.lib.export_certificate(con) is not None
    assert skf.lib.device_info(dev).label == skf.device("gm1")["label"]


def test_login_is_per_application_handle(skf: Skf) -> None:
    _, app_a, con_a = skf.open_container("gm_company_sign")
    _, app_b, con_b = skf.open_container("gm_company_sign", login=False)
    skf.lib.ecc_sign(con_a, bytes(32))
    with pytest.raises(E.NotLoggedIn):
        skf.lib.ecc_sign(con_b, bytes(32))
    skf.lib.clear_secure_state(app_a)
    with pytest.raises(E.NotLoggedIn):
        skf.lib.ecc_sign(con_a, bytes(32))
    assert app_a != app_b


def test_a_key_generated_in_the_device_signs(skf: Skf) -> None:
    _, app = skf.open_app("gm_empty", login=True)
    con = skf.lib.create_container(app, "新密钥")
    key = skf.lib.gen_ecc_key_pair(con)
    e = sm2.e_value(MESSAGE, (key.x, key.y))
    r, s = skf.lib.ecc_sign(con, e)
    assert gmalg.SM2(pk=key.point, uid=sm2.DEFAULT_ID).verify(
        MESSAGE, r.to_bytes(32, "big"), s.to_bytes(32, "big")
    )
    rsa_con = skf.lib.create_container(app, "rsa")
    rsa_key = skf.lib.gen_rsa_key_pair(rsa_con, 1024)
    assert rsa_key.bits == 1024 and rsa_key.e == 65537
    with pytest.raises(E.MechanismUnsupported):
        skf.lib.gen_rsa_key_pair(rsa_con, 3072)
    signature = skf.lib.rsa_sign(rsa_con, SHA256_DIGEST_INFO + hashlib.sha256(MESSAGE).digest())
    public = rsa.RSAPublicNumbers(rsa_key.e, rsa_key.n).public_key()
    public.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())
