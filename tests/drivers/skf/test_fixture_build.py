"""The SKF part of softhsm-fixtures: the SM2 PKI, the devices, the manifest, key import."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import stat
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import gmalg
import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from drivers import sm2
from drivers.skf import ContainerType, PinType, SkfLibrary
from drivers.skf.keys import EccPublicKey
from drivers.types import Pin
from tests.drivers.skf.conftest import (
    ADMIN_PIN,
    BUILD,
    SPEC,
    USER_PIN,
    SkfBuild,
    skf_build,
)

SM2_WITH_SM3 = "1.2.156.10197.1.501"
UNIQUE_ID = "1.2.156.112586.1.4"
VALIDITY = {  # name -> (not_before_days, not_after_days), as pki.toml says
    "gm_company_sign": (-30, 335),
    "gm_company_enc": (-30, 335),
    "gm_rsa_sign": (-10, 355),
    "gm_expiring": (-360, 5),
    "gm2_sign": (-15, 350),
}


def load_pem_der(path: str | Path) -> bytes:
    return pem.unarmor(Path(path).read_bytes())[2]


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def sm2_signature_ok_openssl(cert_der: bytes, issuer_der: bytes, tmp_path: Path) -> bool:
    """`openssl dgst -sm3 -sigopt distid:…` over the TBS bytes (openssl verify cannot)."""
    cert = asn1_x509.Certificate.load(cert_der)
    issuer = asn1_x509.Certificate.load(issuer_der)
    (tmp_path / "tbs.der").write_bytes(cert["tbs_certificate"].dump())
    (tmp_path / "sig.der").write_bytes(cert["signature_value"].native)
    spki = issuer["tbs_certificate"]["subject_public_key_info"].dump()
    (tmp_path / "pub.pem").write_bytes(pem.armor("PUBLIC KEY", spki))
    done = subprocess.run(
        ["openssl", "dgst", "-sm3", "-verify", str(tmp_path / "pub.pem"), "-sigopt",
         "distid:1234567812345678", "-signature", str(tmp_path / "sig.der"),
         str(tmp_path / "tbs.der")],
        capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    return done.returncode == 0 and b"Verified OK" in done.stdout


def sm2_signature_ok_gmalg(cert_der: bytes, issuer_der: bytes) -> bool:
    cert = asn1_x509.Certificate.load(cert_der)
    issuer = asn1_x509.Certificate.load(issuer_der)
    point = bytes(issuer["tbs_certificate"]["subject_public_key_info"]["public_key"])
    r, s = sm2.signature_from_der(cert["signature_value"].native)
    verifier = gmalg.SM2(pk=point, uid=sm2.DEFAULT_ID)
    return verifier.verify(
        cert["tbs_certificate"].dump(), r.to_bytes(32, "big"), s.to_bytes(32, "big")
    )


def device_certificate(build: SkfBuild, name: str) -> bytes:
    entry = build.cert(name)
    device = build.device(entry["device"])
    path = build.dir / device["device_name"] / "apps" / entry["application"] / "containers"
    return (path / entry["container"] / f"{entry['usage']}.cer").read_bytes()


# --------------------------------------------------------------------------------------------
# The SM2 PKI


def test_sm2_ca_chain_verifies(skf_build_result: SkfBuild, tmp_path: Path) -> None:
    ca = skf_build_result.section["ca"]
    root, issuing = load_pem_der(ca["root"]), load_pem_der(ca["issuing"])
    chain = pem.unarmor(Path(ca["chain"]).read_bytes(), multiple=True)
    assert [der for _, _, der in chain] == [issuing, root]
    assert sm2_signature_ok_openssl(root, root, tmp_path)
    assert sm2_signature_ok_openssl(issuing, root, tmp_path)
    assert sm2_signature_ok_gmalg(root, root) and sm2_signature_ok_gmalg(issuing, root)
    assert not sm2_signature_ok_gmalg(issuing, issuing)  # the check can fail
    for der, path_len in ((root, None), (issuing, 0)):
        cert = asn1_x509.Certificate.load(der)
        assert cert["signature_algorithm"]["algorithm"].dotted == SM2_WITH_SM3
        assert cert.ca and cert.max_path_length == path_len
        assert cert.key_usage_value.native == {"key_cert_sign", "crl_sign"}
        cn = cert.subject.native["common_name"]
        assert "测试" in cn and "Test" in cn and "SM2" in cn


def test_sm2_ca_keys(skf_build_result: SkfBuild) -> None:
    for role in ("root", "issuing"):
        cert_path = Path(skf_build_result.section["ca"][role])
        key_path = cert_path.with_suffix(".key")
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        public = subprocess.run(
            ["openssl", "pkey", "-in", str(key_path), "-pubout", "-outform", "DER"],
            capture_output=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        spki = asn1_x509.Certificate.load(load_pem_der(cert_path))["tbs_certificate"]
        assert public == spki["subject_public_key_info"].dump()


def test_device_certificates_verify(skf_build_result: SkfBuild, tmp_path: Path) -> None:
    ca = skf_build_result.section["ca"]
    sm2_issuing = load_pem_der(ca["issuing"])
    rsa_issuing = x509.load_pem_x509_certificate(
        Path(skf_build_result.manifest["ca"]["issuing"]).read_bytes()
    )
    for entry in skf_build_result.section["certificates"]:
        der = device_certificate(skf_build_result, entry["name"])
        if entry["key_type"] == "SM2":
            assert entry["issuer"] == "sm2"
            assert entry["signature_algorithm"] == SM2_WITH_SM3
            assert sm2_signature_ok_openssl(der, sm2_issuing, tmp_path), entry["name"]
            assert sm2_signature_ok_gmalg(der, sm2_issuing), entry["name"]
        else:
            assert entry["issuer"] == "rsa"
            x509.load_der_x509_certificate(der).verify_directly_issued_by(rsa_issuing)


def test_manifest_certificates(skf_build_result: SkfBuild) -> None:
    built_at = parse_time(skf_build_result.manifest["built_at"])
    section = skf_build_result.section
    assert {c["name"] for c in section["certificates"]} == set(VALIDITY)
    for entry in section["certificates"]:
        der = device_certificate(skf_build_result, entry["name"])
        cert = asn1_x509.Certificate.load(der)
        assert entry["sha256"] == hashlib.sha256(der).hexdigest()
        before, after = VALIDITY[entry["name"]]
        assert parse_time(entry["not_before"]) == built_at + timedelta(days=before)
        assert parse_time(entry["not_after"]) == built_at + timedelta(days=after)
        assert entry["subject_cn"] == cert.subject.native["common_name"]
        assert entry["key_id"] == cert.key_identifier.hex()
        assert int(entry["serial_hex"], 16) == cert.serial_number
        device = skf_build_result.device(entry["device"])
        assert entry["device_serial"] == device["serial"]
        assert entry["device_label"] == device["label"]
    expiring = skf_build_result.cert("gm_expiring")
    assert timedelta(0) < parse_time(expiring["not_after"]) - built_at < timedelta(days=7)


def test_company_pair_is_a_chinese_company_with_the_unique_id(skf_build_result: SkfBuild) -> None:
    for name in ("gm_company_sign", "gm_company_enc"):
        cert = x509.load_der_x509_certificate(device_certificate(skf_build_result, name))
        assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
            "沧州市测试科技有限公司"
        )
        unique = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(UNIQUE_ID))
        assert unique.value.value == b"\x0c\x11HB130900000000001"


def test_manifest_devices(skf_build_result: SkfBuild) -> None:
    section = skf_build_result.section
    assert Path(section["library"]).is_file() and Path(section["library_nowait"]).is_file()
    assert section["dir_env"] == "SOFTSKF_DIR"
    labels = {d["label"] for d in section["devices"]}
    assert labels == {"河北CA测试国密Key1", "河北CA测试国密Key2", "空国密Key"}
    gm1 = skf_build_result.device("gm1")
    assert [c["type"] for c in gm1["containers"]] == ["ECC", "RSA", "ECC"]
    assert gm1["containers"][0]["certificates"] == {
        "sign": "gm_company_sign",
        "enc": "gm_company_enc",
    }
    assert skf_build_result.device("gm_empty")["containers"] == []
    assert len({d["serial"] for d in section["devices"]}) == len(section["devices"])


def test_manifest_holds_no_pin(skf_build_result: SkfBuild) -> None:
    text = json.dumps(skf_build_result.manifest, ensure_ascii=False)
    for pin in (USER_PIN, ADMIN_PIN):
        assert f'"{pin}"' not in text

    def keys(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [*node, *(k for v in node.values() for k in keys(v))]
        if isinstance(node, list):
            return [k for v in node for k in keys(v)]
        return []

    assert all("pin" not in k or k == "so_pin_note" for k in keys(skf_build_result.manifest))


def test_the_soft_key_does_what_the_manifest_says(
    skf_build_result: SkfBuild, softskf_library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read the session build itself (no copy): only reads, with the published PIN."""
    monkeypatch.setenv("SOFTSKF_DIR", skf_build_result.section["dir"])
    lib = SkfLibrary(softskf_library)
    entry = skf_build_result.cert("gm2_sign")
    dev = lib.connect(entry["device_name"])
    try:
        app = lib.open_application(dev, entry["application"])
        assert lib.pin_info(app).remaining == 6
        con = lib.open_container(app, entry["container"])
        assert lib.container_type(con) == ContainerType.ECC
        der = lib.export_certificate(con)
        assert der is not None
        assert hashlib.sha256(der).hexdigest() == entry["sha256"]
    finally:
        lib.disconnect(dev)


