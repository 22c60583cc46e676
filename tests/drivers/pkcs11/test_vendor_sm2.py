"""SM2 through a vendor's PKCS#11 mechanism: the vendor table (drivers/pkcs11/vendors.toml)
and Pkcs11Driver on libsoftp11sm2, the test double of a vendor module (SoftHSM2 plus one
vendor SM2 mechanism: no free module has one). Every signature is checked outside
certhelper, with gmalg and with `openssl dgst -sm3 -sigopt distid:…`."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from drivers import errors as E
from drivers import sm2
from drivers.pkcs11.driver import Pkcs11Driver
from drivers.pkcs11.vendor_sm2 import decode_signature
from drivers.pkcs11.vendors import (
    TABLE,
    SignatureEncoding,
    Sm2Input,
    VendorTableError,
    load_vendors,
    match_vendor,
    parse_vendors,
)
from drivers.types import Pin, PinState, SignAlgorithm
from helper.services.tokens import pair_objects
from tests.support.cli import Cli
from tests.support.p11sm2 import (
    CKK_SOFTP11SM2_SM2,
    CKM_SOFTP11SM2_SM2,
    KEY_ID,
    MAX_TRIES,
    USER_PIN,
    P11Sm2,
)
from tests.support.sm2 import gmalg_verifies, openssl_verifies, spki_of, verified_both_ways
from tests.support.tokens import ROOT, Fixtures

DATA = "沧州住房公积金 汇缴 2026-12 单位 1301 金额 12,345.00 元".encode()


# --- the table ----------------------------------------------------------------------------


def test_shipped_table_loads_with_cited_vendor_values() -> None:
    entries = {e.id: e for e in load_vendors()}
    longmai = entries["longmai-gm3000"]
    assert longmai.libraries == ("libgm3000_pkcs11.so",) and not longmai.test_only
    # the values sm2-skf-notes.md gives for Longmai's libgm3000_pkcs11.so
    assert (longmai.sm2.key_type, longmai.sm2.mechanism) == (0x84000020, 0x83000000)
    assert longmai.sm2.signature is SignatureEncoding.AUTO  # not evidenced: said so
    double = entries["softp11sm2"]
    assert double.test_only and double.libraries == ("libsoftp11sm2.so",)
    assert (double.sm2.key_type, double.sm2.mechanism) == (CKK_SOFTP11SM2_SM2, CKM_SOFTP11SM2_SM2)
    assert all(e.sm2.input is Sm2Input.E and e.source for e in entries.values())


def test_the_test_double_is_in_no_catalog() -> None:
    catalog = (Path(TABLE).parents[1] / "catalog.toml").read_text("utf-8")
    assert "softp11sm2" not in catalog


def _doc(**sm2_changes: Any) -> dict[str, Any]:
    doc = tomllib.loads(TABLE.read_text("utf-8"))
    doc["vendor"] = [doc["vendor"][0]]
    doc["vendor"][0]["sm2"].update(sm2_changes)
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("schema"), "'schema' must be"),
        (lambda d: d.update(extra=1), "unknown key(s) extra"),
        (lambda d: d.update(vendor={"id": "x"}), "array of tables"),
        (lambda d: d["vendor"][0].update(colour="red"), "unknown key(s) colour"),
        (lambda d: d["vendor"][0].pop("source"), "'source' must be a non-empty string"),
        (lambda d: d["vendor"][0].update(id=""), "'id' must be a non-empty string"),
        (lambda d: d["vendor"][0].update(match_library=[]), "needs at least one of"),
        (lambda d: d["vendor"][0].update(match_library=["/opt/x/lib.so"]), "file names, not"),
        (lambda d: d["vendor"][0].update(match_manufacturer="Longmai"), "list of non-empty"),
        (lambda d: d["vendor"][0].update(test_only="yes"), "'test_only' must be true or false"),
        (lambda d: d["vendor"][0].pop("sm2"), "needs an [vendor.sm2] table"),
        (lambda d: d["vendor"][0]["sm2"].update(mechanism=0x1041), "0x1041 is not vendor-defined"),
        (lambda d: d["vendor"][0]["sm2"].update(key_type="0x84000020"), "must be an integer"),
        (lambda d: d["vendor"][0]["sm2"].update(key_type=True), "must be an integer"),
        (lambda d: d["vendor"][0]["sm2"].update(mechanism=1 << 40), "not vendor-defined"),
        (lambda d: d["vendor"][0]["sm2"].update(input="z"), "'input' = 'z'; use one of 'e'"),
        (lambda d: d["vendor"][0]["sm2"].update(signature="ber"), "use one of 'raw', 'der'"),
        (lambda d: d["vendor"][0]["sm2"].update(hash="sm3"), "unknown key(s) hash"),
        (lambda d: d["vendor"].append(dict(d["vendor"][0])), "appears twice"),
    ],
)
def test_malformed_tables_are_refused_with_where_and_what(change: Any, message: str) -> None:
    doc = _doc()
    change(doc)
    with pytest.raises(VendorTableError) as info:
        parse_vendors(doc, "vendors.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("vendors.toml")


def test_a_table_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "vendors.toml"
    bad.write_text("[[vendor]\nid = 1\n")
    with pytest.raises(VendorTableError, match="not valid TOML"):
        load_vendors(bad)
    with pytest.raises(VendorTableError, match="cannot read"):
        load_vendors(tmp_path / "missing.toml")


def test_entries_match_by_file_name_or_ck_info() -> None:
    doc = _doc()
    doc["vendor"][0].update(match_manufacturer=["Longmai"], match_description=["mToken PKCS#11"])
    entries = parse_vendors(doc)
    assert match_vendor(entries, "/opt/apps/x/files/lib/libgm3000_pkcs11.so", "", "")
    assert match_vendor(entries, "/usr/lib/other.so", "Longmai   ", "")
    assert match_vendor(entries, "/usr/lib/other.so", "", "mToken PKCS#11")
    assert match_vendor(entries, "/usr/lib/libgm3000_pkcs11.so.1", "Other", "Other") is None
    assert match_vendor(entries, "/usr/lib/softhsm/libsofthsm2.so", "SoftHSM", "") is None


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        (lambda r, s: r.to_bytes(32, "big") + s.to_bytes(32, "big"), SignatureEncoding.RAW),
        (lambda r, s: r.to_bytes(32, "big") + s.to_bytes(32, "big"), SignatureEncoding.AUTO),
        (sm2.signature_der, SignatureEncoding.DER),
        (sm2.signature_der, SignatureEncoding.AUTO),
    ],
)
def test_signature_encodings_decode(raw: Any, encoding: SignatureEncoding) -> None:
    r, s = 0x1234 << 200, sm2.N - 5
    assert decode_signature(raw(r, s), encoding) == (r, s)


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        (b"\x01" * 63, SignatureEncoding.RAW),
        (b"\x00" * 64, SignatureEncoding.RAW),  # r = s = 0
        (b"\x01" * 64, SignatureEncoding.DER),
        (b"\x30\x03\x02\x01", SignatureEncoding.AUTO),
    ],
)
def test_bad_module_signatures_are_device_errors(raw: bytes, encoding: SignatureEncoding) -> None:
    with pytest.raises(E.DeviceError, match="SM2 signature is not"):
        decode_signature(raw, encoding)


# --- the driver on the test double --------------------------------------------------------


def test_the_double_matches_its_test_entry_and_declares_sm2(p11sm2_driver: Pkcs11Driver) -> None:
    assert p11sm2_driver.vendor is not None and p11sm2_driver.vendor.id == "softp11sm2"
    assert p11sm2_driver.manufacturer == "certhelper softp11sm2 (test)"
    assert SignAlgorithm.SM2_SM3 in p11sm2_driver.capabilities.algorithms
    assert SignAlgorithm.RSA_PKCS1_SHA256 in p11sm2_driver.capabilities.algorithms


def test_list_pairs_the_sm2_key_with_its_certificate_as_signable(
    p11sm2: P11Sm2, p11sm2_driver: Pkcs11Driver
) -> None:
    (token,) = p11sm2_driver.list_tokens()
    assert token.serial == p11sm2.serial
    for logged_in in (False, True):  # before login through the public-key twin
        if logged_in:
            p11sm2_driver.login(p11sm2.serial, Pin(USER_PIN))
        contents = p11sm2_driver.read_objects(p11sm2.serial)
        (key,) = contents.private_keys
        assert (key.key_id, key.key_type, key.key_bits, key.from_public_key) == (
            KEY_ID, "SM2", 256, not logged_in,
        )  # fmt: skip
        assert key.ec_params == bytes.fromhex("06082a811ccf5501822d")
        view = pair_objects(token, contents.certificates, contents.private_keys, p11sm2_driver)
        (entry,) = view.certificates
        assert entry.model is not None and entry.model.key_type == "SM2"
        assert entry.private_key == key and entry.driver_signs and entry.signing_note is None
        assert entry.obj.value == p11sm2.cert_der


def test_sign_with_the_default_id_verified_outside(
    p11sm2: P11Sm2, p11sm2_driver: Pkcs11Driver
) -> None:
    p11sm2_driver.login(p11sm2.serial, Pin(USER_PIN))
    sig = p11sm2_driver.sign(p11sm2.serial, KEY_ID, DATA, SignAlgorithm.SM2_SM3)
    assert verified_both_ways(p11sm2.cert_der, DATA, sig)
    spki = spki_of(p11sm2.cert_der)
    assert not gmalg_verifies(spki, DATA + b".", sig)
    assert not openssl_verifies(spki, DATA, sig, b"")  # OpenSSL's empty default ID differs
    again = p11sm2_driver.sign(p11sm2.serial, KEY_ID, DATA, SignAlgorithm.SM2_SM3)
    assert again != sig and verified_both_ways(p11sm2.cert_der, DATA, again)  # fresh nonce


def test_sign_with_a_custom_id_verified_outside(
    p11sm2: P11Sm2, p11sm2_driver: Pkcs11Driver
) -> None:
    p11sm2_driver.login(p11sm2.serial, Pin(USER_PIN))
    uid = b"HB130900000000001"
    sig = p11sm2_driver.sign(p11sm2.serial, KEY_ID, DATA, SignAlgorithm.SM2_SM3, sm2_id=uid)
    assert verified_both_ways(p11sm2.cert_der, DATA, sig, uid)
    assert not verified_both_ways(p11sm2.cert_der, DATA, sig)  # not with the default ID
    # the Z cache is per ID: the default ID still signs right after the custom one
    sig = p11sm2_driver.sign(p11sm2.serial, KEY_ID, b"", SignAlgorithm.SM2_SM3)
    assert verified_both_ways(p11sm2.cert_der, b"", sig)


def test_sm2_sign_errors(p11sm2: P11Sm2, p11sm2_driver: Pkcs11Driver) -> None:
    with pytest.raises(E.NotLoggedIn):
        p11sm2_driver.sign(p11sm2.serial, KEY_ID, DATA, SignAlgorithm.SM2_SM3)
    p11sm2_driver.login(p11sm2.serial, Pin(USER_PIN))
    with pytest.raises(E.KeyNotFound):
        p11sm2_driver.sign(p11sm2.serial, b"\x01\x02", DATA, SignAlgorithm.SM2_SM3)
    with pytest.raises(E.BadInput):
        p11sm2_driver.sign(p11sm2.serial, KEY_ID, DATA, SignAlgorithm.SM2_SM3, sm2_id=b"")
    with pytest.raises(E.CertHelperError):  # an SM2 key is no RSA key
        p11sm2_driver.sign(p11sm2.serial, KEY_ID, DATA, SignAlgorithm.RSA_PKCS1_SHA256)
    sig = p11sm2_driver.sign(p11sm2.serial, KEY_ID, DATA, SignAlgorithm.SM2_SM3)
    assert verified_both_ways(p11sm2.cert_der, DATA, sig)  # the session survived the errors


def test_wrong_pins_count_down_to_a_lock(p11sm2: P11Sm2, p11sm2_driver: Pkcs11Driver) -> None:
    serial = p11sm2.serial
    assert p11sm2_driver.token_info(serial).pin_state is PinState.OK
    with pytest.raises(E.PinIncorrect):
        p11sm2_driver.login(serial, Pin("000000"))
    assert p11sm2_driver.token_info(serial).pin_state is PinState.COUNT_LOW
    p11sm2_driver.login(serial, Pin(USER_PIN))  # a right PIN resets the counter
    p11sm2_driver.logout(serial)
    assert p11sm2_driver.token_info(serial).pin_state is PinState.OK
    states = []
    for _ in range(MAX_TRIES):
        with pytest.raises(E.PinIncorrect):
            p11sm2_driver.login(serial, Pin("000000"))
        states.append(p11sm2_driver.token_info(serial).pin_state)
    assert states == [PinState.COUNT_LOW] * (MAX_TRIES - 2) + [PinState.FINAL_TRY, PinState.LOCKED]
    with pytest.raises(E.PinLocked):  # refused before C_Login: the right PIN no longer opens
        p11sm2_driver.login(serial, Pin(USER_PIN))
    assert not p11sm2_driver.is_logged_in(serial)
    assert (p11sm2.dir / "pins" / serial).read_text().strip() == "0"


def test_the_double_and_plain_softhsm_live_side_by_side(
    p11sm2: P11Sm2, p11sm2_driver: Pkcs11Driver, driver: Pkcs11Driver, fixtures: Fixtures
) -> None:
    """The double runs a private SoftHSM: the session's SoftHSM tokens are not its own."""
    mine = {t.serial for t in p11sm2_driver.list_tokens()}
    theirs = {t.serial for t in driver.list_tokens()}
    assert mine == {p11sm2.serial} and not mine & theirs
    assert {t["serial"] for t in fixtures.manifest["tokens"]} <= theirs
    assert driver.vendor is None
    assert SignAlgorithm.SM2_SM3 not in driver.capabilities.algorithms
    with pytest.raises(E.MechanismUnsupported):
        driver.sign(next(iter(theirs)), b"x", DATA, SignAlgorithm.SM2_SM3)


