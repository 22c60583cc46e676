"""Token service logic that needs no token: pairing, lookups, algorithms, config, catalog."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from drivers.catalog import entry_for_usb_id, installed_modules, load_catalog, os_key
from drivers.errors import ALL_ERRORS
from drivers.types import CertObject, KeyObject, PinState, SignAlgorithm, TokenInfo
from helper.config import load_config
from helper.domain.certificate import CertificateModel
from helper.errors import (
    CertificateAmbiguous,
    CertificateNotFound,
    ConfigInvalid,
    SigningUnsupported,
)
from helper.services.tokens import TokenService, TokenView, algorithm_for, pair_objects

TOKEN = TokenInfo("/m.so", 1, "测试", "SER1", "m", "model", 0, PinState.OK)


def _cert(cn: str, key=None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=10))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def test_pairing_keeps_everything() -> None:
    certs = [
        CertObject(b"\x01", "a", _cert("甲")),
        CertObject(b"\x02", "b", _cert("乙")),  # no key
        CertObject(b"\x01", "a-old", _cert("甲旧")),  # same CKA_ID as the first
        CertObject(b"", "lbl", _cert("丙")),  # no CKA_ID: paired by label
        CertObject(b"\x04", "bad", b"\x30\x03\x02"),  # truncated DER
    ]
    keys = [
        KeyObject(b"\x01", "a", "EC"),
        KeyObject(b"", "lbl", "RSA"),
        KeyObject(b"\x09", "z", "RSA"),
    ]
    view = pair_objects(TOKEN, certs, keys)
    ids = [c.id for c in view.certificates]
    assert ids == ["SER1:01", "SER1:02", "SER1:01~2", "SER1:noid", "SER1:04"]
    assert [c.private_key is not None for c in view.certificates] == [
        True,
        False,
        True,
        True,
        False,
    ]
    assert (
        view.certificates[4].model is None and view.certificates[4].error.code == "cert_unreadable"
    )
    assert [k.key_id for k in view.keys_without_certificate] == [b"\x09"]


class _Static(TokenService):
    def __init__(self, views: list[TokenView]) -> None:
        super().__init__([])
        self._views = views

    def snapshot(self) -> list[TokenView]:
        return self._views


def test_find_certificate() -> None:
    view = pair_objects(
        TOKEN, [CertObject(b"\x01", "a", _cert("甲")), CertObject(b"\x02", "b", _cert("乙"))], []
    )
    svc = _Static([view])
    a = view.certificates[0]
    assert svc.find_certificate("SER1:01") is a
    assert svc.find_certificate(a.model.sha256[:8].upper()) is a
    assert svc.find_certificate(a.model.serial_hex) is a
    assert svc.find_certificate("0x" + a.model.serial_hex.lower()) is a
    with pytest.raises(CertificateNotFound):
        svc.find_certificate(a.model.sha256[:7])  # too short to be a thumbprint prefix
    with pytest.raises(CertificateNotFound):
        svc.find_certificate("nothing")
    dup = pair_objects(TOKEN, [CertObject(b"\x05", "c", a.obj.value)], [])
    with pytest.raises(CertificateAmbiguous):
        _Static([view, dup]).find_certificate(a.model.sha256[:10])


def test_algorithm_for() -> None:
    rsa_model = CertificateModel.from_der(_cert("r", rsa.generate_private_key(65537, 2048)))
    assert algorithm_for(rsa_model) is SignAlgorithm.RSA_PKCS1_SHA256
    assert algorithm_for(rsa_model, legacy_sha1=True) is SignAlgorithm.RSA_PKCS1_SHA1
    assert algorithm_for(CertificateModel.from_der(_cert("e"))) is SignAlgorithm.ECDSA_SHA256
    p384 = CertificateModel.from_der(_cert("e", ec.generate_private_key(ec.SECP384R1())))
    assert algorithm_for(p384) is SignAlgorithm.ECDSA_SHA384
    k1 = CertificateModel.from_der(_cert("k", ec.generate_private_key(ec.SECP256K1())))
    with pytest.raises(SigningUnsupported):
        algorithm_for(k1)


def test_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CERTHELPER_CONFIG", raising=False)
    cfg = load_config()
    assert cfg.path is None and cfg.modules == [] and cfg.use_catalog
    f = tmp_path / "c.toml"
    f.write_text('modules = ["vendor/lib.so"]\nuse_catalog = false\n[logging]\nlevel = "debug"\n')
    monkeypatch.setenv("CERTHELPER_CONFIG", str(f))
    cfg = load_config(extra_modules=["x.so"])
    assert cfg.modules == [str(tmp_path / "vendor/lib.so"), str(Path("x.so").resolve())]
    assert cfg.use_catalog is False and cfg.log_level == "DEBUG"
    f.write_text('[logging]\nlevel = "loud"\n')
    with pytest.raises(ConfigInvalid):
        load_config()
    with pytest.raises(ConfigInvalid):
        load_config(tmp_path / "absent.toml")


def test_catalog_is_cited_and_sane() -> None:
    entries = load_catalog("linux")
    ids = [e.id for e in entries]
    assert ids[:2] == ["softhsm2", "opensc"] and len(ids) == len(set(ids))
    for plat in ("linux", "darwin", "win32"):
        for e in load_catalog(plat):
            assert e.source, e.id
            assert all(Path(p).is_absolute() or ":\\" in p for p in e.paths), e.id
    assert os_key("win32") == "windows" and os_key("darwin") == "macos"
    assert {e.id for e, _ in installed_modules(entries)} >= {"softhsm2", "opensc"}
    assert [e.id for e in entry_for_usb_id(entries, "096E:0807")] == ["feitian-epass2003"]


def test_error_codes_are_unique_and_bilingual() -> None:
    codes = [c.code for c in ALL_ERRORS]
    assert len(codes) == len(set(codes))
    for cls in ALL_ERRORS:
        assert cls.message_zh and cls.message_en and cls.message_en.isascii()
