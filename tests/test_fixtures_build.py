"""Tests of softhsm-fixtures/build.py, the builder of the test PKI and SoftHSM tokens.

The builder runs in a subprocess (SoftHSM reads SOFTHSM2_CONF at C_Initialize and
python-pkcs11 caches modules per path), and so does every inspection of the tokens: this
process never loads a PKCS#11 module, so other test files keep their own SOFTHSM2_CONF.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import stat
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from asn1crypto import core as asn1_core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "softhsm-fixtures"
BUILD = FIXTURES / "build.py"
SPEC = FIXTURES / "pki.toml"
MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
UNIQUE_ID_OID = x509.ObjectIdentifier("1.2.156.112586.1.4")
BUILD_BUDGET_SECONDS = 30
SIGNED_MESSAGE = "证书助手 fixture check".encode()

# name -> (not_before_days, not_after_days) relative to built_at, as the brief specifies.
VALIDITY = {
    "company_sign": (-30, 335),
    "company_enc": (-30, 335),
    "trade_ec": (-10, 355),
    "expiring": (-360, 5),
    "expired": (-375, -10),
}
DEMO_CERTS = {"company_sign", "company_enc", "trade_ec", "expiring", "expired"}
TEST_CERTS = DEMO_CERTS | {"corrupt", "no_key", "sm2"}
TEST_TOKENS = {"河北CA测试Key1", "河北CA测试Key2", "边界测试Key", "空Key"}
DEMO_TOKENS = {"河北CA测试Key1", "河北CA测试Key2"}

INSPECT = r"""
import hashlib, json, sys
import pkcs11
from pkcs11 import Attribute, Mechanism, ObjectClass, TokenFlag
from pkcs11.exceptions import AttributeSensitive
from pkcs11.util.ec import encode_ec_public_key, encode_ecdsa_signature
from pkcs11.util.rsa import encode_rsa_public_key

request = json.load(sys.stdin)  # PINs come on stdin, never on a command line
MESSAGE = request["message"].encode()
lib = pkcs11.lib(request["module"])

def text(value):
    return value.hex() if isinstance(value, bytes) else value

def describe(obj):
    cls = obj[Attribute.CLASS]
    item = {"class": cls.name, "id": obj[Attribute.ID].hex(), "label": obj[Attribute.LABEL],
            "token": obj[Attribute.TOKEN], "private": obj[Attribute.PRIVATE]}
    if cls == ObjectClass.CERTIFICATE:
        for name in ("VALUE", "SUBJECT", "ISSUER", "SERIAL_NUMBER"):
            try:
                item[name.lower()] = obj[getattr(Attribute, name)].hex()
            except pkcs11.PKCS11Error:
                item[name.lower()] = None
    elif cls == ObjectClass.PRIVATE_KEY:
        for name in ("SENSITIVE", "EXTRACTABLE", "ALWAYS_SENSITIVE", "NEVER_EXTRACTABLE",
                     "LOCAL", "SIGN"):
            item[name.lower()] = obj[getattr(Attribute, name)]
        item["key_type"] = obj[Attribute.KEY_TYPE].name
        try:
            obj[Attribute.PRIVATE_EXPONENT if item["key_type"] == "RSA" else Attribute.VALUE]
            item["secret_readable"] = True
        except AttributeSensitive:
            item["secret_readable"] = False
        if item["key_type"] == "RSA":
            signature = obj.sign(MESSAGE, mechanism=Mechanism.SHA256_RSA_PKCS)
        else:  # SoftHSM has no ECDSA_SHA256: hash here, sign with raw ECDSA
            raw = obj.sign(hashlib.sha256(MESSAGE).digest(), mechanism=Mechanism.ECDSA)
            signature = encode_ecdsa_signature(raw)
        item["signature"] = signature.hex()
    elif cls == ObjectClass.PUBLIC_KEY:
        item["key_type"] = obj[Attribute.KEY_TYPE].name
        encode = encode_rsa_public_key if item["key_type"] == "RSA" else encode_ec_public_key
        item["public_der"] = encode(obj).hex()
    return item