def test_the_double_keeps_its_sm2_key_like_a_token(p11sm2: P11Sm2) -> None:
    """The double itself, through python-pkcs11 and raw calls: the key hides until login,
    never shows d, signs only 32 bytes, only when logged in."""
    import pkcs11
    import pkcs11.exceptions as pe
    from pkcs11 import Attribute, ObjectClass

    from drivers.pkcs11.ckraw import RawModule
    from drivers.pkcs11.objects import attribute_mapper

    lib = pkcs11.lib(p11sm2.library)
    token = lib.get_token(token_serial=p11sm2.serial.encode())
    assert CKM_SOFTP11SM2_SM2 in token.slot.get_mechanisms()
    raw = RawModule(p11sm2.library)
    query = {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: CKK_SOFTP11SM2_SM2}
    with token.open(rw=True, attribute_mapper=attribute_mapper()) as session:
        assert list(session.get_objects(query)) == []  # private: invisible before login
        (public,) = session.get_objects({Attribute.KEY_TYPE: CKK_SOFTP11SM2_SM2})
        point = bytes(public[Attribute.EC_POINT])[2:]
        assert point == sm2_point(p11sm2.cert_der)
        with pytest.raises(pe.UserNotLoggedIn):
            raw.sign(int(session.handle), CKM_SOFTP11SM2_SM2, int(public.handle), b"e" * 32)
    with token.open(rw=True, user_pin=USER_PIN, attribute_mapper=attribute_mapper()) as session:
        (key,) = session.get_objects(query)
        # one search sees SoftHSM's certificate and both SM2 keys, never the data objects
        found = {o[Attribute.CLASS]: o for o in session.get_objects({Attribute.ID: KEY_ID})}
        assert sorted(found) == [
            ObjectClass.CERTIFICATE, ObjectClass.PUBLIC_KEY, ObjectClass.PRIVATE_KEY,
        ]  # fmt: skip
        assert list(session.get_objects({Attribute.CLASS: ObjectClass.DATA})) == []
        public = found[ObjectClass.PUBLIC_KEY]
        with pytest.raises(pe.KeyTypeInconsistent):  # a public key does not sign
            raw.sign(int(session.handle), CKM_SOFTP11SM2_SM2, int(public.handle), b"e" * 32)
        assert key[Attribute.LABEL] == "国密签名私钥" and key[Attribute.ID] == KEY_ID
        with pytest.raises(pe.AttributeSensitive):
            key[Attribute.VALUE]
        with pytest.raises(pe.DataLenRange):  # a raw SM2 mechanism signs e, 32 bytes
            raw.sign(int(session.handle), CKM_SOFTP11SM2_SM2, int(key.handle), DATA)
        e = sm2.e_value(DATA, point)
        rs = raw.sign(int(session.handle), CKM_SOFTP11SM2_SM2, int(key.handle), e)
        assert len(rs) == 64
        der = sm2.signature_der(int.from_bytes(rs[:32], "big"), int.from_bytes(rs[32:], "big"))
        assert verified_both_ways(p11sm2.cert_der, DATA, der)
        assert key[Attribute.SIGN] is True


