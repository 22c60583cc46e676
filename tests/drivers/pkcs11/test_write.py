"""The driver's renewal writes against real SoftHSM: public keys, key generation on
the token, and all-or-nothing certificate writes (each test on its own token copy)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import pkcs11
import pkcs11._pkcs11 as p11impl
import pkcs11.exceptions as pe
import pytest
from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from drivers import errors as E
from drivers.pkcs11.driver import Pkcs11Driver
from drivers.types import CertObject, KeyPairSpec, NewCertificate, Pin, SignAlgorithm
from tests.support.renewal import LABEL, PluggedToken
from tests.support.tokens import USER_PIN

RSA_LABEL = "沧州市续期测试有限公司"  # spec.toml: renew_rsa
EC_LABEL = "沧州市续期测试贸易公司"  # spec.toml: renew_ec
ARCHIVE_LABEL = "沧州市续期测试有限公司（已过期）"
P256 = KeyPairSpec("EC", ec_params=encode_named_curve_parameters("secp256r1"))
RSA2048 = KeyPairSpec("RSA", bits=2048)

Row = tuple[int, str, bytes, bytes]  # (class, label, id, value)


# --- helpers: raw views of the token, taken on the driver's worker thread ----------


def _raw(obj: Any, attr: Attribute) -> Any:
    try:
        return obj[attr]
    except pe.PKCS11Error:
        return None


def _with_session(driver: Pkcs11Driver, serial: str, fn: Callable[[Any], Any]) -> Any:
    """Run ``fn(session)`` in a plain read-only session of the token, on the worker."""

    def run() -> Any:
        for slot in pkcs11.lib(driver.module_path).get_slots(token_present=True):
            try:
                token = slot.get_token()
            except pe.PKCS11Error:
                continue
            if token.serial.decode().strip() == serial and token.label.strip() == LABEL:
                with token.open() as session:
                    return fn(session)
        raise AssertionError(f"token {serial} not found")

    return driver.worker.call(run)


def listing(driver: Pkcs11Driver, serial: str) -> list[Row]:
    """(class, label, id, value) of every object the token shows without login."""
    assert not driver.is_logged_in(serial), "the listing is the view without login"

    def rows(session: Any) -> list[Row]:
        return sorted(
            (
                int(o[Attribute.CLASS]),
                o[Attribute.LABEL],
                _raw(o, Attribute.ID) or b"",
                _raw(o, Attribute.VALUE) or b"",
            )
            for o in session.get_objects()
        )

    return _with_session(driver, serial, rows)


def object_attrs(
    driver: Pkcs11Driver, serial: str, cls: ObjectClass, key_id: bytes, attrs: list[Attribute]
) -> list[dict[Attribute, Any]]:
    """Chosen attributes of every object of ``cls`` with ``key_id`` (private ones
    only while the driver is logged in)."""

    def read(session: Any) -> list[dict[Attribute, Any]]:
        found = session.get_objects({Attribute.CLASS: cls, Attribute.ID: key_id})
        return [{a: _raw(o, a) for a in attrs} for o in found]

    return _with_session(driver, serial, read)


def private_key_ids(driver: Pkcs11Driver, serial: str) -> list[bytes]:
    driver.login(serial, Pin(USER_PIN))
    try:
        keys = driver.read_objects(serial).private_keys
    finally:
        driver.logout(serial)
    assert all(not k.from_public_key for k in keys)
    return sorted(k.key_id for k in keys)


def cert_object(driver: Pkcs11Driver, serial: str, label: str) -> CertObject:
    (found,) = [c for c in driver.read_objects(serial).certificates if c.label == label]
    return found


def issue(token: PluggedToken, public_key: Any, cn: str) -> x509.Certificate:
    """A certificate for ``public_key`` from the renewal test CA."""
    ca = token.pki.issuing_cert()
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(token.pki.issuing_key(), hashes.SHA256())
    )


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def generate(driver: Pkcs11Driver, serial: str, spec: KeyPairSpec, label: str) -> Any:
    driver.login(serial, Pin(USER_PIN))
    try:
        return driver.generate_key_pair(serial, spec, label)
    finally:
        driver.logout(serial)


# --- public keys ----------------------------------------------------------------


def test_public_keys_match_the_certificates(driver: Pkcs11Driver, renewal_token) -> None:
    serial = renewal_token.serial
    certs = driver.read_objects(serial).certificates
    assert len(certs) == 3
    keys = driver.public_keys(serial)
    by_id = {k.key_id: k for k in keys}
    assert len(by_id) == len(keys) == 3
    kinds: set[str] = set()
    for c in certs:
        public = x509.load_der_x509_certificate(c.value).public_key()
        spki = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert by_id[c.key_id].spki == spki, c.label
        assert by_id[c.key_id].label == c.label
        kinds.add("RSA" if isinstance(public, rsa.RSAPublicKey) else "EC")
    assert kinds == {"RSA", "EC"}

    driver.login(serial, Pin(USER_PIN))  # the login's session gives the same answer
    try:
        assert sorted(driver.public_keys(serial), key=lambda k: k.key_id) == sorted(
            keys, key=lambda k: k.key_id
        )
    finally:
        driver.logout(serial)


def test_public_keys_skips_what_it_cannot_encode(driver: Pkcs11Driver, renewal_token) -> None:
    """A DSA public key (no SPKI encoding here) is left out, without an error."""
    serial = renewal_token.serial
    numbers = dsa.generate_private_key(2048).public_key().public_numbers()

    def big(n: int) -> bytes:
        return n.to_bytes((n.bit_length() + 7) // 8, "big")

    def add_dsa(session: Any) -> None:
        session.create_object(
            {
                Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                Attribute.KEY_TYPE: KeyType.DSA,
                Attribute.TOKEN: True,
                Attribute.LABEL: "dsa",
                Attribute.ID: b"dsa",
                Attribute.PRIME: big(numbers.parameter_numbers.p),
                Attribute.SUBPRIME: big(numbers.parameter_numbers.q),
                Attribute.BASE: big(numbers.parameter_numbers.g),
                Attribute.VALUE: big(numbers.y),
            }
        )

    def run() -> None:
        for slot in pkcs11.lib(driver.module_path).get_slots(token_present=True):
            try:
                token = slot.get_token()
            except pe.PKCS11Error:
                continue
            if token.serial.decode().strip() == serial:
                with token.open(rw=True) as session:
                    add_dsa(session)

    driver.worker.call(run)
    assert b"dsa" in {row[2] for row in listing(driver, serial)}
    keys = driver.public_keys(serial)
    assert len(keys) == 3 and b"dsa" not in {k.key_id for k in keys}


# --- key generation ---------------------------------------------------------------


def test_generate_rsa_and_ec_key_pairs(driver: Pkcs11Driver, renewal_token) -> None:
    serial = renewal_token.serial
    before_ids = {row[2] for row in listing(driver, serial)}
    driver.login(serial, Pin(USER_PIN))
    try:
        made = {
            "RSA": driver.generate_key_pair(serial, RSA2048, "新RSA密钥"),
            "EC": driver.generate_key_pair(serial, P256, "新EC密钥"),
        }
        for kind, pub in made.items():
            assert len(pub.key_id) == 20 and pub.key_id not in before_ids
            assert pub.label == ("新RSA密钥" if kind == "RSA" else "新EC密钥")
            public = serialization.load_der_public_key(pub.spki)
            # SubjectPublicKeyInfo exactly (cryptography would also load bare PKCS#1)
            assert pub.spki == public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            data = f"续期 {kind}".encode()
            if kind == "RSA":
                assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
                assert public.public_numbers().e == 65537
                sig = driver.sign(serial, pub.key_id, data, SignAlgorithm.RSA_PKCS1_SHA256)
                public.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
            else:
                assert isinstance(public, ec.EllipticCurvePublicKey)
                assert isinstance(public.curve, ec.SECP256R1)
                sig = driver.sign(serial, pub.key_id, data, SignAlgorithm.ECDSA_SHA256)
                public.verify(sig, data, ec.ECDSA(hashes.SHA256()))

            (priv,) = object_attrs(
                driver,
                serial,
                ObjectClass.PRIVATE_KEY,
                pub.key_id,
                [
                    Attribute.TOKEN,
                    Attribute.PRIVATE,
                    Attribute.SENSITIVE,
                    Attribute.ALWAYS_SENSITIVE,
                    Attribute.EXTRACTABLE,
                    Attribute.NEVER_EXTRACTABLE,
                    Attribute.SIGN,
                    Attribute.DECRYPT,
                    Attribute.UNWRAP,
                    Attribute.LABEL,
                ],
            )
            assert priv[Attribute.TOKEN] and priv[Attribute.PRIVATE]
            assert priv[Attribute.SENSITIVE] and priv[Attribute.ALWAYS_SENSITIVE]
            assert priv[Attribute.EXTRACTABLE] is False
            assert priv[Attribute.NEVER_EXTRACTABLE] is True
            assert priv[Attribute.SIGN] is True
            assert not priv[Attribute.DECRYPT] and not priv[Attribute.UNWRAP]
            assert priv[Attribute.LABEL] == pub.label
            (public_obj,) = object_attrs(
                driver,
                serial,
                ObjectClass.PUBLIC_KEY,
                pub.key_id,
                [Attribute.TOKEN, Attribute.PRIVATE, Attribute.VERIFY, Attribute.LABEL],
            )
            assert public_obj == {
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.VERIFY: True,
                Attribute.LABEL: pub.label,
            }
        assert made["RSA"].key_id != made["EC"].key_id
        contents = driver.read_objects(serial)
        ids = {k.key_id for k in contents.private_keys if not k.from_public_key}
        assert {made["RSA"].key_id, made["EC"].key_id} <= ids
    finally:
        driver.logout(serial)
    # the public halves are visible without login, with the SPKI that was returned
    public = {k.key_id: k.spki for k in driver.public_keys(serial)}
    assert public[made["RSA"].key_id] == made["RSA"].spki
    assert public[made["EC"].key_id] == made["EC"].spki


def test_generate_needs_login(driver: Pkcs11Driver, renewal_token) -> None:
    serial = renewal_token.serial
    before = listing(driver, serial)
    with pytest.raises(E.NotLoggedIn):
        driver.generate_key_pair(serial, RSA2048, "不应出现")
    with pytest.raises(E.NotLoggedIn):
        driver.generate_key_pair(serial, P256, "不应出现")
    assert listing(driver, serial) == before
    assert len(private_key_ids(driver, serial)) == 3


def test_generate_refuses_unknown_key_types(driver: Pkcs11Driver, renewal_token) -> None:
    serial = renewal_token.serial
    before = listing(driver, serial)
    driver.login(serial, Pin(USER_PIN))
    try:
        with pytest.raises(E.MechanismUnsupported):
            driver.generate_key_pair(serial, KeyPairSpec("SM2"), "不应出现")
        with pytest.raises(E.BadInput):
            driver.generate_key_pair(serial, KeyPairSpec("RSA"), "不应出现")
    finally:
        driver.logout(serial)
    assert listing(driver, serial) == before


# --- certificate writing --------------------------------------------------------------


def renewed(driver: Pkcs11Driver, token: PluggedToken, spec: KeyPairSpec) -> NewCertificate:
    """A new key pair on the token and a CA-issued certificate for it."""
    pub = generate(driver, token.serial, spec, "续期密钥")
    cert = issue(token, serialization.load_der_public_key(pub.spki), "沧州市续期测试有限公司")
    return NewCertificate.from_der(der(cert), key_id=pub.key_id, label="沧州市续期测试有限公司-新")


def test_write_with_archive(driver: Pkcs11Driver, renewal_token) -> None:
    serial = renewal_token.serial
    new = renewed(driver, renewal_token, RSA2048)
    old = cert_object(driver, serial, RSA_LABEL)
    keys_before = private_key_ids(driver, serial)
    listing_before = listing(driver, serial)

    driver.write_certificate(serial, new, replace=old, archive_label=ARCHIVE_LABEL)

    certs = driver.read_objects(serial).certificates
    assert len(certs) == 4
    (written,) = [c for c in certs if c.value == new.der]
    assert (written.key_id, written.label) == (new.key_id, new.label)
    (archived,) = [c for c in certs if c.label == ARCHIVE_LABEL]
    assert (archived.value, archived.key_id) == (old.value, old.key_id)
    assert RSA_LABEL not in {c.label for c in certs}
    assert private_key_ids(driver, serial) == keys_before
    after = listing(driver, serial)
    key_rows = [r for r in after if r[0] != ObjectClass.CERTIFICATE]
    assert key_rows == [r for r in listing_before if r[0] != ObjectClass.CERTIFICATE]

    (attrs,) = object_attrs(
        driver,
        serial,
        ObjectClass.CERTIFICATE,
        new.key_id,
        [
            Attribute.TOKEN,
            Attribute.PRIVATE,
            Attribute.CERTIFICATE_TYPE,
            Attribute.SUBJECT,
            Attribute.ISSUER,
            Attribute.SERIAL_NUMBER,
        ],
    )
    cert = x509.load_der_x509_certificate(new.der)
    assert attrs[Attribute.TOKEN] is True and attrs[Attribute.PRIVATE] is False
    assert attrs[Attribute.CERTIFICATE_TYPE] == pkcs11.CertificateType.X_509
    assert attrs[Attribute.SUBJECT] == cert.subject.public_bytes()
    assert attrs[Attribute.ISSUER] == renewal_token.pki.issuing_cert().subject.public_bytes()
    assert asn1_core.Integer.load(attrs[Attribute.SERIAL_NUMBER]).native == cert.serial_number


def test_write_replacing_while_logged_in(driver: Pkcs11Driver, renewal_token) -> None:
    """archive_label None: the old certificate object goes; keys stay. Logged in,
    the login's session does the write and the login survives it."""
    serial = renewal_token.serial
    new = renewed(driver, renewal_token, P256)
    old = cert_object(driver, serial, EC_LABEL)
    keys_before = private_key_ids(driver, serial)
    key_rows_before = [r for r in listing(driver, serial) if r[0] != ObjectClass.CERTIFICATE]

    driver.login(serial, Pin(USER_PIN))
    try:
        driver.write_certificate(serial, new, replace=old)
        assert driver.is_logged_in(serial)
        certs = driver.read_objects(serial).certificates
    finally:
        driver.logout(serial)
    assert len(certs) == 3
    assert old.value not in {c.value for c in certs}
    assert EC_LABEL not in {c.label for c in certs}
    (written,) = [c for c in certs if c.value == new.der]
    assert (written.key_id, written.label) == (new.key_id, new.label)
    assert private_key_ids(driver, serial) == keys_before
    key_rows = [r for r in listing(driver, serial) if r[0] != ObjectClass.CERTIFICATE]
    assert key_rows == key_rows_before
    # the old key pair is still there, by its id
    assert old.key_id in keys_before