result = []
for slot in lib.get_slots(token_present=True):
    token = slot.get_token()
    if not token.flags & TokenFlag.TOKEN_INITIALIZED:
        continue  # SoftHSM's spare slot
    entry = {"label": token.label, "serial": token.serial.decode().strip(),
             "user_pin_initialized": bool(token.flags & TokenFlag.USER_PIN_INITIALIZED)}
    with token.open() as session:
        entry["public_objects"] = [describe(o) for o in session.get_objects()]
    with token.open(rw=True, user_pin=request["user_pin"]) as session:
        entry["objects"] = [describe(o) for o in list(session.get_objects())]
    result.append(entry)
json.dump(result, sys.stdout)
"""


def find_module() -> str | None:
    override = os.environ.get("SOFTHSM2_MODULE")
    candidates = (override,) if override else MODULE_CANDIDATES
    return next((c for c in candidates if Path(c).is_file()), None)


MODULE = find_module()
if MODULE is None:
    pytest.skip("SoftHSM2 is not installed", allow_module_level=True)


def run_build(outdir: Path, *args: str, spec: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, str(BUILD), str(outdir), *args]
    if spec is not None:
        command += ["--spec", str(spec)]
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run(
        command, capture_output=True, encoding="utf-8", env=env, timeout=120, check=False
    )


def inspect_tokens(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Read every token of a build in a child process; returns entries keyed by label."""
    env = {**os.environ, "SOFTHSM2_CONF": manifest["softhsm2_conf"], "PYTHONIOENCODING": "utf-8"}
    request = {
        "module": manifest["module"],
        "user_pin": spec_data()["pins"]["user_pin"],
        "message": SIGNED_MESSAGE.decode(),
    }
    done = subprocess.run(
        [sys.executable, "-c", INSPECT],
        input=json.dumps(request),
        capture_output=True,
        encoding="utf-8",
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return {entry["label"]: entry for entry in json.loads(done.stdout)}


def spec_data() -> dict[str, Any]:
    with SPEC.open("rb") as handle:
        return tomllib.load(handle)


@dataclass
class Build:
    outdir: Path
    manifest: dict[str, Any]
    stdout: str
    seconds: float

    def cert_entry(self, name: str) -> dict[str, Any]:
        return next(c for c in self.manifest["certificates"] if c["name"] == name)

    def cert(self, name: str) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der(name))

    def der(self, name: str) -> bytes:
        return bytes.fromhex(self.tokens[self.cert_entry(name)["token_label"]]["by_name"][name])

    @property
    def built_at(self) -> datetime:
        return parse_time(self.manifest["built_at"])

    @cached_property
    def tokens(self) -> dict[str, dict[str, Any]]:
        """Token contents by label; "by_name" maps manifest names to CKA_VALUE hex."""
        tokens = inspect_tokens(self.manifest)
        for token in tokens.values():
            token["by_name"] = {}
        for entry in self.manifest["certificates"]:
            certs = certificate_objects(tokens[entry["token_label"]]["objects"])
            value = next(c["value"] for c in certs if c["label"] == entry["label"])
            tokens[entry["token_label"]]["by_name"][entry["name"]] = value
        return tokens