def sm2_point(cert_der: bytes) -> bytes:
    from asn1crypto import x509

    return bytes(x509.Certificate.load(cert_der).public_key["public_key"])


# --- modules the table does not enable ----------------------------------------------------


def test_an_unlisted_module_is_unchanged(p11sm2: P11Sm2) -> None:
    """The same double under a file name the table does not know: no SM2, the certificate
    listed with the note, the vendor key shown by its number."""
    drv = Pkcs11Driver(p11sm2.renamed("libvendorx_pkcs11.so"), timeout=30)
    try:
        assert drv.vendor is None
        assert SignAlgorithm.SM2_SM3 not in drv.capabilities.algorithms
        (token,) = drv.list_tokens()
        drv.login(token.serial, Pin(USER_PIN))
        contents = drv.read_objects(token.serial)
        (key,) = contents.private_keys
        assert key.key_type == f"{CKK_SOFTP11SM2_SM2:#x}"
        (entry,) = pair_objects(
            token, contents.certificates, contents.private_keys, drv
        ).certificates
        assert not entry.driver_signs and entry.signing_note and "SM2" in entry.signing_note
        with pytest.raises(E.MechanismUnsupported):
            drv.sign(token.serial, KEY_ID, DATA, SignAlgorithm.SM2_SM3)
    finally:
        drv.close()