# --------------------------------------------------------------------------------------------
# The spec


def load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("skf_fixtures_build", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    return load_builder()


def spec_data() -> dict[str, Any]:
    with SPEC.open("rb") as handle:
        return tomllib.load(handle)


def test_spec_as_shipped(builder: ModuleType) -> None:
    spec = builder.load_spec(SPEC)
    assert spec.skf is not None
    demo = spec.for_profile("demo").skf
    assert [d.label for d in demo.devices] == ["河北CA测试国密Key"]
    assert {c.usage for c in demo.certificates} == {"sign", "enc"}
    assert all(c.cert.key.type == "SM2" for c in demo.certificates)
    assert demo.devices[0].user_pin == "123456"
    test = spec.for_profile("test").skf
    assert "河北CA测试国密Key" not in {d.label for d in test.devices}
    assert "123456" not in repr(demo.devices[0])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("skf_certificate.0.device", "nowhere"), "no skf_device named 'nowhere'"),
        (("skf_certificate.0.usage", "both"), "use 'sign' or 'enc'"),
        (("skf_certificate.0.key", {"type": "EC", "curve": "secp256r1"}), "SM2 or RSA"),
        (("skf_certificate.2.key", {"type": "RSA", "bits": 3072}), "SM2 or RSA-1024/2048"),
        (("skf_certificate.1.key", {"type": "RSA", "bits": 2048}), "holds SM2 keys, not RSA"),
        (("skf_certificate.1.usage", "sign"), "duplicate SKF certificate slot"),
        (("skf_certificate.0.container", "a/b"), "must not start with '.'"),
        (("skf_certificate.0.profiles", ["demo"]), "not among its token's profiles"),
        (("skf_device.0.label", "河北省数字证书认证中心国密Key"), "1..32 bytes"),
        (("skf_device.0.user_pin", "1234"), "an SKF PIN must be 6..16 bytes"),
        (("skf_device.0.max_retries", 0), "must be 1..15"),
        (("skf_device.1.name", "gm1"), "duplicate skf_device name"),
        (("skf_device.0.colour", "red"), "unknown key(s) 'colour'"),
        (("sm2_ca", None), "need [sm2_ca.root]"),
        (("sm2_ca.root.key", {"type": "RSA"}), "unknown key(s) 'key'"),
        (("skf.application", "x" * 33), "1..32 bytes"),
        (("skf_certificate.0.extensions", [{"oid": "x", "utf8": "a"}]), "not a dotted OID"),
    ],
)
def test_spec_validation(builder: ModuleType, edit: tuple[str, Any], message: str) -> None:
    data = spec_data()
    path, value = edit
    *parents, leaf = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is None:
        del node[leaf]
    else:
        node[leaf] = value
    with pytest.raises(builder.SpecError) as caught:
        builder.parse_spec(data, SPEC)
    assert message in str(caught.value)


