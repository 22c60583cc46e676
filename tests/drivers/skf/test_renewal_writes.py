"""SkfDriver.generate_key_pair / write_certificate on the soft SKF key (libsoftskf):
a new SM2 key pair goes into a new container and leaves the old one alone, a renewed
certificate is written with one SKF_ImportCertificate (in place for the same key; the
old certificate of another container is then reported archived), every refusal and a
key pulled out mid-install leave the key exactly as it was, and the renewed certificate
signs. Requests are checked with gmalg and ``openssl req -verify -vfyopt distid:…``;
the certificates come from the test SM2 CA (helper.demo.ca_sm2, checked with OpenSSL).
"""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509

from drivers import errors as E
from drivers.skf.driver import SkfDriver, key_id, new_container_name, superseded
from drivers.types import CertObject, KeyPairSpec, NewCertificate, Pin, SignAlgorithm
from helper.csr import build_csr, subject_der
from helper.demo.ca_sm2 import Sm2Issuer, issue_sm2_renewal
from tests.support.skf import GmKeys
from tests.support.sm2 import gmalg_verifies, openssl_verifies, spki_of, verified_both_ways
from tests.support.tokens import USER_PIN

OLD = "即将到期"  # gm_expiring's container: its SM2 certificate expires in 5 days
MESSAGE = "续期后的签名 2026-12".encode()


def snapshot(drv: SkfDriver, serial: str) -> list[tuple[Any, ...]]:
    contents = drv.read_objects(serial)
    certs = sorted(("cert", c.key_id, c.label, c.value) for c in contents.certificates)
    keys = sorted(("key", k.key_id, k.key_type) for k in contents.private_keys)
    pubs = sorted(("pub", p.key_id, p.spki) for p in drv.public_keys(serial))
    return [*certs, *keys, *pubs]


def old_cert(drv: SkfDriver, serial: str, container: str = OLD) -> CertObject:
    kid = key_id(container, sign=True)
    return next(c for c in drv.read_objects(serial).certificates if c.key_id == kid)


def issuer(gm: GmKeys) -> Sm2Issuer:
    issuing = Path(gm.section["ca"]["issuing"])
    return Sm2Issuer.load(issuing, issuing.with_suffix(".key"))


def request(drv: SkfDriver, serial: str, old: CertObject, kid: bytes, spki: bytes) -> bytes:
    return build_csr(
        subject_der(old.value),
        spki,
        lambda tbs: drv.sign(serial, kid, tbs, SignAlgorithm.SM2_SM3),
        algorithm=SignAlgorithm.SM2_SM3,
    )