def _entry(**changes: Any) -> Any:
    (double,) = [e for e in load_vendors() if e.id == "softp11sm2"]
    return dataclasses.replace(double, sm2=dataclasses.replace(double.sm2, **changes))


def test_an_entry_with_the_message_mode_is_refused_clearly(p11sm2: P11Sm2) -> None:
    drv = Pkcs11Driver(p11sm2.library, vendors=[_entry(input=Sm2Input.MESSAGE_WITH_ID)])
    try:
        assert drv.vendor is not None
        assert SignAlgorithm.SM2_SM3 not in drv.capabilities.algorithms
        drv.login(p11sm2.serial, Pin(USER_PIN))
        with pytest.raises(E.MechanismUnsupported) as info:
            drv.sign(p11sm2.serial, KEY_ID, DATA, SignAlgorithm.SM2_SM3)
        assert "message-with-id" in str(info.value.detail)
    finally:
        drv.close()


def test_an_entry_whose_mechanism_the_module_lacks(p11sm2: P11Sm2) -> None:
    drv = Pkcs11Driver(p11sm2.library, vendors=[_entry(mechanism=0x83000000)])
    try:
        drv.login(p11sm2.serial, Pin(USER_PIN))
        with pytest.raises(E.MechanismUnsupported, match="lacks mechanism 0x83000000"):
            drv.sign(p11sm2.serial, KEY_ID, DATA, SignAlgorithm.SM2_SM3)
    finally:
        drv.close()


# --- the CLI --------------------------------------------------------------------------------


def test_cli_lists_and_signs_sm2_through_the_vendor_mechanism(
    p11sm2: P11Sm2, fixtures: Fixtures, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    cli = Cli(fixtures, home, p11sm2.library)  # SOFTP11SM2_DIR comes from the environment
    r = cli("list", "--json")
    assert r.returncode == 0, r.stderr
    doc = r.json()
    jsonschema.validate(doc, json.loads((ROOT / "docs" / "list-schema.json").read_text("utf-8")))
    (cert,) = doc["certificates"]
    assert (cert["key_type"], cert["driver"], cert["usage"]) == ("SM2", "pkcs11", "sign")
    assert cert["has_private_key"] and cert["signing_supported"] and cert["signing_note"] is None
    src, out = tmp_path / "in.txt", tmp_path / "out.sig"
    src.write_bytes(DATA)
    r = cli("sign", "--cert", cert["sha256"][:16], "--in", str(src), "--out", str(out),
            "--pin-stdin", "--sm2-id", "HB130900000000001", stdin=USER_PIN + "\n")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert verified_both_ways(p11sm2.cert_der, DATA, out.read_bytes(), b"HB130900000000001")