def test_a_spec_without_skf_builds_no_device(builder: ModuleType) -> None:
    data = {k: v for k, v in spec_data().items() if k not in skf_build.SPEC_KEYS}
    assert builder.parse_spec(data, SPEC).skf is None


# --------------------------------------------------------------------------------------------
# Importing a given key pair into a new device


def make_sm2_key_and_cert(tmp_path: Path, cn: str) -> tuple[Path, Path]:
    key, cert = tmp_path / f"{cn}.key.pem", tmp_path / f"{cn}.cer"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2",
         "-out", str(key)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "req", "-x509", "-new", "-key", str(key), "-sm3", "-sigopt",
         "distid:1234567812345678", "-subj", f"/CN={cn}", "-days", "30", "-outform", "DER",
         "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return key, cert


def test_import_command_line(tmp_path: Path, softskf_library: Path, skf_lib: SkfLibrary) -> None:
    key, cert = make_sm2_key_and_cert(tmp_path, "import-test")
    enc_key, enc_cert = make_sm2_key_and_cert(tmp_path, "import-enc")
    skf_dir = tmp_path / "skf"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("SOFTSKF_DIR", None)
    command = [
        sys.executable, str(skf_build.__file__), "import", str(skf_dir), "--device", "导入Key",
        "--container", "导入容器", "--key", str(key), "--cert", str(cert), "--enc-key",
        str(enc_key), "--enc-cert", str(enc_cert), "--label", "导入测试Key",
        "--library", str(softskf_library), "--pins-from-stdin",
    ]  # fmt: skip
    done = subprocess.run(
        command, input="13572468\n97531864\n", capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["label"] == "导入测试Key" and result["containers"][0]["type"] == "ECC"
    assert "13572468" not in done.stdout + done.stderr

    os.environ["SOFTSKF_DIR"] = str(skf_dir)
    try:
        dev = skf_lib.connect("导入Key")
        app = skf_lib.open_application(dev, "HEBCA_TEST")
        skf_lib.verify_pin(app, Pin("13572468"))
        skf_lib.verify_pin(app, Pin("97531864"), pin_type=PinType.ADMIN)
        con = skf_lib.open_container(app, "导入容器")
        assert skf_lib.export_certificate(con) == cert.read_bytes()
        assert skf_lib.export_certificate(con, sign=False) == enc_cert.read_bytes()
        public = skf_lib.export_public_key(con)
        assert isinstance(public, EccPublicKey)
        message = b"imported key signs"
        r, s = skf_lib.ecc_sign(con, sm2.e_value(message, (public.x, public.y)))
        assert gmalg.SM2(pk=public.point, uid=sm2.DEFAULT_ID).verify(
            message, r.to_bytes(32, "big"), s.to_bytes(32, "big")
        )
        skf_lib.disconnect(dev)
    finally:
        del os.environ["SOFTSKF_DIR"]

    again = subprocess.run(command, input="13572468\n97531864\n", capture_output=True, text=True,
                           env=env, timeout=120)  # fmt: skip
    assert again.returncode == 1 and "exists already" in again.stderr


def test_import_refuses_a_certificate_of_another_key(tmp_path: Path, softskf_library: Path) -> None:
    key, _ = make_sm2_key_and_cert(tmp_path, "one")
    _, other_cert = make_sm2_key_and_cert(tmp_path, "two")
    with pytest.raises(skf_build.SkfBuildError, match="does not belong to its private key"):
        skf_build.import_key_pair(
            tmp_path / "skf",
            device="mismatch",
            container="c",
            key_pem=key.read_bytes(),
            certificate=other_cert.read_bytes(),
            library=softskf_library,
        )


def test_import_rsa_key_from_python(tmp_path: Path, softskf_library: Path, skf_lib) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "RSA 导入测试")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=30))
        .sign(private, hashes.SHA256())
    )
    key_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    result = skf_build.import_key_pair(
        tmp_path / "skf",
        device="rsa-import",
        container="RSA",
        key_pem=key_pem,
        certificate=cert.public_bytes(serialization.Encoding.PEM),  # PEM is accepted
        library=softskf_library,
    )
    assert result["containers"][0]["type"] == "RSA"
    assert result["containers"][0]["certificates"][0]["key_bits"] == 2048
    assert os.environ.get("SOFTSKF_DIR") is None  # set only while importing
    with pytest.raises(ValueError, match="both an encryption key"):
        skf_build.import_key_pair(
            tmp_path / "skf", device="x", container="c", key_pem=key_pem,
            certificate=cert.public_bytes(serialization.Encoding.DER), enc_key_pem=key_pem,
            library=softskf_library,
        )  # fmt: skip


