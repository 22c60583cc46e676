"""Devices, applications and containers of the built soft keys, through drivers.skf."""

from __future__ import annotations

import ctypes
import hashlib

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from drivers import errors as E
from drivers.skf import ContainerType, PinType, Sar
from drivers.skf import abi as skf_abi
from drivers.skf.keys import EccPublicKey, RsaPublicKey
from drivers.skf.library import parse_multistring
from drivers.types import Pin
from tests.drivers.skf.conftest import USER_PIN, Skf

TEST_DEVICES = ("gm1", "gm2", "gm_empty")

# --------------------------------------------------------------------------------------------
# Enumeration


def test_enum_devices_lists_the_built_devices_sorted(skf: Skf) -> None:
    names = [skf.device(n)["device_name"] for n in TEST_DEVICES]
    assert skf.lib.enum_devices() == sorted(names)
    assert skf.lib.enum_devices(present=False) == sorted(names)
    for name in names:
        assert skf.lib.device_present(name)
    assert not skf.lib.device_present("no such key")


def test_enum_dev_buffer_negotiation_at_the_abi(skf: Skf) -> None:
    enum_dev = skf.lib.raw("SKF_EnumDev")
    names = sorted(skf.device(n)["device_name"] for n in TEST_DEVICES)
    expected = b"".join(n.encode() + b"\0" for n in names) + b"\0"
    size = skf_abi.ULONG(0)
    assert enum_dev(1, None, ctypes.byref(size)) == Sar.OK
    assert size.value == len(expected)
    short = ctypes.create_string_buffer(len(expected) - 1)
    size.value = len(expected) - 1
    assert enum_dev(1, short, ctypes.byref(size)) == Sar.BUFFER_TOO_SMALL
    assert size.value == len(expected)
    buffer = ctypes.create_string_buffer(len(expected) + 10)
    size.value = len(buffer)
    assert enum_dev(1, buffer, ctypes.byref(size)) == Sar.OK
    assert size.value == len(expected) and buffer.raw[: size.value] == expected
    assert enum_dev(1, buffer, None) == Sar.INVALIDPARAMERR


def test_zero_devices(skf: Skf, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".staged").mkdir()  # hidden: never a device
    (empty / "no-conf").mkdir()  # no device.conf: not a device
    monkeypatch.setenv("SOFTSKF_DIR", str(empty))
    assert skf.lib.enum_devices() == []
    size = skf_abi.ULONG(0)
    assert skf.lib.raw("SKF_EnumDev")(1, None, ctypes.byref(size)) == Sar.OK
    assert size.value == 2  # "\0\0"
    monkeypatch.setenv("SOFTSKF_DIR", str(tmp_path / "absent"))
    assert skf.lib.enum_devices() == []
    monkeypatch.delenv("SOFTSKF_DIR")
    assert skf.lib.enum_devices() == []
    with pytest.raises(E.TokenAbsent):
        skf.lib.connect("SoftSKF GM 1")


def test_device_info(skf: Skf) -> None:
    for name in TEST_DEVICES:
        entry = skf.device(name)
        info = skf.lib.device_info(skf.connect(name))
        assert info.label == entry["label"]
        assert info.serial == entry["serial"]
        assert info.manufacturer == entry["manufacturer"]
        assert info.version == (1, 0)
        assert info.alg_asym_cap & skf_abi.SGD_SM2_1 and info.alg_asym_cap & skf_abi.SGD_RSA
        assert "测试" in info.issuer and info.total_space >= info.free_space


def test_connect_errors(skf: Skf) -> None:
    for name in ("no such key", "../etc", ".hidden", ""):
        with pytest.raises((E.TokenAbsent, E.BadInput)):
            skf.lib.connect(name)
    connect = skf.lib.raw("SKF_ConnectDev")
    assert connect(b"SoftSKF GM 1", None) == Sar.INVALIDPARAMERR
    assert connect(None, ctypes.byref(skf_abi.HANDLE())) == Sar.INVALIDPARAMERR


def test_bad_handles_are_refused_not_crashed_on(skf: Skf) -> None:
    info = skf_abi.DEVINFO()
    get_info = skf.lib.raw("SKF_GetDevInfo")
    for handle in (None, 1, 0xDEADBEEF, 2**40, -1 & 0xFFFFFFFFFFFFFFFF):
        assert get_info(handle, ctypes.byref(info)) == Sar.INVALIDHANDLEERR
    dev = skf.connect("gm1")
    assert get_info(dev, None) == Sar.INVALIDPARAMERR
    app = skf.lib.open_application(dev, skf.device("gm1")["application"])
    assert get_info(app, ctypes.byref(info)) == Sar.INVALIDHANDLEERR  # an app is no device
    skf.lib.disconnect(dev)
    with pytest.raises(E.TokenAbsent, match="SAR_INVALIDHANDLEERR"):
        skf.lib.device_info(dev)
    with pytest.raises(E.TokenAbsent, match="SAR_INVALIDHANDLEERR"):
        skf.lib.pin_info(app)  # closed with its device
    skf._opened.remove(dev)