def test_write_without_replace_adds(driver: Pkcs11Driver, renewal_token) -> None:
    serial = renewal_token.serial
    new = renewed(driver, renewal_token, P256)
    before = listing(driver, serial)
    driver.write_certificate(serial, new)
    after = listing(driver, serial)
    added = sorted(set(after) - set(before))
    assert added == [(int(ObjectClass.CERTIFICATE), new.label, new.key_id, new.der)]
    assert set(before) <= set(after)


def test_refuses_a_certificate_already_there(driver: Pkcs11Driver, renewal_token) -> None:
    serial = renewal_token.serial
    old = cert_object(driver, serial, RSA_LABEL)
    again = NewCertificate.from_der(old.value, key_id=old.key_id, label="重复")
    before = listing(driver, serial)
    with pytest.raises(E.CertificateExists) as info:
        driver.write_certificate(serial, again, replace=old, archive_label=ARCHIVE_LABEL)
    assert info.value.code == "certificate_exists"
    with pytest.raises(E.CertificateExists):
        driver.write_certificate(serial, again)
    assert listing(driver, serial) == before


def test_refuses_when_the_old_certificate_is_gone(driver: Pkcs11Driver, renewal_token) -> None:
    serial = renewal_token.serial
    old = cert_object(driver, serial, RSA_LABEL)
    public = x509.load_der_x509_certificate(old.value).public_key()
    new = NewCertificate.from_der(
        der(issue(renewal_token, public, "同一密钥新证书")), key_id=old.key_id, label="新"
    )
    stale = CertObject(key_id=old.key_id, label=old.label, value=old.value + b"\x00")
    before = listing(driver, serial)
    for archive in (ARCHIVE_LABEL, None):
        with pytest.raises(E.TokenChanged) as info:
            driver.write_certificate(serial, new, replace=stale, archive_label=archive)
        assert info.value.code == "token_changed"
    assert listing(driver, serial) == before


