"""drivers.sm2: Z and e against the GM/T 0003.5 example, gmalg and the OpenSSL command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import gmalg
import pytest
from asn1crypto import pem

from drivers import sm2
from drivers.skf.keys import EccPublicKey

# GM/T 0003.5-2012 (GB/T 32918.5-2017) signature example on the recommended curve.
KAT_D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
KAT_X = 0x09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020
KAT_Y = 0xCCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13
KAT_ID = b"1234567812345678"
KAT_MESSAGE = b"message digest"
KAT_Z = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3"
KAT_E = "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640"
KAT_K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
KAT_R = 0xF5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3
KAT_S = 0xB1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA


def test_default_id() -> None:
    assert sm2.DEFAULT_ID == b"1234567812345678"


def test_curve_is_the_sm2_curve() -> None:
    assert sm2.on_curve(sm2.GX, sm2.GY)
    assert sm2.on_curve(KAT_X, KAT_Y)
    public = gmalg.SM2(pc_mode=gmalg.PC_MODE.RAW).generate_pk(KAT_D.to_bytes(32, "big"))
    assert public == b"\x04" + KAT_X.to_bytes(32, "big") + KAT_Y.to_bytes(32, "big")
    assert sm2.N.bit_length() == 256 and sm2.P.bit_length() == 256


def test_gmt_0003_known_answers() -> None:
    assert sm2.z_value((KAT_X, KAT_Y), KAT_ID).hex().upper() == KAT_Z
    assert sm2.e_value(KAT_MESSAGE, (KAT_X, KAT_Y), KAT_ID).hex().upper() == KAT_E
    assert sm2.z_value((KAT_X, KAT_Y)) == sm2.z_value((KAT_X, KAT_Y), KAT_ID)


def test_known_signature_is_reproduced_from_e() -> None:
    """With the example's k, r = (e + x1) mod n and s follow from our e: the standard's r, s."""
    e = int.from_bytes(sm2.e_value(KAT_MESSAGE, (KAT_X, KAT_Y)), "big")
    core = gmalg.SM2(pc_mode=gmalg.PC_MODE.RAW)._core
    x1, _ = core.ecdlp.kG(KAT_K)
    r = (e + x1) % sm2.N
    s = pow(1 + KAT_D, -1, sm2.N) * (KAT_K - r * KAT_D) % sm2.N
    assert (r, s) == (KAT_R, KAT_S)


def test_public_key_forms() -> None:
    point = b"\x04" + KAT_X.to_bytes(32, "big") + KAT_Y.to_bytes(32, "big")
    z = sm2.z_value((KAT_X, KAT_Y))
    assert sm2.z_value(point) == z == sm2.z_value(point[1:])
    with pytest.raises(ValueError, match="not on the SM2 curve"):
        sm2.z_value((KAT_X, KAT_Y + 1))
    with pytest.raises(ValueError, match="65 bytes"):
        sm2.z_value(point[:40])
    with pytest.raises(ValueError, match="8191"):
        sm2.z_value(point, b"x" * 8192)


def test_z_agrees_with_gmalg_for_random_keys_and_ids() -> None:
    for uid in (b"", b"1234567812345678", "张三@测试".encode(), b"x" * 300):
        _, point = gmalg.SM2(pc_mode=gmalg.PC_MODE.RAW).generate_keypair()
        core = gmalg.SM2(pk=point, uid=uid)._core
        x, y = sm2.public_point(point)
        assert sm2.z_value(point, uid) == bytes(core.entity_info(uid, (x, y)))


def test_signature_encodings() -> None:
    der = sm2.signature_der(KAT_R, KAT_S)
    assert sm2.signature_from_der(der) == (KAT_R, KAT_S)
    assert sm2.signature_raw(KAT_R, KAT_S) == KAT_R.to_bytes(32, "big") + KAT_S.to_bytes(32, "big")
    with pytest.raises(ValueError):
        sm2.signature_der(0, KAT_S)


def openssl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=False)


def test_e_is_what_openssl_signs_with_distid(tmp_path: Path) -> None:
    """Sign the host's e with `openssl pkeyutl` (no -rawin: e as given) and verify the original
    message with `dgst -sm3 -sigopt distid:…`: OpenSSL computed the same Z and e."""
    key = tmp_path / "key.pem"
    assert (
        openssl(
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", str(key)
        ).returncode
        == 0
    )
    spki = openssl("pkey", "-in", str(key), "-pubout", "-outform", "DER").stdout
    public = tmp_path / "pub.pem"
    public.write_bytes(pem.armor("PUBLIC KEY", spki))
    message = "证书助手 SM2 测试消息".encode()
    e = sm2.e_value(message, spki[-65:])
    (tmp_path / "e.bin").write_bytes(e)
    (tmp_path / "msg.bin").write_bytes(message)
    signed = openssl("pkeyutl", "-sign", "-inkey", str(key), "-in", str(tmp_path / "e.bin"))
    assert signed.returncode == 0, signed.stderr
    (tmp_path / "sig.der").write_bytes(signed.stdout)
    verify = openssl(
        "dgst",
        "-sm3",
        "-verify",
        str(public),
        "-sigopt",
        "distid:1234567812345678",
        "-signature",
        str(tmp_path / "sig.der"),
        str(tmp_path / "msg.bin"),
    )
    assert verify.returncode == 0 and b"Verified OK" in verify.stdout, verify.stderr
    # OpenSSL's own default ID is empty: without distid the same signature fails (the trap).
    trap = openssl(
        "dgst",
        "-sm3",
        "-verify",
        str(public),
        "-signature",
        str(tmp_path / "sig.der"),
        str(tmp_path / "msg.bin"),
    )
    assert trap.returncode != 0
    r, s = sm2.signature_from_der(signed.stdout)
    verifier = gmalg.SM2(pk=EccPublicKey.from_raw(spki[-65:]).point, uid=sm2.DEFAULT_ID)
    assert verifier.verify(message, r.to_bytes(32, "big"), s.to_bytes(32, "big"))