def test_gen_random(skf: Skf) -> None:
    dev = skf.connect("gm1")
    first, second = skf.lib.gen_random(dev, 32), skf.lib.gen_random(dev, 32)
    assert len(first) == 32 and first != second
    assert skf.lib.gen_random(dev, 0) == b""
    with pytest.raises(E.BadInput):
        skf.lib.gen_random(dev, 1 << 20)


# --------------------------------------------------------------------------------------------
# Applications and containers


def test_applications(skf: Skf) -> None:
    dev = skf.connect("gm1")
    assert skf.lib.enum_applications(dev) == [skf.device("gm1")["application"]]
    with pytest.raises(E.ObjectNotFound):
        skf.lib.open_application(dev, "NOPE")
    with pytest.raises(E.ObjectExists):
        skf.lib.create_application(
            dev, skf.device("gm1")["application"], admin_pin=Pin("12345678"), user_pin=Pin(USER_PIN)
        )
    app = skf.lib.open_application(dev, skf.device("gm1")["application"])
    info = skf.lib.pin_info(app)
    assert (info.max_retries, info.remaining, info.is_default) == (6, 6, True)
    assert skf.lib.pin_info(app, PinType.ADMIN).remaining == 6


def test_containers_and_types(skf: Skf) -> None:
    _, app = skf.open_app("gm1")
    device = skf.device("gm1")
    expected = {c["name"]: c for c in device["containers"]}
    assert sorted(skf.lib.enum_containers(app)) == sorted(expected)
    for name, entry in expected.items():
        con = skf.lib.open_container(app, name)
        kind = skf.lib.container_type(con)
        assert kind.name == entry["type"]
        assert kind in (ContainerType.ECC, ContainerType.RSA)
        skf.lib.close_container(con)
    with pytest.raises(E.ObjectNotFound):
        skf.lib.open_container(app, "no such container")


def test_empty_device_has_an_application_and_no_container(skf: Skf) -> None:
    _, app = skf.open_app("gm_empty")
    assert skf.lib.enum_containers(app) == []
    size = skf_abi.ULONG(0)
    assert skf.lib.raw("SKF_EnumContainer")(app, None, ctypes.byref(size)) == Sar.OK
    assert size.value == 2
    raw = ctypes.create_string_buffer(2)
    assert skf.lib.raw("SKF_EnumContainer")(app, raw, ctypes.byref(size)) == Sar.OK
    assert raw.raw == b"\0\0" and parse_multistring(raw.raw) == []


def certificate_key(der: bytes) -> EccPublicKey | RsaPublicKey:
    info = asn1_x509.Certificate.load(der)["tbs_certificate"]["subject_public_key_info"]
    if info["algorithm"]["algorithm"].native == "rsa":
        parsed = info["public_key"].parsed
        return RsaPublicKey(parsed["modulus"].native, parsed["public_exponent"].native)
    return EccPublicKey.from_raw(bytes(info["public_key"]))


def test_dual_certificates_are_exported(skf: Skf) -> None:
    sign, enc = skf.cert("gm_company_sign"), skf.cert("gm_company_enc")
    assert sign["container"] == enc["container"]
    _, _, con = skf.open_container("gm_company_sign", login=False)
    sign_der = skf.lib.export_certificate(con, sign=True)
    enc_der = skf.lib.export_certificate(con, sign=False)
    assert sign_der is not None and enc_der is not None
    assert hashlib.sha256(sign_der).hexdigest() == sign["sha256"]
    assert hashlib.sha256(enc_der).hexdigest() == enc["sha256"]
    sign_cert, enc_cert = (asn1_x509.Certificate.load(d) for d in (sign_der, enc_der))
    assert sign_cert.subject == enc_cert.subject
    assert sign_cert.key_usage_value.native == {"digital_signature", "non_repudiation"}
    assert "key_encipherment" in enc_cert.key_usage_value.native
    for cert in (sign_cert, enc_cert):
        unique = [
            e
            for e in cert["tbs_certificate"]["extensions"]
            if e["extn_id"].dotted == "1.2.156.112586.1.4"
        ]
        assert len(unique) == 1 and unique[0]["extn_value"].parsed.native == "HB130900000000001"
    # the keys in the container are the certificates' keys, and the two differ
    assert skf.lib.export_public_key(con, sign=True) == certificate_key(sign_der)
    assert skf.lib.export_public_key(con, sign=False) == certificate_key(enc_der)
    assert certificate_key(sign_der) != certificate_key(enc_der)
    assert (sign["key_origin"], enc["key_origin"]) == ("device", "imported")