def _fail_on_label(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Make C_SetAttributeValue(CKA_LABEL) fail the way a token would; every other
    attribute write goes through. Returns the list of refused writes."""
    real = p11impl.Object.__setitem__
    refused: list[Any] = []

    def setitem(self: Any, key: Any, value: Any) -> None:
        if key == Attribute.LABEL:
            refused.append(value)
            raise pe.AttributeReadOnly()
        real(self, key, value)

    monkeypatch.setattr(p11impl.Object, "__setitem__", setitem)
    return refused


def test_failure_after_create_rolls_back(
    driver: Pkcs11Driver, renewal_token, monkeypatch: pytest.MonkeyPatch
) -> None:
    serial = renewal_token.serial
    new = renewed(driver, renewal_token, RSA2048)
    old = cert_object(driver, serial, RSA_LABEL)
    before = listing(driver, serial)
    refused = _fail_on_label(monkeypatch)
    with pytest.raises(E.CertHelperError) as info:
        driver.write_certificate(serial, new, replace=old, archive_label=ARCHIVE_LABEL)
    assert refused == [ARCHIVE_LABEL]  # the step really ran after the create
    assert not isinstance(info.value, pe.PKCS11Error)
    assert info.value.detail == "AttributeReadOnly"
    monkeypatch.undo()
    assert listing(driver, serial) == before
    assert cert_object(driver, serial, RSA_LABEL).value == old.value


def test_failed_destroy_rolls_back(
    driver: Pkcs11Driver, renewal_token, monkeypatch: pytest.MonkeyPatch
) -> None:
    """archive_label None and destroying the old object fails: the new one goes."""
    serial = renewal_token.serial
    new = renewed(driver, renewal_token, P256)
    old = cert_object(driver, serial, EC_LABEL)
    before = listing(driver, serial)
    real = p11impl.Object.destroy
    calls: list[bytes] = []

    def destroy(self: Any) -> None:
        calls.append(self[Attribute.VALUE])
        if len(calls) == 1:
            raise pe.DeviceError()
        real(self)

    monkeypatch.setattr(p11impl.Object, "destroy", destroy)
    with pytest.raises(E.DeviceError):
        driver.write_certificate(serial, new, replace=old)
    assert calls == [old.value, new.der]  # the old one refused, then the new one undone
    monkeypatch.undo()
    assert listing(driver, serial) == before


def test_failed_rollback_is_logged_and_the_first_error_raised(
    driver: Pkcs11Driver,
    renewal_token,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    serial = renewal_token.serial
    new = renewed(driver, renewal_token, RSA2048)
    old = cert_object(driver, serial, RSA_LABEL)
    _fail_on_label(monkeypatch)

    def destroy(self: Any) -> None:
        raise pe.GeneralError()

    monkeypatch.setattr(p11impl.Object, "destroy", destroy)
    caplog.set_level(logging.ERROR, logger="drivers.pkcs11.driver")
    with pytest.raises(E.CertHelperError) as info:
        driver.write_certificate(serial, new, replace=old, archive_label=ARCHIVE_LABEL)
    assert info.value.detail == "AttributeReadOnly"  # not the rollback's GeneralError
    monkeypatch.undo()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert new.label in errors[0] and RSA_LABEL in errors[0] and "GeneralError" in errors[0]
    assert USER_PIN not in caplog.text
    # what the failed rollback left: the new object, and the old one unrenamed
    labels = {c.label for c in driver.read_objects(serial).certificates}
    assert {new.label, RSA_LABEL} <= labels and ARCHIVE_LABEL not in labels


# --- token removed --------------------------------------------------------------------


def test_write_to_a_removed_token(driver: Pkcs11Driver, renewal_token) -> None:
    serial = renewal_token.serial
    new = renewed(driver, renewal_token, P256)
    old = cert_object(driver, serial, EC_LABEL)
    renewal_token.unplug()
    with pytest.raises(E.TokenAbsent):
        driver.write_certificate(serial, new, replace=old, archive_label=ARCHIVE_LABEL)
    with pytest.raises(E.TokenAbsent):
        driver.public_keys(serial)
    assert issubclass(E.TokenAbsent, E.CertHelperError)


def test_removed_while_logged_in(driver: Pkcs11Driver, renewal_token) -> None:
    serial = renewal_token.serial
    new = renewed(driver, renewal_token, RSA2048)
    driver.login(serial, Pin(USER_PIN))
    renewal_token.unplug()
    with pytest.raises(E.TokenAbsent):
        driver.write_certificate(serial, new)
    assert not driver.is_logged_in(serial)  # the stale login was dropped
    with pytest.raises(E.TokenAbsent):
        driver.generate_key_pair(serial, P256, "不应出现")
