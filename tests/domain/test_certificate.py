"""CertificateModel: every field, Chinese DNs, odd and broken certificates, SM2."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import core, keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import strategies as st

from helper.domain.certificate import (
    HEBCA_UNIQUE_ID_OID,
    CertificateModel,
    rfc4514_escape,
)
from helper.domain.expiry import ExpiryState
from helper.errors import CertificateUnreadable, SigningUnsupported

NOT_BEFORE = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
NOT_AFTER = datetime(2026, 2, 28, 15, 59, 59, tzinfo=UTC)
UNIQUE_ID_OID = x509.ObjectIdentifier(HEBCA_UNIQUE_ID_OID)

CA_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "河北省"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "石家庄市"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "河北省电子认证有限公司"),
        x509.NameAttribute(NameOID.COMMON_NAME, "HEBCA 测试根证书"),
    ]
)
LEAF_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "河北省"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "沧州市"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "沧州市某某科技有限公司"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "财务部"),
        x509.NameAttribute(NameOID.COMMON_NAME, "张三"),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "zhangsan@example.cn"),
    ]
)
LEAF_DN = "E=zhangsan@example.cn,CN=张三,OU=财务部,O=沧州市某某科技有限公司,L=沧州市,ST=河北省,C=CN"
CA_DN = "CN=HEBCA 测试根证书,O=河北省电子认证有限公司,L=石家庄市,ST=河北省,C=CN"

SIGN_USAGE = {"digital_signature": True, "content_commitment": True}
CRYPT_USAGE = {"key_encipherment": True, "data_encipherment": True}
CA_USAGE = {"key_cert_sign": True, "crl_sign": True}


def _key_usage(**on: bool) -> x509.KeyUsage:
    names = [
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
    ]
    flags = {n: on.get(n, False) for n in names}
    return x509.KeyUsage(**flags, encipher_only=False, decipher_only=False)


def make_cert(
    subject: x509.Name,
    public_key,
    issuer: x509.Name,
    issuer_key,
    *,
    serial: int = 0xA1B2C,
    ca: bool = False,
    usage: dict[str, bool] | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
    extra: list[x509.ExtensionType] = (),
    not_before: datetime = NOT_BEFORE,
    not_after: datetime = NOT_AFTER,
) -> bytes:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(_key_usage(**usage), critical=True)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    for ext in extra:
        builder = builder.add_extension(ext, critical=False)
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(issuer_key, algorithm).public_bytes(serialization.Encoding.DER)


def unique_id_ext(value: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(UNIQUE_ID_OID, value)


@pytest.fixture(scope="module")
def rsa_ca_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_leaf_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_ca_der(rsa_ca_key) -> bytes:
    return make_cert(
        CA_NAME, rsa_ca_key.public_key(), CA_NAME, rsa_ca_key, serial=1, ca=True, usage=CA_USAGE
    )


@pytest.fixture(scope="module")
def rsa_sign_der(rsa_ca_key, rsa_leaf_key) -> bytes:
    return make_cert(
        LEAF_NAME,
        rsa_leaf_key.public_key(),
        CA_NAME,
        rsa_ca_key,
        usage=SIGN_USAGE,
        eku=[
            ExtendedKeyUsageOID.CLIENT_AUTH,
            ExtendedKeyUsageOID.EMAIL_PROTECTION,
            x509.ObjectIdentifier("1.2.3.4.5"),
        ],
        extra=[unique_id_ext(core.UTF8String("HB130900123456张").dump())],
    )


@pytest.fixture(scope="module")
def ec_sign_der(ec_key, rsa_ca_key) -> bytes:
    return make_cert(LEAF_NAME, ec_key.public_key(), CA_NAME, rsa_ca_key, usage=SIGN_USAGE)


def _sm2_name() -> asn1_x509.Name:
    return asn1_x509.Name.build(
        {
            "country_name": "CN",
            "state_or_province_name": "河北省",
            "common_name": "李四",
        }
    )


class _OpaqueAlgorithm(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier)]  # noqa: RUF012


class _OpaqueSpki(core.Sequence):
    _fields = [("algorithm", _OpaqueAlgorithm), ("public_key", core.OctetBitString)]  # noqa: RUF012


def make_sm2_cert(*, curve_as_algorithm: bool = False) -> bytes:
    """An SM2 certificate as Chinese CAs issue it (random point, random signature)."""
    point = b"\x04" + os.urandom(64)
    if curve_as_algorithm:
        spki = keys.PublicKeyInfo.load(
            _OpaqueSpki(
                {
                    "algorithm": {"algorithm": "1.2.156.10197.1.301"},
                    "public_key": point,
                }
            ).dump()
        )
    else:
        spki = keys.PublicKeyInfo(
            {
                "algorithm": {
                    "algorithm": "ec",
                    "parameters": keys.ECDomainParameters(
                        name="named", value="1.2.156.10197.1.301"
                    ),
                },
                "public_key": point,
            }
        )
    sm3_with_sm2 = {"algorithm": "1.2.156.10197.1.501"}
    validity = {
        "not_before": asn1_x509.Time(name="utc_time", value=NOT_BEFORE),
        "not_after": asn1_x509.Time(name="utc_time", value=NOT_AFTER),
    }
    tbs = asn1_x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": 0x0123456789ABCDEF,
            "signature": sm3_with_sm2,
            "issuer": _sm2_name(),
            "validity": validity,
            "subject": _sm2_name(),
            "subject_public_key_info": spki,
            "extensions": [
                {
                    "extn_id": "key_usage",
                    "critical": True,
                    "extn_value": asn1_x509.KeyUsage({"digital_signature", "non_repudiation"}),
                },
            ],
        }
    )
    cert = asn1_x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": sm3_with_sm2,
            "signature_value": os.urandom(72),
        }
    )
    return cert.dump()


# --- every field --------------------------------------------------------------


def test_rsa_signing_cert_fields(rsa_sign_der, rsa_leaf_key):
    m = CertificateModel.from_der(rsa_sign_der)
    ref = x509.load_der_x509_certificate(rsa_sign_der)

    assert m.der == rsa_sign_der
    assert m.subject == [
        ("C", "CN"),
        ("ST", "河北省"),
        ("L", "沧州市"),
        ("O", "沧州市某某科技有限公司"),
        ("OU", "财务部"),
        ("CN", "张三"),
        ("E", "zhangsan@example.cn"),
    ]
    assert m.subject_cn == "张三"
    assert m.subject_dn == LEAF_DN
    assert m.issuer[-1] == ("CN", "HEBCA 测试根证书")
    assert m.issuer_cn == "HEBCA 测试根证书"
    assert m.issuer_dn == CA_DN
    assert m.serial_hex == "0A1B2C"
    assert m.serial_int == 0xA1B2C
    assert m.not_before == NOT_BEFORE
    assert m.not_after == NOT_AFTER
    assert m.not_before.tzinfo is not None and m.not_after.utcoffset() == timedelta(0)
    assert m.key_type == "RSA"
    assert m.key_bits == 2048
    assert m.curve is None
    assert m.key_usage == ("digital_signature", "non_repudiation")
    assert m.extended_key_usage == ("client_auth", "email_protection", "1.2.3.4.5")
    assert m.is_ca is False
    assert m.sha256 == ref.fingerprint(hashes.SHA256()).hex()
    assert m.sha256 == hashlib.sha256(rsa_sign_der).hexdigest()
    assert m.sha1 == hashlib.sha1(rsa_sign_der).hexdigest()
    assert m.hebca_unique_id == "HB130900123456张"
    assert m.spki_der == rsa_leaf_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert m.public_key().public_numbers() == rsa_leaf_key.public_key().public_numbers()
    assert m.signing_supported is True
    assert m.signing_note is None
    assert m.is_signing_cert is True
    assert m.is_encryption_cert is False


def test_model_is_frozen_and_repr_hides_der(rsa_sign_der):
    m = CertificateModel.from_der(rsa_sign_der)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.subject_cn = "x"  # type: ignore[misc]
    assert "der=" not in repr(m)
    assert "张三" in repr(m)


def test_ca_cert(rsa_ca_der):
    m = CertificateModel.from_der(rsa_ca_der)
    assert m.is_ca is True
    assert m.key_usage == ("key_cert_sign", "crl_sign")
    assert m.extended_key_usage == ()
    assert m.subject_dn == m.issuer_dn == CA_DN
    assert m.serial_hex == "01"
    assert m.hebca_unique_id is None
    assert m.is_signing_cert is False
    assert m.is_encryption_cert is False


def test_encryption_cert(rsa_ca_key, rsa_leaf_key):
    der = make_cert(LEAF_NAME, rsa_leaf_key.public_key(), CA_NAME, rsa_ca_key, usage=CRYPT_USAGE)
    m = CertificateModel.from_der(der)
    assert m.key_usage == ("key_encipherment", "data_encipherment")
    assert m.is_signing_cert is False
    assert m.is_encryption_cert is True


def test_key_agreement_only_is_encryption(rsa_ca_key, ec_key):
    der = make_cert(
        LEAF_NAME, ec_key.public_key(), CA_NAME, rsa_ca_key, usage={"key_agreement": True}
    )
    m = CertificateModel.from_der(der)
    assert m.is_encryption_cert is True


def test_signing_and_encryption_usage_counts_as_signing(rsa_ca_key, rsa_leaf_key):
    der = make_cert(
        LEAF_NAME,
        rsa_leaf_key.public_key(),
        CA_NAME,
        rsa_ca_key,
        usage={"digital_signature": True, "key_encipherment": True},
    )
    m = CertificateModel.from_der(der)
    assert m.is_signing_cert is True
    assert m.is_encryption_cert is False


def test_no_key_usage_extension_is_signing(rsa_ca_key, rsa_leaf_key):
    der = make_cert(LEAF_NAME, rsa_leaf_key.public_key(), CA_NAME, rsa_ca_key, usage=None)
    m = CertificateModel.from_der(der)
    assert m.key_usage == ()
    assert m.is_signing_cert is True
    assert m.is_encryption_cert is False


def test_v1_cert_without_extensions():
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(LEAF_NAME)
        .issuer_name(LEAF_NAME)
        .public_key(key.public_key())
        .serial_number(5)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .sign(key, hashes.SHA256())
    )
    m = CertificateModel.from_der(cert.public_bytes(serialization.Encoding.DER))
    assert (m.key_usage, m.extended_key_usage, m.is_ca, m.hebca_unique_id) == ((), (), False, None)


def test_ec_p256_cert(ec_sign_der, ec_key):
    m = CertificateModel.from_der(ec_sign_der)
    assert (m.key_type, m.key_bits, m.curve) == ("EC", 256, "secp256r1")
    assert m.signing_supported is True
    assert m.signing_note is None
    assert m.public_key().public_numbers() == ec_key.public_key().public_numbers()


@pytest.mark.parametrize(
    ("curve", "name", "bits", "supported"),
    [
        (ec.SECP384R1(), "secp384r1", 384, True),
        (ec.SECP521R1(), "secp521r1", 521, True),
        (ec.SECP256K1(), "secp256k1", 256, False),
    ],
)
def test_other_ec_curves(rsa_ca_key, curve, name, bits, supported):
    key = ec.generate_private_key(curve)
    m = CertificateModel.from_der(make_cert(LEAF_NAME, key.public_key(), CA_NAME, rsa_ca_key))
    assert (m.key_type, m.key_bits, m.curve) == ("EC", bits, name)
    assert m.signing_supported is supported
    if not supported:
        assert name in (m.signing_note or "")


def test_ed25519_cert():
    key = ed25519.Ed25519PrivateKey.generate()
    m = CertificateModel.from_der(make_cert(LEAF_NAME, key.public_key(), LEAF_NAME, key))
    assert (m.key_type, m.key_bits, m.curve) == ("Ed25519", None, None)
    assert m.signing_supported is False
    assert "Ed25519" in (m.signing_note or "")
    assert isinstance(m.public_key(), ed25519.Ed25519PublicKey)


def test_serial_hex_even_length_and_large(rsa_ca_key, ec_key):
    for serial, expected in [(0x80, "80"), (0xFFF, "0FFF"), (2**158 + 1, f"{2**158 + 1:X}")]:
        der = make_cert(LEAF_NAME, ec_key.public_key(), CA_NAME, rsa_ca_key, serial=serial)
        m = CertificateModel.from_der(der)
        assert m.serial_hex == expected
        assert len(m.serial_hex) % 2 == 0
        assert m.serial_int == serial


def test_generalized_time_after_2049(rsa_ca_key, ec_key):
    late = datetime(2061, 5, 4, 3, 2, 1, tzinfo=UTC)
    der = make_cert(LEAF_NAME, ec_key.public_key(), CA_NAME, rsa_ca_key, not_after=late)
    assert CertificateModel.from_der(der).not_after == late


def test_days_left_and_expiry_state_delegate(ec_sign_der):
    m = CertificateModel.from_der(ec_sign_der)
    assert m.days_left(NOT_AFTER - timedelta(days=10)) == 10
    assert m.expiry_state(NOT_AFTER - timedelta(days=10)) is ExpiryState.WARNING
    assert m.expiry_state(NOT_AFTER) is ExpiryState.EXPIRED
    assert m.expiry_state(NOT_BEFORE) is ExpiryState.OK
    with pytest.raises(ValueError):
        m.days_left(datetime(2025, 1, 1))


# --- names ----------------------------------------------------------------------


def test_all_short_names(rsa_ca_key, ec_key):
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "cn"),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "hebca"),
            x509.NameAttribute(NameOID.STREET_ADDRESS, "裕华东路 1 号"),
            x509.NameAttribute(NameOID.TITLE, "会计"),
            x509.NameAttribute(NameOID.SURNAME, "王"),
            x509.NameAttribute(NameOID.GIVEN_NAME, "五"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "130102199001011234"),
            x509.NameAttribute(NameOID.USER_ID, "wangwu"),
            x509.NameAttribute(x509.ObjectIdentifier("1.2.156.1.2.3"), "自定义"),
        ]
    )
    m = CertificateModel.from_der(make_cert(name, ec_key.public_key(), CA_NAME, rsa_ca_key))
    assert [short for short, _ in m.subject] == [
        "DC",
        "DC",
        "STREET",
        "T",
        "SN",
        "G",
        "SERIALNUMBER",
        "UID",
        "1.2.156.1.2.3",
    ]
    assert m.subject_cn == ""
    assert m.subject_dn == (
        "1.2.156.1.2.3=自定义,UID=wangwu,SERIALNUMBER=130102199001011234,G=五,SN=王,T=会计,"
        "STREET=裕华东路 1 号,DC=hebca,DC=cn"
    )


def test_rfc4514_escaping_in_dn(rsa_ca_key, ec_key):
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, '#河北 "某某" 公司'),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, " 前导空格与结尾空格 "),
            x509.NameAttribute(NameOID.COMMON_NAME, 'a,b+c"d\\e<f>g;h'),
        ]
    )
    m = CertificateModel.from_der(make_cert(name, ec_key.public_key(), CA_NAME, rsa_ca_key))
    assert m.subject_cn == 'a,b+c"d\\e<f>g;h'
    assert m.subject_dn == (
        'CN=a\\,b\\+c\\"d\\\\e\\<f\\>g\\;h,'
        "OU=\\ 前导空格与结尾空格\\ ,"
        'O=\\#河北 \\"某某\\" 公司,'
        "C=CN"
    )
    # cryptography parses our DN back to the same name
    assert x509.Name.from_rfc4514_string(m.subject_dn) == name


def test_multi_valued_rdn(rsa_ca_key, ec_key):
    name = x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]),
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "张三"),
                    x509.NameAttribute(NameOID.SERIAL_NUMBER, "42"),
                ]
            ),
        ]
    )
    m = CertificateModel.from_der(make_cert(name, ec_key.public_key(), CA_NAME, rsa_ca_key))
    first, rest = m.subject_dn.split(",")
    assert set(first.split("+")) == {"CN=张三", "SERIALNUMBER=42"}
    assert rest == "C=CN"
    assert set(m.subject) == {("C", "CN"), ("CN", "张三"), ("SERIALNUMBER", "42")}


def test_dn_matches_cryptography_for_plain_ascii(rsa_ca_key, ec_key):
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Hebei"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Cangzhou"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme, Inc."),
            x509.NameAttribute(NameOID.COMMON_NAME, "Zhang San <zs>"),
        ]
    )
    m = CertificateModel.from_der(make_cert(name, ec_key.public_key(), CA_NAME, rsa_ca_key))
    assert m.subject_dn == name.rfc4514_string()


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("", ""),
        (" ", "\\ "),
        ("  ", "\\ \\ "),
        ("#", "\\#"),
        ("a#", "a#"),
        ("x\0y", "x\\00y"),
        ("沧州市", "沧州市"),
        ("a=b", "a=b"),
    ],
)
def test_rfc4514_escape_cases(raw, escaped):
    assert rfc4514_escape(raw) == escaped


# at most 16 characters: the UTF-8 must stay within the 64-byte CN limit cryptography enforces
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=16))
def test_rfc4514_escape_round_trips_through_cryptography(value):
    parsed = x509.Name.from_rfc4514_string("CN=" + rfc4514_escape(value))
    assert parsed.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == value


# --- HEBCA unique ID ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (core.UTF8String("HB130900123456张").dump(), "HB130900123456张"),
        (core.PrintableString("1309001234").dump(), "1309001234"),
        (core.IA5String("id-0042").dump(), "id-0042"),
        (core.BMPString("河北 0042").dump(), "河北 0042"),
        (core.OctetString("唯一标识 7".encode()).dump(), "唯一标识 7"),
        (core.OctetString(b"\xff\x00\x01").dump(), core.OctetString(b"\xff\x00\x01").dump().hex()),
        (b"\xde\xad\xbe\xef", "deadbeef"),
        (core.Integer(7).dump(), "020107"),
        (core.UTF8String("x").dump() + b"\x00", core.UTF8String("x").dump().hex() + "00"),
    ],
)
def test_hebca_unique_id_decoding(rsa_ca_key, ec_key, value, expected):
    der = make_cert(
        LEAF_NAME, ec_key.public_key(), CA_NAME, rsa_ca_key, extra=[unique_id_ext(value)]
    )
    assert CertificateModel.from_der(der).hebca_unique_id == expected


# --- SM2 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("curve_as_algorithm", [False, True])
def test_sm2_cert_parses_and_is_signed_by_its_driver(curve_as_algorithm):
    der = make_sm2_cert(curve_as_algorithm=curve_as_algorithm)
    m = CertificateModel.from_der(der)
    assert (m.key_type, m.key_bits, m.curve) == ("SM2", 256, "sm2p256v1")
    assert m.subject == [("C", "CN"), ("ST", "河北省"), ("CN", "李四")]
    assert m.subject_dn == "CN=李四,ST=河北省,C=CN"
    assert m.serial_hex == "0123456789ABCDEF"
    assert m.not_after == NOT_AFTER
    assert m.key_usage == ("digital_signature", "non_repudiation")
    assert m.is_signing_cert is True
    assert m.signing_supported is True  # whether the key's driver speaks SM2 is its own question
    assert m.signing_note is None
    assert m.sha256 == hashlib.sha256(der).hexdigest()
    assert m.spki_der in der
    with pytest.raises(SigningUnsupported) as info:
        m.public_key()
    assert info.value.code == "signing_unsupported"


# --- unreadable --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"hello, world",
        os.urandom(1),
        b"\x30\x82\xff\xff",
        b"\x02\x01\x05",  # an INTEGER
        b"\x30\x03\x02\x01\x05",  # a SEQUENCE that is not a certificate
        "not bytes",
        None,
    ],
)
def test_garbage_is_unreadable(value):
    with pytest.raises(CertificateUnreadable) as info:
        CertificateModel.from_der(value)
    assert info.value.code == "cert_unreadable"
    assert info.value.detail


@pytest.mark.parametrize("cut", [1, 10, 100, 400])
def test_truncated_der_is_unreadable(rsa_sign_der, cut):
    with pytest.raises(CertificateUnreadable):
        CertificateModel.from_der(rsa_sign_der[:-cut])


def test_truncated_sm2_is_unreadable():
    with pytest.raises(CertificateUnreadable):
        CertificateModel.from_der(make_sm2_cert()[:-5])


def test_trailing_padding_ignored(rsa_sign_der):
    m = CertificateModel.from_der(rsa_sign_der + b"\x00" * 16)
    assert m.der == rsa_sign_der
    assert m.sha256 == hashlib.sha256(rsa_sign_der).hexdigest()


def test_malformed_key_usage_is_unreadable(rsa_ca_key, ec_key):
    bad = x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.15"), b"garbage")
    der = make_cert(LEAF_NAME, ec_key.public_key(), CA_NAME, rsa_ca_key, extra=[bad])
    with pytest.raises(CertificateUnreadable) as info:
        CertificateModel.from_der(der)
    assert "2.5.29.15" in (info.value.detail or "")


def test_malformed_unused_extension_is_tolerated(rsa_ca_key, ec_key):
    policies = x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.32"), b"\x01\x02")
    der = make_cert(LEAF_NAME, ec_key.public_key(), CA_NAME, rsa_ca_key, extra=[policies])
    assert CertificateModel.from_der(der).subject_cn == "张三"