def test_public_key_as_subject_public_key_info(skf: Skf) -> None:
    _, _, con = skf.open_container("gm_company_sign", login=False)
    spki = asn1_keys.PublicKeyInfo.load(skf.lib.public_key_spki(con))
    assert spki["algorithm"]["algorithm"].native == "ec"
    assert spki["algorithm"]["parameters"].chosen.dotted == "1.2.156.10197.1.301"
    der = skf.lib.export_certificate(con)
    assert der is not None
    cert_spki = asn1_x509.Certificate.load(der)["tbs_certificate"]["subject_public_key_info"]
    assert spki.dump() == cert_spki.dump()
    _, _, rsa_con = skf.open_container("gm_rsa_sign", login=False)
    rsa_spki = skf.lib.public_key_spki(rsa_con)
    rsa_der = skf.lib.export_certificate(rsa_con)
    assert rsa_spki is not None and rsa_der is not None
    loaded = serialization.load_der_public_key(rsa_spki)
    assert loaded == x509.load_der_x509_certificate(rsa_der).public_key()
    assert skf.cert("gm_rsa_sign")["key_bits"] == 2048


def test_missing_certificate_and_key_read_as_none(skf: Skf) -> None:
    _, _, con = skf.open_container("gm_rsa_sign", login=False)
    assert skf.lib.export_certificate(con, sign=False) is None
    assert skf.lib.export_public_key(con, sign=False) is None
    size = skf_abi.ULONG(0)
    export = skf.lib.raw("SKF_ExportCertificate")
    assert export(con, 0, None, ctypes.byref(size)) == Sar.CERTNOTFOUNTERR
    assert export(con, 1, None, ctypes.byref(size)) == Sar.OK and size.value > 300
    short = ctypes.create_string_buffer(10)
    size.value = 10
    assert export(con, 1, short, ctypes.byref(size)) == Sar.BUFFER_TOO_SMALL
    assert size.value > 300


def test_export_public_key_blob_sizes(skf: Skf) -> None:
    export = skf.lib.raw("SKF_ExportPublicKey")
    for cert, size_expected in (("gm_company_sign", 132), ("gm_rsa_sign", 268)):
        _, _, con = skf.open_container(cert, login=False)
        size = skf_abi.ULONG(0)
        assert export(con, 1, None, ctypes.byref(size)) == Sar.OK
        assert size.value == size_expected
        size.value = size_expected - 1
        short = ctypes.create_string_buffer(size_expected - 1)
        assert export(con, 1, short, ctypes.byref(size)) == Sar.BUFFER_TOO_SMALL


def test_container_lifecycle_needs_the_user_pin(skf: Skf) -> None:
    _, app = skf.open_app("gm_empty")
    with pytest.raises(E.NotLoggedIn):
        skf.lib.create_container(app, "新容器")
    skf.lib.verify_pin(app, Pin(USER_PIN))
    con = skf.lib.create_container(app, "新容器")
    assert skf.lib.container_type(con) == ContainerType.EMPTY
    assert skf.lib.export_public_key(con) is None
    assert skf.lib.enum_containers(app) == ["新容器"]
    with pytest.raises(E.ObjectExists):
        skf.lib.create_container(app, "新容器")
    with pytest.raises(E.BadInput):
        skf.lib.create_container(app, "a/b")
    with pytest.raises(E.BadInput):
        skf.lib.create_container(app, "x" * 65)
    key = skf.lib.gen_ecc_key_pair(con)
    assert skf.lib.container_type(con) == ContainerType.ECC
    assert skf.lib.export_public_key(con) == key
    with pytest.raises(E.MechanismUnsupported):  # an ECC container takes no RSA key
        skf.lib.gen_rsa_key_pair(con, 1024)
    with pytest.raises(E.MechanismUnsupported):
        skf.lib.gen_ecc_key_pair(con, alg_id=skf_abi.SGD_RSA)
    skf.lib.clear_secure_state(app)
    with pytest.raises(E.NotLoggedIn):
        skf.lib.delete_container(app, "新容器")
    skf.lib.verify_pin(app, Pin(USER_PIN))
    skf.lib.delete_container(app, "新容器")
    assert skf.lib.enum_containers(app) == []
    with pytest.raises(E.TokenAbsent, match="SAR_INVALIDHANDLEERR"):
        skf.lib.container_type(con)  # its container is gone
    with pytest.raises(E.ObjectNotFound):
        skf.lib.delete_container(app, "新容器")


def test_both_sgd_sm2_1_values_generate(skf: Skf) -> None:
    _, app = skf.open_app("gm_empty", login=True)
    for index, alg in enumerate((skf_abi.SGD_SM2_1, skf_abi.SGD_SM2)):
        con = skf.lib.create_container(app, f"c{index}")
        assert isinstance(skf.lib.gen_ecc_key_pair(con, alg_id=alg), EccPublicKey)
        skf.lib.close_container(con)


def test_certificate_import_needs_login_and_bounds(skf: Skf) -> None:
    _, app = skf.open_app("gm_empty", login=True)
    con = skf.lib.create_container(app, "c")
    skf.lib.import_certificate(con, b"not a DER certificate", sign=False)  # stored as given
    assert skf.lib.export_certificate(con, sign=False) == b"not a DER certificate"
    with pytest.raises(E.BadInput):
        skf.lib.import_certificate(con, b"x" * 8193)
    with pytest.raises(E.BadInput):
        skf.lib.import_certificate(con, b"")
    skf.lib.clear_secure_state(app)
    with pytest.raises(E.NotLoggedIn):
        skf.lib.import_certificate(con, b"abc")