def openssl_req_verifies(csr: bytes, tmp: Path, *, distid: bool = True) -> bool:
    path = tmp / "req.der"
    path.write_bytes(csr)
    args = ["openssl", "req", "-inform", "DER", "-in", str(path), "-noout", "-verify"]
    if distid:
        args += ["-vfyopt", "distid:1234567812345678"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode == 0 and "verify OK" in (done.stdout + done.stderr)


def renewed(gm: GmKeys, old: CertObject, csr: bytes) -> bytes:
    return issue_sm2_renewal(old.value, csr, issuer(gm), datetime.now(UTC)).der


@pytest.fixture
def gm1(skf_driver: SkfDriver, gm_keys: GmKeys) -> str:
    serial = gm_keys.serial("gm1")
    skf_driver.login(serial, Pin(USER_PIN))
    return serial


def test_capabilities_declare_generation_and_writes(skf_driver: SkfDriver) -> None:
    caps = skf_driver.capabilities
    assert caps.key_generation == {"SM2", "RSA"}
    assert caps.certificate_writes and caps.one_certificate_per_key


def test_new_sm2_key_goes_into_a_new_container(
    skf_driver: SkfDriver, gm_keys: GmKeys, gm1: str, tmp_path: Path
) -> None:
    before = snapshot(skf_driver, gm1)
    old = old_cert(skf_driver, gm1)
    created = skf_driver.generate_key_pair(gm1, KeyPairSpec("SM2", bits=256), OLD)
    container = created.label
    assert container.startswith(OLD + "-r") and created.key_id == key_id(container, sign=True)
    info = asn1_keys.PublicKeyInfo.load(created.spki)
    assert info["algorithm"]["parameters"].chosen.dotted == "1.2.156.10197.1.301"
    assert created.spki != spki_of(old.value)

    # the old container is exactly as it was; the new one holds the key, no certificate
    after = snapshot(skf_driver, gm1)
    assert set(before) < set(after)
    added = set(after) - set(before)
    assert added == {
        ("key", created.key_id, "SM2"),
        ("pub", created.key_id, created.spki),
    }
    device = gm_keys.device_path("gm1") / "apps" / "HEBCA_TEST" / "containers" / container
    assert (device / "sign.key.pem").is_file() and not (device / "sign.cer").exists()

    # the request: SM2-with-SM3 by the new key, the old subject byte for byte
    csr = request(skf_driver, gm1, old, created.key_id, created.spki)
    req = asn1_csr.CertificationRequest.load(csr)
    assert req["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    assert req["certification_request_info"]["subject"].dump() == subject_der(old.value)
    assert req["certification_request_info"]["subject_pk_info"].dump() == created.spki
    tbs = req["certification_request_info"].dump()
    signature = bytes(req["signature"])
    assert gmalg_verifies(created.spki, tbs, signature)
    assert openssl_verifies(created.spki, tbs, signature)
    assert openssl_req_verifies(csr, tmp_path)
    # the distid trap: OpenSSL's default (empty) ID does not verify a GM/T 0009 request
    assert not openssl_req_verifies(csr, tmp_path, distid=False)
    assert not gmalg_verifies(spki_of(old.value), tbs, signature)


def test_generation_needs_a_login_and_a_supported_spec(
    skf_driver: SkfDriver, gm_keys: GmKeys
) -> None:
    serial = gm_keys.serial("gm1")
    before = snapshot(skf_driver, serial)
    with pytest.raises(E.NotLoggedIn):
        skf_driver.generate_key_pair(serial, KeyPairSpec("SM2", bits=256), OLD)
    skf_driver.login(serial, Pin(USER_PIN))
    with pytest.raises(E.MechanismUnsupported):
        skf_driver.generate_key_pair(serial, KeyPairSpec("EC", ec_params=b"\x06\x01\x00"), OLD)
    with pytest.raises(E.MechanismUnsupported):
        skf_driver.generate_key_pair(serial, KeyPairSpec("RSA", bits=4096), OLD)
    assert snapshot(skf_driver, serial) == before


def test_same_key_install_replaces_the_certificate_in_place(
    skf_driver: SkfDriver, gm_keys: GmKeys, gm1: str
) -> None:
    old = old_cert(skf_driver, gm1)
    kid = key_id(OLD, sign=True)
    csr = request(skf_driver, gm1, old, kid, spki_of(old.value))
    der = renewed(gm_keys, old, csr)
    keys_before = skf_driver.read_objects(gm1).private_keys
    skf_driver.write_certificate(
        gm1, NewCertificate.from_der(der, key_id=kid, label=OLD), replace=old
    )
    now = old_cert(skf_driver, gm1)
    assert (now.value, now.label) == (der, OLD)
    values = [c.value for c in skf_driver.read_objects(gm1).certificates]
    assert old.value not in values  # one slot: the old certificate is replaced
    assert skf_driver.read_objects(gm1).private_keys == keys_before
    signature = skf_driver.sign(gm1, kid, MESSAGE, SignAlgorithm.SM2_SM3)
    assert verified_both_ways(der, MESSAGE, signature)


def test_new_key_install_leaves_the_old_certificate_archived(
    skf_driver: SkfDriver, gm_keys: GmKeys, gm1: str
) -> None:
    old = old_cert(skf_driver, gm1)
    created = skf_driver.generate_key_pair(gm1, KeyPairSpec("SM2", bits=256), OLD)
    der = renewed(gm_keys, old, request(skf_driver, gm1, old, created.key_id, created.spki))
    keys_before = skf_driver.read_objects(gm1).private_keys
    skf_driver.write_certificate(
        gm1,
        NewCertificate.from_der(der, key_id=created.key_id, label=created.label),
        replace=old,
        archive_label="ignored-on-skf",
    )
    certs = {c.value: c for c in skf_driver.read_objects(gm1).certificates}
    assert certs[der].label == created.label and certs[der].key_id == created.key_id
    kept = certs[old.value]  # still there with its key, never used again
    assert kept.key_id == old.key_id
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    assert kept.label == f"archived-{stamp}:{OLD}"
    assert skf_driver.read_objects(gm1).private_keys == keys_before
    # the other certificates of the key are untouched
    for name in ("gm_company_sign", "gm_company_enc", "gm_rsa_sign"):
        sha = gm_keys.cert(name)["sha256"]
        (c,) = [c for c in certs.values() if hashlib.sha256(c.value).hexdigest() == sha]
        assert not c.label.startswith("archived-")
    signature = skf_driver.sign(gm1, created.key_id, MESSAGE, SignAlgorithm.SM2_SM3)
    assert verified_both_ways(der, MESSAGE, signature)


def test_refused_writes_leave_the_key_as_it_was(
    skf_driver: SkfDriver, gm_keys: GmKeys, gm1: str
) -> None:
    old = old_cert(skf_driver, gm1)
    kid = key_id(OLD, sign=True)
    der = renewed(gm_keys, old, request(skf_driver, gm1, old, kid, spki_of(old.value)))
    before = snapshot(skf_driver, gm1)
    other = key_id("沧州市测试科技有限公司", sign=True)
    with pytest.raises(E.BadInput):  # the certificate is not for that container's key
        skf_driver.write_certificate(gm1, NewCertificate.from_der(der, key_id=other, label="x"))
    with pytest.raises(E.MechanismUnsupported):  # encryption certificates: not here
        enc = key_id(OLD, sign=False)
        skf_driver.write_certificate(gm1, NewCertificate.from_der(der, key_id=enc, label="x"))
    with pytest.raises(E.CertificateExists):
        skf_driver.write_certificate(gm1, NewCertificate.from_der(old.value, key_id=kid, label=OLD))
    gone = CertObject(kid, OLD, b"not on the key")
    with pytest.raises(E.TokenChanged):
        skf_driver.write_certificate(
            gm1, NewCertificate.from_der(der, key_id=kid, label=OLD), replace=gone
        )
    with pytest.raises(E.KeyNotFound):
        missing = key_id("没有这个容器", sign=True)
        skf_driver.write_certificate(gm1, NewCertificate.from_der(der, key_id=missing, label="x"))
    assert snapshot(skf_driver, gm1) == before
    skf_driver.logout(gm1)
    with pytest.raises(E.NotLoggedIn):
        skf_driver.write_certificate(gm1, NewCertificate.from_der(der, key_id=kid, label=OLD))
    assert snapshot(skf_driver, gm1) == before


@pytest.mark.parametrize("new_key", [False, True], ids=["same-key", "new-key"])
def test_key_pulled_out_during_the_import_writes_nothing(
    skf_driver: SkfDriver, gm_keys: GmKeys, gm1: str, new_key: bool
) -> None:
    """The device disappears between the driver's checks and SKF_ImportCertificate
    (the real library then answers SAR_DEVICE_REMOVED): nothing is written, the old
    certificate stays the current one and still signs after re-insertion."""
    old = old_cert(skf_driver, gm1)
    if new_key:
        created = skf_driver.generate_key_pair(gm1, KeyPairSpec("SM2", bits=256), OLD)
        kid, spki, label = created.key_id, created.spki, created.label
    else:
        kid, spki, label = key_id(OLD, sign=True), spki_of(old.value), OLD
    der = renewed(gm_keys, old, request(skf_driver, gm1, old, kid, spki))
    before = snapshot(skf_driver, gm1)

    real_import = skf_driver.lib.import_certificate
    pulled: list[Path] = []

    def pull_then_import(con: Any, data: bytes, sign: bool = True) -> None:
        pulled.append(gm_keys.pull_out("gm1"))
        real_import(con, data, sign)

    skf_driver.lib.import_certificate = pull_then_import  # type: ignore[method-assign]
    try:
        with pytest.raises(E.TokenAbsent):
            skf_driver.write_certificate(
                gm1, NewCertificate.from_der(der, key_id=kid, label=label), replace=old
            )
    finally:
        skf_driver.lib.import_certificate = real_import  # type: ignore[method-assign]
    assert pulled
    gm_keys.plug_in(pulled[0], "gm1")
    assert snapshot(skf_driver, gm1) == before
    current = old_cert(skf_driver, gm1)
    assert current.value == old.value and current.label == OLD  # not archived
    assert not skf_driver.is_logged_in(gm1)  # the pull dropped the login
    skf_driver.login(gm1, Pin(USER_PIN))
    signature = skf_driver.sign(gm1, key_id(OLD, sign=True), MESSAGE, SignAlgorithm.SM2_SM3)
    assert verified_both_ways(old.value, MESSAGE, signature)
    # and the install can be done again
    skf_driver.write_certificate(
        gm1, NewCertificate.from_der(der, key_id=kid, label=label), replace=old
    )
    assert der in [c.value for c in skf_driver.read_objects(gm1).certificates]


def test_renewed_certificate_verifies_with_openssl(
    skf_driver: SkfDriver, gm_keys: GmKeys, gm1: str
) -> None:
    """The test CA's SM2-with-SM3 signature over the TBS, checked by OpenSSL (distid)."""
    old = old_cert(skf_driver, gm1)
    kid = key_id(OLD, sign=True)
    der = renewed(gm_keys, old, request(skf_driver, gm1, old, kid, spki_of(old.value)))
    cert = asn1_x509.Certificate.load(der)
    assert cert["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    issuing = Path(gm_keys.section["ca"]["issuing"]).read_bytes()
    _, _, issuing_der = pem.unarmor(issuing)
    tbs, signature = cert["tbs_certificate"].dump(), bytes(cert["signature_value"])
    assert openssl_verifies(spki_of(issuing_der), tbs, signature)
    assert gmalg_verifies(spki_of(issuing_der), tbs, signature)
    assert not gmalg_verifies(spki_of(old.value), tbs, signature)


def test_superseded_needs_another_container_the_same_names_and_algorithm(
    skf_driver: SkfDriver, gm_keys: GmKeys, gm1: str
) -> None:
    old = old_cert(skf_driver, gm1)
    kid = key_id(OLD, sign=True)
    der = renewed(gm_keys, old, request(skf_driver, gm1, old, kid, spki_of(old.value)))
    elsewhere = CertObject(key_id("新容器", sign=True), "新容器", der)
    assert superseded([old, elsewhere])[0].label.startswith("archived-")
    # the same container (one slot: never both), an encryption slot, an older renewal
    same = CertObject(kid, OLD, der)
    assert superseded([old, same]) == [old, same]
    enc = CertObject(key_id("新容器", sign=False), "新容器", der)
    assert superseded([old, enc]) == [old, enc]
    assert superseded([elsewhere, old])[0] == elsewhere
    # a certificate of the same holder with an RSA key does not supersede an SM2 one
    cert = asn1_x509.Certificate.load(der)
    rsa_spki = spki_of(
        next(
            c.value
            for c in skf_driver.read_objects(gm1).certificates
            if c.key_id == key_id("RSA-2048", sign=True)
        )
    )
    tbs = cert["tbs_certificate"].copy()
    tbs["subject_public_key_info"] = asn1_keys.PublicKeyInfo.load(rsa_spki)
    rsa = asn1_x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": cert["signature_algorithm"].copy(),
            "signature_value": bytes(cert["signature_value"]),
        }
    ).dump()
    other_algorithm = CertObject(key_id("RSA新容器", sign=True), "RSA新容器", rsa)
    assert superseded([old, other_algorithm]) == [old, other_algorithm]
    # unreadable certificates are listed as they are
    junk = CertObject(key_id("坏证书", sign=True), "坏证书", b"\x30\x03junk")
    assert superseded([old, junk]) == [old, junk]


def test_new_container_names() -> None:
    name = new_container_name(OLD, set())
    assert name.startswith(OLD + "-r") and len(name) == len(OLD) + 10
    again = new_container_name(name, {name})  # a renewal of a renewal: one suffix
    assert again.startswith(OLD + "-r") and again != name
    long = new_container_name("容" * 40, set())
    assert len(long.encode()) <= 64 and long.endswith(long[-8:])
    assert new_container_name("/.\n", set()).startswith("certhelper-r")


def test_a_failed_generation_leaves_no_container(
    skf_driver: SkfDriver, gm_keys: GmKeys, gm1: str
) -> None:
    """SKF_GenECCKeyPair failing (the soft key cannot be made to fail it, so the binding's
    call raises here, as the library's error would) deletes the new, still empty container."""
    before = snapshot(skf_driver, gm1)

    def failing(con: Any, alg_id: int = 0) -> Any:
        raise E.DeviceError(detail="SKF_GenECCKeyPair failed (test)")

    skf_driver.lib.gen_ecc_key_pair = failing  # type: ignore[method-assign,assignment]
    try:
        with pytest.raises(E.DeviceError):
            skf_driver.generate_key_pair(gm1, KeyPairSpec("SM2", bits=256), OLD)
    finally:
        del skf_driver.lib.gen_ecc_key_pair
    assert snapshot(skf_driver, gm1) == before
    serial_dir = gm_keys.device_path("gm1") / "apps" / "HEBCA_TEST" / "containers"
    assert not any(p.name.startswith(OLD + "-r") for p in serial_dir.iterdir())


def test_writes_persist_for_another_process(
    skf_driver: SkfDriver, gm_keys: GmKeys, gm1: str
) -> None:
    """What one driver wrote is on the key: a second driver (a fresh library state) reads
    the new key pair and certificate and signs with them."""
    old = old_cert(skf_driver, gm1)
    created = skf_driver.generate_key_pair(gm1, KeyPairSpec("SM2", bits=256), OLD)
    der = renewed(gm_keys, old, request(skf_driver, gm1, old, created.key_id, created.spki))
    skf_driver.write_certificate(
        gm1, NewCertificate.from_der(der, key_id=created.key_id, label=created.label), replace=old
    )
    skf_driver.close()
    other = SkfDriver(gm_keys.library, timeout=30)
    try:
        certs = {c.value: c for c in other.read_objects(gm1).certificates}
        assert certs[der].key_id == created.key_id
        assert certs[old.value].label.startswith("archived-")
        other.login(gm1, Pin(USER_PIN))
        signature = other.sign(gm1, created.key_id, MESSAGE, SignAlgorithm.SM2_SM3)
        assert verified_both_ways(der, MESSAGE, signature)
    finally:
        other.close()