def parse_time(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def certificate_objects(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["class"] == "CERTIFICATE"]


def objects_of(objects: list[dict[str, Any]], cls: str, label: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["class"] == cls and o["label"] == label]


def load_builder() -> ModuleType:
    loader_spec = importlib.util.spec_from_file_location("fixtures_build", BUILD)
    assert loader_spec is not None and loader_spec.loader is not None
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[loader_spec.name] = module  # dataclasses look their module up there
    loader_spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    outdir = tmp_path_factory.mktemp("fixtures") / "out"
    started = time.monotonic()
    done = run_build(outdir)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    manifest = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    return Build(outdir, manifest, done.stdout, seconds)


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    return load_builder()


# --------------------------------------------------------------------------------------------
# Build output and manifest


def test_build_is_fast(built: Build) -> None:
    assert built.seconds < BUILD_BUDGET_SECONDS


def test_summary_lists_tokens_and_not_after(built: Build) -> None:
    for label in TEST_TOKENS:
        assert label in built.stdout
    for cert in built.manifest["certificates"]:
        if cert["not_after"]:
            assert cert["not_after"] in built.stdout


def test_manifest_header(built: Build) -> None:
    manifest = built.manifest
    assert manifest["schema"] == "certhelper-fixtures/1"
    assert manifest["profile"] == "test"
    assert Path(manifest["module"]).is_file()
    assert manifest["softhsm2_conf"] == str(built.outdir / "softhsm2.conf")
    assert abs(datetime.now(UTC) - built.built_at) < timedelta(minutes=5)
    assert {t["label"] for t in manifest["tokens"]} == TEST_TOKENS
    assert all(t["so_pin_note"] == "see pki.toml" and t["serial"] for t in manifest["tokens"])
    assert {c["name"] for c in manifest["certificates"]} == TEST_CERTS
    assert [k["name"] for k in manifest["keys_without_certificate"]] == ["orphan_key"]


def test_manifest_holds_no_pin(built: Build) -> None:
    pins = set(spec_data()["pins"].values())

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for child_key, child in node.items():
                assert "pin" not in child_key.lower() or child_key == "so_pin_note"
                walk(child, child_key)
        elif isinstance(node, list):
            for child in node:
                walk(child, key)
        else:
            assert node not in pins, f"{key} holds a PIN"

    walk(built.manifest)


def test_manifest_certificate_fields(built: Build) -> None:
    serials = {t["label"]: t["serial"] for t in built.manifest["tokens"]}
    for entry in built.manifest["certificates"]:
        assert entry["token_serial"] == serials[entry["token_label"]]
        assert len(bytes.fromhex(entry["key_id"])) == 20
        assert entry["sha256"] == hashlib.sha256(built.der(entry["name"])).hexdigest()
        if entry["valid_der"]:
            cert = x509.load_der_x509_certificate(built.der(entry["name"]))
            hex_serial = format(cert.serial_number, "X")
            assert entry["serial_hex"] == hex_serial.zfill(len(hex_serial) + len(hex_serial) % 2)
            assert parse_time(entry["not_before"]) == cert.not_valid_before_utc
            assert parse_time(entry["not_after"]) == cert.not_valid_after_utc
            common_name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
            assert entry["subject_cn"] == common_name
    expected = {
        "company_sign": ("RSA", 2048, True),
        "company_enc": ("RSA", 2048, True),
        "trade_ec": ("EC", 256, True),
        "expiring": ("RSA", 2048, True),
        "expired": ("RSA", 2048, True),
        "no_key": ("RSA", 2048, False),
        "sm2": ("SM2", 256, False),
        "corrupt": (None, None, False),
    }
    for name, (key_type, bits, has_key) in expected.items():
        entry = built.cert_entry(name)
        assert (entry["key_type"], entry["key_bits"], entry["has_private_key"]) == (
            key_type,
            bits,
            has_key,
        ), name
        assert entry["valid_der"] is (name != "corrupt")


def test_softhsm_conf(built: Build) -> None:
    lines = (built.outdir / "softhsm2.conf").read_text(encoding="utf-8").splitlines()
    settings = dict(line.split(" = ", 1) for line in lines if " = " in line)
    assert settings == {
        "directories.tokendir": str(built.outdir / "tokens"),
        "objectstore.backend": "file",
        "log.level": "ERROR",
        "slots.removable": "false",
    }
    assert (built.outdir / "tokens").is_dir()


# --------------------------------------------------------------------------------------------
# CAs


def load_pem(path: str | Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def test_ca_files_and_chain(built: Build) -> None:
    ca = built.manifest["ca"]
    root, issuing = load_pem(ca["root"]), load_pem(ca["issuing"])
    assert x509.load_pem_x509_certificates(Path(ca["chain"]).read_bytes()) == [issuing, root]
    root.verify_directly_issued_by(root)
    issuing.verify_directly_issued_by(root)
    for cert, path_length, years in ((root, None, 20), (issuing, 0, 10)):
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca
        assert constraints.value.path_length == path_length
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert abs(lifetime - timedelta(days=365.25 * years)) < timedelta(days=2)
        assert cert.not_valid_before_utc < built.built_at - timedelta(days=375)
        with pytest.raises(x509.ExtensionNotFound):
            cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    root_cn = root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    issuing_cn = issuing.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert "测试" in root_cn and "Test" in root_cn and "测试" in issuing_cn


def test_ca_private_keys(built: Build) -> None:
    ca_dir = built.outdir / "ca"
    for stem in ("root-ca", "issuing-ca"):
        key_path = ca_dir / f"{stem}.key"
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = load_pem(ca_dir / f"{stem}.pem")
        assert key.public_key() == cert.public_key()


# --------------------------------------------------------------------------------------------
# Leaf certificates


def test_leaves_chain_to_issuing_ca(built: Build) -> None:
    issuing = load_pem(built.manifest["ca"]["issuing"])
    aki = issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    for name in TEST_CERTS - {"corrupt", "sm2"}:
        cert = built.cert(name)
        cert.verify_directly_issued_by(issuing)
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert ski.digest.hex() == built.cert_entry(name)["key_id"]
        assert ski.digest == x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
        auth = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        assert auth.key_identifier == aki
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_validity_offsets(built: Build) -> None:
    for name, (before, after) in VALIDITY.items():
        cert = built.cert(name)
        assert cert.not_valid_before_utc == built.built_at + timedelta(days=before), name
        assert cert.not_valid_after_utc == built.built_at + timedelta(days=after), name
    now = datetime.now(UTC)
    assert now < built.cert("expiring").not_valid_after_utc < now + timedelta(days=7)
    assert built.cert("expired").not_valid_after_utc < now


def test_chinese_subjects(built: Build) -> None:
    cert = built.cert("company_sign")
    expected = {
        NameOID.COMMON_NAME: "沧州市测试科技有限公司",
        NameOID.ORGANIZATION_NAME: "沧州市测试科技有限公司",
        NameOID.ORGANIZATIONAL_UNIT_NAME: "财务部",
        NameOID.LOCALITY_NAME: "沧州市",
        NameOID.STATE_OR_PROVINCE_NAME: "河北省",
        NameOID.COUNTRY_NAME: "CN",
    }
    for oid, value in expected.items():
        assert [a.value for a in cert.subject.get_attributes_for_oid(oid)] == [value]
    # Chinese text is a UTF8String (not BMPString or T61String); C is a PrintableString.
    for rdn in asn1_x509.Certificate.load(built.der("company_sign")).subject.chosen:
        for attribute in rdn:
            value = attribute["value"].chosen
            if attribute["type"].native == "country_name":
                assert isinstance(value, asn1_core.PrintableString)
            else:
                assert isinstance(value, asn1_core.UTF8String)
    assert built.cert("company_enc").subject == cert.subject
    common_names = {
        name: built.cert(name).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        for name in ("trade_ec", "expiring", "expired")
    }
    assert common_names == {
        "trade_ec": "沧州市测试贸易有限公司",
        "expiring": "沧州市即将到期测试有限公司",
        "expired": "沧州市已过期测试有限公司",
    }
    trade = built.cert("trade_ec").subject
    assert (
        trade.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == common_names["trade_ec"]
    )


def test_unique_id_extension(built: Build) -> None:
    for name in ("company_sign", "company_enc"):
        extension = built.cert(name).extensions.get_extension_for_oid(UNIQUE_ID_OID)
        assert not extension.critical
        assert isinstance(extension.value, x509.UnrecognizedExtension)
        value = asn1_core.load(extension.value.value)
        assert isinstance(value, asn1_core.UTF8String)
        assert value.native == "HB130900000000001"
    with pytest.raises(x509.ExtensionNotFound):
        built.cert("trade_ec").extensions.get_extension_for_oid(UNIQUE_ID_OID)


def test_key_usages(built: Build) -> None:
    sign = built.cert("company_sign").extensions
    usage = sign.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and usage.value.content_commitment
    assert not usage.value.key_encipherment
    assert list(sign.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
    ]
    enc = built.cert("company_enc").extensions.get_extension_for_class(x509.KeyUsage).value
    assert enc.key_encipherment and enc.data_encipherment
    assert not (enc.digital_signature or enc.content_commitment or enc.key_agreement)
    ec_cert = built.cert("trade_ec")
    assert ec_cert.public_key().curve.name == "secp256r1"
    ec_usage = ec_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ec_usage.digital_signature and ec_usage.content_commitment


def test_sm2_certificate(built: Build) -> None:
    der = built.der("sm2")
    cert = asn1_x509.Certificate.load(der)
    spki = cert["tbs_certificate"]["subject_public_key_info"]
    assert spki["algorithm"]["algorithm"].dotted == "1.2.840.10045.2.1"
    assert spki["algorithm"]["parameters"].chosen.dotted == "1.2.156.10197.1.301"
    point = bytes(spki["public_key"])
    assert len(point) == 65 and point[0] == 4
    assert cert["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    assert cert["tbs_certificate"]["signature"]["algorithm"].dotted == "1.2.156.10197.1.501"
    assert cert.subject.native["common_name"] == "沧州市国密测试有限公司"
    issuing = load_pem(built.manifest["ca"]["issuing"])
    assert cert.issuer.dump() == issuing.subject.public_bytes()
    assert built.cert_entry("sm2")["key_id"] == hashlib.sha1(point).hexdigest()
    parsed = x509.load_der_x509_certificate(der)  # cryptography parses it ...
    assert parsed.signature_algorithm_oid.dotted_string == "1.2.156.10197.1.501"
    with pytest.raises((UnsupportedAlgorithm, ValueError)):
        parsed.public_key()  # ... but cannot load an SM2 key


# --------------------------------------------------------------------------------------------
# Token contents (read with python-pkcs11 in a child process)


def test_tokens_present_with_serials(built: Build) -> None:
    assert set(built.tokens) == TEST_TOKENS
    for token in built.manifest["tokens"]:
        assert built.tokens[token["label"]]["serial"] == token["serial"]
        assert built.tokens[token["label"]]["user_pin_initialized"]


def test_private_keys_sensitive_non_extractable_and_generated_on_token(built: Build) -> None:
    private_keys = [
        o
        for token in built.tokens.values()
        for o in token["objects"]
        if o["class"] == "PRIVATE_KEY"
    ]
    assert len(private_keys) == 6  # five certificates with keys + the orphan
    for key in private_keys:
        assert key["sensitive"] and key["always_sensitive"], key["label"]
        assert not key["extractable"] and key["never_extractable"], key["label"]
        assert key["local"], key["label"]  # generated on the token, not imported
        assert key["private"] and key["token"] and key["sign"], key["label"]
        assert not key["secret_readable"], key["label"]


def test_private_keys_sign_for_their_certificates(built: Build) -> None:
    for entry in built.manifest["certificates"]:
        if not entry["has_private_key"]:
            continue
        objects = built.tokens[entry["token_label"]]["objects"]
        (key,) = objects_of(objects, "PRIVATE_KEY", entry["label"])
        public_key = built.cert(entry["name"]).public_key()
        signature = bytes.fromhex(key["signature"])
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, SIGNED_MESSAGE, padding.PKCS1v15(), hashes.SHA256())
        else:
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            public_key.verify(signature, SIGNED_MESSAGE, ec.ECDSA(hashes.SHA256()))


def test_private_keys_invisible_without_login(built: Build) -> None:
    for token in built.tokens.values():
        classes = {o["class"] for o in token["public_objects"]}
        assert "PRIVATE_KEY" not in classes
        public_certs = {c["label"] for c in certificate_objects(token["public_objects"])}
        assert public_certs == {c["label"] for c in certificate_objects(token["objects"])}


def test_certificates_share_id_and_label_with_their_keys(built: Build) -> None:
    for entry in built.manifest["certificates"]:
        objects = built.tokens[entry["token_label"]]["objects"]
        (cert,) = objects_of(objects, "CERTIFICATE", entry["label"])
        assert cert["id"] == entry["key_id"]
        assert cert["token"] and not cert["private"]
        private = objects_of(objects, "PRIVATE_KEY", entry["label"])
        public = objects_of(objects, "PUBLIC_KEY", entry["label"])
        if not entry["has_private_key"]:
            assert private == [] and public == [], entry["name"]
            assert all(o["id"] != entry["key_id"] for o in objects if o["class"] != "CERTIFICATE")
            continue
        assert [k["id"] for k in private] == [entry["key_id"]], entry["name"]
        assert [k["id"] for k in public] == [entry["key_id"]], entry["name"]
        on_token = serialization.load_der_public_key(bytes.fromhex(public[0]["public_der"]))
        assert on_token == built.cert(entry["name"]).public_key(), entry["name"]


def test_certificate_object_attributes(built: Build) -> None:
    for name in TEST_CERTS - {"corrupt"}:
        entry = built.cert_entry(name)
        objects = built.tokens[entry["token_label"]]["objects"]
        (obj,) = objects_of(objects, "CERTIFICATE", entry["label"])
        tbs = asn1_x509.Certificate.load(bytes.fromhex(obj["value"]))["tbs_certificate"]
        assert obj["subject"] == tbs["subject"].dump().hex()
        assert obj["issuer"] == tbs["issuer"].dump().hex()
        assert obj["serial_number"] == tbs["serial_number"].dump().hex()


def test_edge_token(built: Build) -> None:
    objects = built.tokens["边界测试Key"]["objects"]
    corrupt = built.cert_entry("corrupt")
    (obj,) = objects_of(objects, "CERTIFICATE", corrupt["label"])
    assert bytes.fromhex(obj["value"]) == b"not a DER certificate"
    assert obj["id"] == corrupt["key_id"]
    with pytest.raises(ValueError):
        x509.load_der_x509_certificate(bytes.fromhex(obj["value"]))
    (orphan,) = built.manifest["keys_without_certificate"]
    assert orphan["token_label"] == "边界测试Key" and orphan["key_type"] == "RSA"
    assert [o["id"] for o in objects_of(objects, "PRIVATE_KEY", orphan["label"])] == [
        orphan["key_id"]
    ]
    assert [o["id"] for o in objects_of(objects, "PUBLIC_KEY", orphan["label"])] == [
        orphan["key_id"]
    ]
    assert all(o["id"] != orphan["key_id"] for o in certificate_objects(objects))
    assert len(certificate_objects(objects)) == 3


def test_empty_token_has_no_objects(built: Build) -> None:
    assert built.tokens["空Key"]["objects"] == []


# --------------------------------------------------------------------------------------------
# Rebuilding, profiles and errors


def test_rebuild_without_force_is_a_noop(built: Build) -> None:
    before = snapshot(built.outdir)
    done = run_build(built.outdir)
    assert done.returncode == 0, done.stderr
    assert "already built" in done.stdout
    assert snapshot(built.outdir) == before


def snapshot(outdir: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(outdir)): (path.stat().st_mtime_ns, path.stat().st_size)
        for path in sorted(outdir.rglob("*"))
    }


def test_demo_profile_and_force_rebuild(tmp_path: Path) -> None:
    outdir = tmp_path / "demo"
    first = run_build(outdir, "--profile", "demo")
    assert first.returncode == 0, first.stderr
    manifest = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["profile"] == "demo"
    assert {t["label"] for t in manifest["tokens"]} == DEMO_TOKENS
    assert {c["name"] for c in manifest["certificates"]} == DEMO_CERTS
    assert manifest["keys_without_certificate"] == []

    second = run_build(outdir, "--profile", "demo", "--force")
    assert second.returncode == 0, second.stderr
    rebuilt = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    old_serials = {t["serial"] for t in manifest["tokens"]}
    assert {t["serial"] for t in rebuilt["tokens"]}.isdisjoint(old_serials)
    assert len(list((outdir / "tokens").iterdir())) == len(DEMO_TOKENS)
    assert set(inspect_tokens(rebuilt)) == DEMO_TOKENS


def test_refuses_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    done = run_build(tmp_path, "--force")
    assert done.returncode == 1
    assert "refusing" in done.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_unknown_profile(tmp_path: Path) -> None:
    done = run_build(tmp_path / "out", "--profile", "prod")
    assert done.returncode == 2
    assert "unknown profile 'prod'" in done.stderr
    assert not (tmp_path / "out").exists()


def test_long_token_label_is_rejected_before_building(tmp_path: Path) -> None:
    text = SPEC.read_text(encoding="utf-8").replace(
        'label = "空Key"', 'label = "河北省数字证书认证中心测试Key"', 1
    )
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    done = run_build(tmp_path / "out", spec=bad)
    assert done.returncode == 2
    assert "42 bytes" in done.stderr and "at most 32" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("schema", "nope"), "spec.schema"),
        (("token.0.label", "x" * 33), "at most 32 bytes"),
        (("token.0.profiles", ["prod"]), "undeclared profile"),
        (("pins.user_pin", "123"), "a PIN must be"),
        (("certificate.0.token", "nowhere"), "no token named 'nowhere'"),
        (("certificate.0.key", {"type": "DSA"}), "unknown key type 'DSA'"),
        (("certificate.0.key", {"type": "EC", "curve": "brainpool"}), "unsupported curve"),
        (("certificate.0.key_usage", ["sign_everything"]), "unknown usage"),
        (("certificate.0.extended_key_usage", ["bogus"]), "neither a dotted OID"),
        (("certificate.0.not_after_days", -100), "ends before it starts"),
        (("certificate.0.validity_days", 10), "exactly one of not_after_days"),
        (("certificate.0.subject", {"CN": "x", "X": "y"}), "unknown key(s) 'X'"),
        (("certificate.0.extensions", [{"oid": "1.2.x", "utf8": "a"}]), "not a dotted OID"),
        (("certificate.0.profiles", ["test"]), None),
        (("certificate.5.profiles", ["demo"]), "not among its token's profiles"),
        (("certificate.7.private_key", "token"), "SM2 key cannot be on it"),
        (("certificate.1.name", "company_sign"), "duplicate certificate/key name"),
        (("token.1.label", "河北CA测试Key1"), "duplicate token label"),
        (("key.0.key", {"type": "SM2"}), "cannot hold SM2"),
        (("key.0.label", "沧州市测试科技有限公司-签名"), None),
        (("key.0.label", "沧州市无私钥测试有限公司"), "duplicate object label"),
        (("pins.so_pin", None), "no so_pin"),
        (("certificate.0.colour", "red"), "unknown key(s) 'colour'"),
    ],
)
def test_spec_validation(builder: ModuleType, edit: tuple[str, Any], message: str | None) -> None:
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
    if message is None:
        builder.parse_spec(data, SPEC)
        return
    with pytest.raises(builder.SpecError) as caught:
        builder.parse_spec(data, SPEC)
    assert message in str(caught.value)


def test_spec_as_shipped(builder: ModuleType) -> None:
    spec = builder.load_spec(SPEC)
    assert spec.profiles == ("demo", "test")
    assert {t.label for t in spec.for_profile("demo").tokens} == DEMO_TOKENS
    assert all(t.user_pin == "123456" for t in spec.tokens)
    for token in spec.tokens:
        assert len(token.label.encode("utf-8")) <= 32