# --------------------------------------------------------------------------------------------
# The demo profile


def test_demo_profile_device(tmp_path: Path, softskf_library: Path, skf_lib: SkfLibrary) -> None:
    outdir = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, str(BUILD), str(outdir), "--profile", "demo", "--skf-library",
         str(softskf_library)],
        capture_output=True, encoding="utf-8", timeout=300, check=False,
        env={**{k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"},
             "PYTHONIOENCODING": "utf-8"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "河北CA测试国密Key" in done.stdout
    manifest = json.loads((outdir / "manifest.json").read_text("utf-8"))
    (device,) = manifest["skf"]["devices"]
    assert device["label"] == "河北CA测试国密Key"
    os.environ["SOFTSKF_DIR"] = manifest["skf"]["dir"]
    try:
        dev = skf_lib.connect(device["device_name"])
        assert skf_lib.device_info(dev).label == "河北CA测试国密Key"
        app = skf_lib.open_application(dev, device["application"])
        skf_lib.verify_pin(app, Pin("123456"))
        (container,) = skf_lib.enum_containers(app)
        con = skf_lib.open_container(app, container)
        sign, enc = skf_lib.export_certificate(con), skf_lib.export_certificate(con, sign=False)
        assert sign is not None and enc is not None
        for der in (sign, enc):
            cert = asn1_x509.Certificate.load(der)
            assert cert.subject.native["organization_name"] == "沧州市测试科技有限公司"
            assert cert["signature_algorithm"]["algorithm"].dotted == SM2_WITH_SM3
        skf_lib.disconnect(dev)
    finally:
        del os.environ["SOFTSKF_DIR"]
