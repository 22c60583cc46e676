#!/usr/bin/env python3
"""Soft SKF (GM/T 0016) devices and the SM2 test PKI, for build.py; and a command line that
imports a given key pair and certificate into a new soft SKF device.

build.py imports this module and hands it itself (``core``) for the spec helpers and the RSA
CA it already has, so the two never disagree on what a subject, a validity or a key usage is.
The parts that need no spec (building libsoftskf, making a device, importing a key) work alone:

    python softhsm-fixtures/skf_build.py import SKF_DIR --device NAME --container NAME \\
        --key KEY.pem --cert CERT [--enc-key KEY.pem --enc-cert CERT] [--label LABEL] \\
        [--library PATH] [--pins-from-stdin]

Devices are written through libsoftskf itself (SKF_CreateApplication, SKF_GenECCKeyPair, …):
the signing key pairs are generated inside the soft key; encryption key pairs are made by the
"CA" (as a KMC would) and put in through the fixture-only SOFTSKF_ImportKeyPairPEM.
SM2 certificates are signed with gmalg (SM2 with SM3, ID 1234567812345678).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import gmalg  # noqa: E402
from asn1crypto import core as asn1_core  # noqa: E402
from asn1crypto import keys as asn1_keys  # noqa: E402
from asn1crypto import pem as asn1_pem  # noqa: E402
from asn1crypto import x509 as asn1_x509  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from drivers import errors as E  # noqa: E402
from drivers import sm2 as sm2alg  # noqa: E402
from drivers.skf.keys import EccPublicKey, RsaPublicKey  # noqa: E402
from drivers.skf.library import AppHandle, DevHandle, SkfLibrary  # noqa: E402
from drivers.types import Pin  # noqa: E402

SOFTSKF_SRC = Path(__file__).resolve().parent / "softskf"
LIBRARY_ENV = "SOFTSKF_LIBRARY"  # a prebuilt libsoftskf.so to use instead of building one
DIR_ENV = "SOFTSKF_DIR"  # where libsoftskf finds its devices
DEVICE_FILE = "device.conf"
DEFAULT_APPLICATION = "HEBCA_TEST"
DEFAULT_MANUFACTURER = "certhelper softskf (测试 Test)"
DEFAULT_ISSUER = "河北CA测试 HEBCA Test"
DEFAULT_PIN_RETRIES = 6
DEFAULT_USER_PIN = "123456"
DEFAULT_ADMIN_PIN = "12345678"
SPEC = Path(__file__).resolve().parent / "pki.toml"
SPEC_KEYS = ("sm2_ca", "skf", "skf_device", "skf_certificate")
MAX_LABEL_BYTES = 32  # DEVINFO.Label
MAX_NAME_BYTES = 64  # device and container names
MAX_APP_BYTES = 32
SKF_PIN_BYTES = range(6, 17)  # libsoftskf accepts PINs of 6..16 bytes
USAGES = ("sign", "enc")
SM2_CHAIN_FILE = "sm2-chain.pem"  # issuing CA, then root CA
CA_FILE_STEM = re.compile(r"[A-Za-z0-9._-]+")


class SkfBuildError(Exception):
    """Building libsoftskf or a soft SKF device failed."""


# --------------------------------------------------------------------------------------------
# libsoftskf


def resolve_library(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The libsoftskf.so to use: ``explicit``, else $SOFTSKF_LIBRARY, else the one in
    softskf/, built (or brought up to date) with make under a lock."""
    chosen = explicit or os.environ.get(LIBRARY_ENV)
    if chosen:
        path = Path(chosen).resolve()
        if not path.is_file():
            raise SkfBuildError(f"libsoftskf not found: {path}")
        return path
    lock_path = SOFTSKF_SRC / ".build.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # tests may build in parallel processes
        done = subprocess.run(
            ["make", "-s", "-C", str(SOFTSKF_SRC), "libsoftskf.so", "libsoftskf-nowait.so"],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise SkfBuildError(
            f"building libsoftskf failed (needs gcc, make and libssl-dev):\n{done.stderr.strip()}"
        )
    return SOFTSKF_SRC / "libsoftskf.so"


@contextmanager
def skf_directory(path: Path) -> Iterator[None]:
    """Point libsoftskf at ``path`` (it reads $SOFTSKF_DIR on every call) for a while."""
    before = os.environ.get(DIR_ENV)
    os.environ[DIR_ENV] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DIR_ENV, None)
        else:
            os.environ[DIR_ENV] = before


# --------------------------------------------------------------------------------------------
# Devices


@dataclass(frozen=True)
class DeviceSetup:
    """What the "factory" writes into a new device (device.conf) and its application."""

    device_name: str
    label: str
    serial: str = field(default_factory=lambda: secrets.token_hex(8).upper())
    manufacturer: str = DEFAULT_MANUFACTURER
    issuer: str = DEFAULT_ISSUER
    application: str = DEFAULT_APPLICATION
    user_pin: str = DEFAULT_USER_PIN
    admin_pin: str = DEFAULT_ADMIN_PIN
    max_retries: int = DEFAULT_PIN_RETRIES

    def __repr__(self) -> str:  # never show the PINs
        return f"DeviceSetup({self.device_name!r}, label={self.label!r}, serial={self.serial!r})"


def check_text(value: str, what: str, max_bytes: int) -> None:
    size = len(value.encode("utf-8"))
    if not value or size > max_bytes:
        raise ValueError(f"{what} {value!r} must be 1..{max_bytes} bytes of UTF-8, not {size}")
    if value.startswith(".") or any(c in value for c in "/\\\n\r\t\0"):
        raise ValueError(
            f"{what} {value!r} must not start with '.' or hold '/', '\\\\' or controls"
        )


def write_device(skf_dir: Path, setup: DeviceSetup) -> Path:
    """Create the device directory with its device.conf, atomically (a rename): to a waiting
    SKF_WaitForDevEvent this is one insertion."""
    check_text(setup.device_name, "device name", MAX_NAME_BYTES)
    check_text(setup.label, "label", MAX_LABEL_BYTES)
    final = skf_dir / setup.device_name
    if final.exists():
        raise SkfBuildError(f"device {setup.device_name!r} exists already in {skf_dir}")
    skf_dir.mkdir(parents=True, exist_ok=True)
    staging = skf_dir / f".new-{secrets.token_hex(6)}"
    staging.mkdir(mode=0o700)
    lines = [
        "# softskf device (written by softhsm-fixtures/skf_build.py)",
        "format=softskf-device/1",
        f"label={setup.label}",
        f"serial={setup.serial}",
        f"manufacturer={setup.manufacturer}",
        f"issuer={setup.issuer}",
    ]
    (staging / DEVICE_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    staging.rename(final)
    return final


@contextmanager
def new_device(lib: SkfLibrary, skf_dir: Path, setup: DeviceSetup) -> Iterator[tuple[Any, Any]]:
    """Write a device, connect, create its application and log in: yields (dev, app)."""
    write_device(skf_dir, setup)
    with skf_directory(skf_dir):
        dev: DevHandle = lib.connect(setup.device_name)
        try:
            app: AppHandle = lib.create_application(
                dev,
                setup.application,
                admin_pin=Pin(setup.admin_pin),
                user_pin=Pin(setup.user_pin),
                admin_retries=setup.max_retries,
                user_retries=setup.max_retries,
            )
            lib.verify_pin(app, Pin(setup.user_pin))
            yield dev, app
            lib.clear_secure_state(app)
        finally:
            lib.disconnect(dev)


def load_certificate(data: bytes) -> bytes:
    """DER from DER or PEM."""
    if asn1_pem.detect(data):
        _, _, data = asn1_pem.unarmor(data)
    asn1_x509.Certificate.load(data).native  # noqa: B018 - parses it fully or raises
    return data


def certificate_public_key(der: bytes) -> EccPublicKey | RsaPublicKey:
    info = asn1_x509.Certificate.load(der)["tbs_certificate"]["subject_public_key_info"]
    algorithm = info["algorithm"]["algorithm"].native
    if algorithm == "rsa":
        numbers = info["public_key"].parsed
        return RsaPublicKey(int(numbers["modulus"].native), int(numbers["public_exponent"].native))
    if algorithm == "ec" and info["algorithm"]["parameters"].chosen.dotted == sm2alg.CURVE_OID:
        return EccPublicKey.from_raw(bytes(info["public_key"]))
    raise ValueError(f"the certificate's key is neither SM2 nor RSA ({algorithm})")


def import_key_pair(
    skf_dir: str | os.PathLike[str],
    *,
    device: str,
    container: str,
    key_pem: bytes,
    certificate: bytes,
    enc_key_pem: bytes | None = None,
    enc_certificate: bytes | None = None,
    label: str | None = None,
    serial: str | None = None,
    application: str = DEFAULT_APPLICATION,
    user_pin: str = DEFAULT_USER_PIN,
    admin_pin: str = DEFAULT_ADMIN_PIN,
    library: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Make a new soft SKF device holding a given private key (PEM, SM2 or RSA 1024/2048) and
    its certificate (DER or PEM) as the signing pair of ``container``, and optionally an
    encryption pair. A fixture-only path: real keys never import a private key in clear.

    Checks that each certificate carries the public key of its private key. Returns what
    the manifest says of a device. Sets $SOFTSKF_DIR only while it works."""
    lib = SkfLibrary(resolve_library(library))
    skf_path = Path(skf_dir).resolve()
    setup = DeviceSetup(
        device_name=device,
        label=label or device,
        application=application,
        user_pin=user_pin,
        admin_pin=admin_pin,
        **({"serial": serial} if serial else {}),
    )
    check_text(container, "container name", MAX_NAME_BYTES)
    pairs = [(True, key_pem, load_certificate(certificate))]
    if (enc_key_pem is None) != (enc_certificate is None):
        raise ValueError("give both an encryption key and its certificate, or neither")
    if enc_key_pem is not None and enc_certificate is not None:
        pairs.append((False, enc_key_pem, load_certificate(enc_certificate)))
    certificates = []
    try:
        with new_device(lib, skf_path, setup) as (_dev, app):
            con = lib.create_container(app, container)
            for sign, pem, der in pairs:
                lib.import_key_pair_pem(con, pem, sign=sign)
                if lib.export_public_key(con, sign=sign) != certificate_public_key(der):
                    raise SkfBuildError(
                        f"the {'signing' if sign else 'encryption'} certificate does not "
                        "belong to its private key"
                    )
                lib.import_certificate(con, der, sign=sign)
                certificates.append(
                    {"usage": "sign" if sign else "enc", **certificate_summary(der)}
                )
            container_type = lib.container_type(con).name
            lib.close_container(con)
    except E.CertHelperError as exc:
        raise SkfBuildError(f"device {device!r}: {exc}") from exc
    return {
        "library": str(lib.path),
        "dir": str(skf_path),
        "device_name": device,
        "label": setup.label,
        "serial": setup.serial,
        "application": application,
        "containers": [{"name": container, "type": container_type, "certificates": certificates}],
    }


# --------------------------------------------------------------------------------------------
# SM2 keys and certificates (gmalg signs: pure Python, nonce from `secrets`)


class _EcPrivateKey(asn1_core.Sequence):
    """RFC 5915 ECPrivateKey with a fixed 32-byte private key (asn1crypto's own class wants
    the SM2 curve registered globally, which would change curve names process-wide)."""

    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("version", asn1_core.Integer),
        ("private_key", asn1_core.OctetString),
        ("parameters", asn1_keys.ECDomainParameters, {"explicit": 0, "optional": True}),
        ("public_key", asn1_keys.ECPointBitString, {"explicit": 1, "optional": True}),
    ]


class _PrivateKeyInfo(asn1_core.Sequence):
    _fields = [  # noqa: RUF012
        ("version", asn1_core.Integer),
        ("private_key_algorithm", asn1_keys.PrivateKeyAlgorithm),
        ("private_key", asn1_core.OctetString),
    ]


@dataclass(frozen=True)
class Sm2Key:
    d: int
    public: EccPublicKey

    @classmethod
    def generate(cls) -> Sm2Key:
        secret, point = gmalg.SM2(pc_mode=gmalg.PC_MODE.RAW).generate_keypair()
        return cls(int.from_bytes(secret, "big"), EccPublicKey.from_raw(point))

    def __repr__(self) -> str:
        return f"Sm2Key(public={self.public.point.hex()[:18]}…)"

    def sign(self, message: bytes, uid: bytes = sm2alg.DEFAULT_ID) -> bytes:
        """SM2 with SM3 over ``message`` (Z computed with ``uid``): DER SEQUENCE {r, s}."""
        signer = gmalg.SM2(sk=self.d.to_bytes(32, "big"), uid=uid, pk=self.public.point)
        r, s = signer.sign(message)
        return sm2alg.signature_der(int.from_bytes(r, "big"), int.from_bytes(s, "big"))

    def pkcs8_pem(self) -> bytes:
        curve = ("named", sm2alg.CURVE_OID)
        inner = _EcPrivateKey(
            {
                "version": 1,
                "private_key": self.d.to_bytes(32, "big"),
                "public_key": self.public.point,
            }
        )
        info = _PrivateKeyInfo(
            {
                "version": 0,
                "private_key_algorithm": {"algorithm": "ec", "parameters": curve},
                "private_key": inner.dump(),
            }
        )
        return asn1_pem.armor("PRIVATE KEY", info.dump())


@dataclass(frozen=True)
class Sm2CA:
    spec: Any  # build.CASpec
    key: Sm2Key
    der: bytes

    @property
    def certificate(self) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(self.der)

    @property
    def key_identifier(self) -> bytes:
        return hashlib.sha1(self.key.public.point).digest()

    @property
    def subject(self) -> asn1_x509.Name:
        return self.certificate["tbs_certificate"]["subject"]


def _sm2_signed(tbs: asn1_x509.TbsCertificate, key: Sm2Key) -> bytes:
    signature = key.sign(tbs.dump())
    return asn1_x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": {"algorithm": sm2alg.SM2_WITH_SM3_OID},
            "signature_value": signature,
        }
    ).dump()


def _sm2_tbs(
    core: ModuleType,
    *,
    subject: asn1_x509.Name,
    issuer: asn1_x509.Name,
    validity: Any,
    public: EccPublicKey,
    extensions: list[asn1_x509.Extension],
    now: datetime,
) -> asn1_x509.TbsCertificate:
    not_before, not_after = core.validity_dates(validity, now)
    return asn1_x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": secrets.randbits(127) | 1 << 126,
            "signature": {"algorithm": sm2alg.SM2_WITH_SM3_OID},
            "issuer": issuer,
            "validity": {
                "not_before": core._asn1_time(not_before),
                "not_after": core._asn1_time(not_after),
            },
            "subject": subject,
            "subject_public_key_info": asn1_keys.PublicKeyInfo.load(public.spki_der()),
            "extensions": extensions,
        }
    )


def build_sm2_ca(core: ModuleType, spec: Any, issuer: Sm2CA | None, now: datetime) -> Sm2CA:
    key = Sm2Key.generate()
    subject = asn1_x509.Name.load(core.build_name(spec.subject).public_bytes())
    ski = hashlib.sha1(key.public.point).digest()
    constraints: dict[str, Any] = {"ca": True}
    if spec.path_length is not None:
        constraints["path_len_constraint"] = spec.path_length
    extensions = [
        core._asn1_extension("basic_constraints", True, constraints),
        core._asn1_extension("key_usage", True, core._asn1_key_usage(spec.key_usage)),
        core._asn1_extension("key_identifier", False, ski),
        core._asn1_extension(
            "authority_key_identifier",
            False,
            {"key_identifier": issuer.key_identifier if issuer else ski},
        ),
    ]
    tbs = _sm2_tbs(
        core,
        subject=subject,
        issuer=issuer.subject if issuer else subject,
        validity=spec.validity,
        public=key.public,
        extensions=extensions,
        now=now,
    )
    return Sm2CA(spec, key, _sm2_signed(tbs, issuer.key if issuer else key))


def issue_sm2_certificate(
    core: ModuleType, spec: Any, public: EccPublicKey, issuer: Sm2CA, now: datetime
) -> bytes:
    """An SM2-with-SM3 leaf certificate for ``public``, shaped like the RSA ones."""
    extensions = [
        core._asn1_extension("basic_constraints", True, {"ca": False}),
        core._asn1_extension("key_usage", True, core._asn1_key_usage(spec.key_usage)),
        core._asn1_extension("key_identifier", False, hashlib.sha1(public.point).digest()),
        core._asn1_extension(
            "authority_key_identifier", False, {"key_identifier": issuer.key_identifier}
        ),
    ]
    if spec.extended_key_usage:
        extensions.append(
            core._asn1_extension("extended_key_usage", False, list(spec.extended_key_usage))
        )
    for ext in spec.extensions:
        extensions.append(
            asn1_x509.Extension(
                {"extn_id": ext.oid, "critical": ext.critical, "extn_value": ext.value}
            )
        )
    tbs = _sm2_tbs(
        core,
        subject=asn1_x509.Name.load(core.build_name(spec.subject).public_bytes()),
        issuer=issuer.subject,
        validity=spec.validity,
        public=public,
        extensions=extensions,
        now=now,
    )
    return _sm2_signed(tbs, issuer.key)


def certificate_summary(der: bytes) -> dict[str, Any]:
    """The manifest fields of a certificate, the same forms as build.py's."""
    cert = asn1_x509.Certificate.load(der)
    tbs = cert["tbs_certificate"]
    serial = f"{int(tbs['serial_number'].native):X}"
    key = certificate_public_key(der)
    ski = cert.key_identifier
    return {
        "sha256": hashlib.sha256(der).hexdigest(),
        "serial_hex": serial.zfill(len(serial) + len(serial) % 2),
        "subject_cn": tbs["subject"].native.get("common_name"),
        "not_before": _iso(tbs["validity"]["not_before"].native),
        "not_after": _iso(tbs["validity"]["not_after"].native),
        "key_type": "SM2" if isinstance(key, EccPublicKey) else "RSA",
        "key_bits": key.bits,
        "key_id": ski.hex() if ski else None,
        "signature_algorithm": cert["signature_algorithm"]["algorithm"].dotted,
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# Spec: [sm2_ca.*], [skf], [[skf_device]], [[skf_certificate]]


@dataclass(frozen=True)
class SkfDeviceSpec:
    name: str
    device_name: str
    label: str
    user_pin: str
    admin_pin: str
    application: str
    max_retries: int
    manufacturer: str
    issuer: str
    profiles: frozenset[str]

    def __repr__(self) -> str:
        return f"SkfDeviceSpec({self.name!r}, label={self.label!r})"


@dataclass(frozen=True)
class SkfCertSpec:
    name: str
    device: str
    container: str
    usage: str  # "sign" (key pair made in the device) | "enc" (made by the CA, imported)
    cert: Any  # build.CertSpec: subject, key, validity, usages, extensions
    profiles: frozenset[str]


@dataclass(frozen=True)
class SkfSpec:
    sm2_root: Any | None  # build.CASpec
    sm2_issuing: Any | None
    devices: tuple[SkfDeviceSpec, ...]
    certificates: tuple[SkfCertSpec, ...]

    def for_profile(self, profile: str) -> SkfSpec:
        return replace(
            self,
            devices=tuple(d for d in self.devices if profile in d.profiles),
            certificates=tuple(c for c in self.certificates if profile in c.profiles),
        )

    def containers(self, device: str) -> list[tuple[str, list[SkfCertSpec]]]:
        """The containers of a device in spec order, each with its certificates."""
        found: dict[str, list[SkfCertSpec]] = {}
        for cert in self.certificates:
            if cert.device == device:
                found.setdefault(cert.container, []).append(cert)
        return list(found.items())


def _name(core: ModuleType, value: str, what: str, max_bytes: int, where: str) -> str:
    try:
        check_text(value, what, max_bytes)
    except ValueError as exc:
        raise core.SpecError(f"{where}: {exc}") from None
    return value


def _skf_pin(core: ModuleType, value: Any, where: str) -> str:
    pin = core._check_type(value, str, where)
    if len(pin.encode("utf-8")) not in SKF_PIN_BYTES:
        raise core.SpecError(
            f"{where}: an SKF PIN must be {SKF_PIN_BYTES.start}..{SKF_PIN_BYTES.stop - 1} bytes"
        )
    return pin


def parse_sm2_ca(core: ModuleType, tables: Mapping[str, Any], name: str) -> Any:
    where = f"sm2_ca.{name}"
    table = core._get(tables, name, dict, "sm2_ca")
    allowed = ("file", "subject", "not_before_days", "not_after_days", "validity_days")
    core._reject_unknown(table, (*allowed, "key_usage", "path_length"), where)
    file = core._get(table, "file", str, where)
    if not CA_FILE_STEM.fullmatch(file):
        raise core.SpecError(f"{where}.file: {file!r} must be a plain file name stem")
    path_length = core._opt(table, "path_length", int, where, None)
    if path_length is not None and path_length < 0:
        raise core.SpecError(f"{where}.path_length: must be >= 0")
    return core.CASpec(
        name=name,
        file=file,
        subject=core.parse_subject(core._get(table, "subject", dict, where), f"{where}.subject"),
        key=core.KeySpec("SM2", 256, "sm2p256v1"),
        validity=core.parse_validity(table, where),
        key_usage=core.parse_key_usage(table, where) or frozenset({"key_cert_sign", "crl_sign"}),
        path_length=path_length,
    )


DEVICE_KEYS = (
    "name",
    "device_name",
    "label",
    "profiles",
    "user_pin",
    "admin_pin",
    "application",
    "max_retries",
    "manufacturer",
    "issuer",
)


def parse_device(
    core: ModuleType,
    table: Any,
    where: str,
    defaults: Mapping[str, Any],
    pins: Mapping[str, Any],
    profiles: Iterable[str],
) -> SkfDeviceSpec:
    core._check_type(table, dict, where)
    core._reject_unknown(table, DEVICE_KEYS, where)
    name = core._get(table, "name", str, where)
    where = f"{where} ({name})"

    def setting(key: str, fallback: Any) -> Any:
        return table.get(key, defaults.get(key, fallback))

    def pin(key: str, pins_key: str) -> str:
        if key in table:
            return _skf_pin(core, table[key], f"{where}.{key}")
        if pins_key not in pins:
            raise core.SpecError(f"{where}: no {key}; set it on the device or {pins_key} in [pins]")
        return _skf_pin(core, pins[pins_key], f"pins.{pins_key}")

    retries = core._check_type(setting("max_retries", DEFAULT_PIN_RETRIES), int, where)
    if not 1 <= retries <= 15:
        raise core.SpecError(f"{where}.max_retries: must be 1..15")
    return SkfDeviceSpec(
        name=name,
        device_name=_name(core, setting("device_name", name), "device name", MAX_NAME_BYTES, where),
        label=_name(core, core._get(table, "label", str, where), "label", MAX_LABEL_BYTES, where),
        user_pin=pin("user_pin", "user_pin"),
        admin_pin=pin("admin_pin", "so_pin"),
        application=_name(
            core,
            core._check_type(setting("application", DEFAULT_APPLICATION), str, where),
            "application name",
            MAX_APP_BYTES,
            where,
        ),
        max_retries=retries,
        manufacturer=core._check_type(setting("manufacturer", DEFAULT_MANUFACTURER), str, where),
        issuer=core._check_type(setting("issuer", DEFAULT_ISSUER), str, where),
        profiles=core.parse_profiles(table, where, profiles),
    )


CERT_KEYS = (
    "name",
    "device",
    "container",
    "usage",
    "key",
    "subject",
    "profiles",
    "not_before_days",
    "not_after_days",
    "validity_days",
    "key_usage",
    "extended_key_usage",
    "extensions",
)


def parse_skf_certificate(
    core: ModuleType, table: Any, where: str, devices: Mapping[str, SkfDeviceSpec]
) -> SkfCertSpec:
    core._check_type(table, dict, where)
    core._reject_unknown(table, CERT_KEYS, where)
    name = core._get(table, "name", str, where)
    where = f"{where} ({name})"
    ref = core._get(table, "device", str, where)
    if ref not in devices:
        raise core.SpecError(f"{where}.device: no skf_device named {ref!r}")
    device = devices[ref]
    container = _name(
        core, core._get(table, "container", str, where), "container name", MAX_NAME_BYTES, where
    )
    usage = core._get(table, "usage", str, where)
    if usage not in USAGES:
        raise core.SpecError(f"{where}.usage: use 'sign' or 'enc', got {usage!r}")
    key = core.parse_key(core._get(table, "key", dict, where), f"{where}.key")
    if key.type not in ("SM2", "RSA") or (key.type == "RSA" and key.bits not in (1024, 2048)):
        raise core.SpecError(f"{where}.key: an SKF container holds SM2 or RSA-1024/2048 keys")
    extensions = core._opt(table, "extensions", list, where, [])
    profiles = core.member_profiles(table, where, device)
    cert = core.CertSpec(
        name=name,
        token=device.name,
        label=container,
        kind="x509",
        profiles=profiles,
        subject=core.parse_subject(core._get(table, "subject", dict, where), f"{where}.subject"),
        key=key,
        key_on_token=usage == "sign",
        validity=core.parse_validity(table, where),
        key_usage=core.parse_key_usage(table, where),
        extended_key_usage=core.parse_extended_key_usage(table, where),
        extensions=tuple(
            core.parse_extension(ext, f"{where}.extensions[{i}]")
            for i, ext in enumerate(extensions)
        ),
    )
    return SkfCertSpec(name, device.name, container, usage, cert, profiles)


def parse_skf(
    core: ModuleType, data: Mapping[str, Any], profiles: Iterable[str], pins: Mapping[str, Any]
) -> SkfSpec | None:
    """The SKF part of a spec, or None when it has none."""
    if not any(key in data for key in SPEC_KEYS):
        return None
    defaults = core._opt(data, "skf", dict, "spec", {})
    core._reject_unknown(defaults, ("application", "manufacturer", "issuer", "max_retries"), "skf")
    device_list = [
        parse_device(core, t, f"skf_device[{i}]", defaults, pins, profiles)
        for i, t in enumerate(core._opt(data, "skf_device", list, "spec", []))
    ]
    core._unique((d.name for d in device_list), "skf_device name")
    core._unique((d.device_name for d in device_list), "skf_device device_name")
    devices = {d.name: d for d in device_list}
    certificates = tuple(
        parse_skf_certificate(core, t, f"skf_certificate[{i}]", devices)
        for i, t in enumerate(core._opt(data, "skf_certificate", list, "spec", []))
    )
    core._unique((c.name for c in certificates), "skf_certificate name")
    core._unique(
        (f"{c.usage} certificate of container {c.container!r} on {c.device}" for c in certificates),
        "SKF certificate slot",
    )
    key_types: dict[tuple[str, str], str] = {}
    for cert in certificates:
        previous = key_types.setdefault((cert.device, cert.container), cert.cert.key.type)
        if previous != cert.cert.key.type:
            raise core.SpecError(
                f"skf_certificate {cert.name}: container {cert.container!r} holds {previous} "
                f"keys, not {cert.cert.key.type}"
            )
    cas = core._opt(data, "sm2_ca", dict, "spec", {})
    core._reject_unknown(cas, ("root", "issuing"), "sm2_ca")
    root = parse_sm2_ca(core, cas, "root") if cas else None
    issuing = parse_sm2_ca(core, cas, "issuing") if cas else None
    if any(c.cert.key.type == "SM2" for c in certificates) and root is None:
        raise core.SpecError(
            "skf_certificate: SM2 certificates need [sm2_ca.root] and [sm2_ca.issuing]"
        )
    return SkfSpec(root, issuing, tuple(device_list), certificates)


# --------------------------------------------------------------------------------------------
# Build


def _generate_outside(key: Any) -> tuple[bytes, EccPublicKey | RsaPublicKey]:
    """A key pair made by the CA (a KMC): PKCS#8 PEM and its public key."""
    if key.type == "SM2":
        pair = Sm2Key.generate()
        return pair.pkcs8_pem(), pair.public
    private = rsa.generate_private_key(public_exponent=65537, key_size=key.bits)
    numbers = private.public_key().public_numbers()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, RsaPublicKey(numbers.n, numbers.e)


def _issue(
    core: ModuleType,
    cert: SkfCertSpec,
    public: EccPublicKey | RsaPublicKey,
    sm2_issuer: Sm2CA | None,
    rsa_issuer: Any,
    now: datetime,
) -> bytes:
    if isinstance(public, EccPublicKey):
        assert sm2_issuer is not None
        return issue_sm2_certificate(core, cert.cert, public, sm2_issuer, now)
    crypto_key = rsa.RSAPublicNumbers(public.e, public.n).public_key()
    issued = core.issue_certificate(
        cert.cert, crypto_key, core.key_identifier(crypto_key), rsa_issuer, now
    )
    return issued.public_bytes(serialization.Encoding.DER)


def write_sm2_ca_files(core: ModuleType, outdir: Path, root: Sm2CA, issuing: Sm2CA) -> dict:
    ca_dir = outdir / "ca"
    ca_dir.mkdir(exist_ok=True)
    paths: dict[str, str] = {}
    for role, ca in (("root", root), ("issuing", issuing)):
        pem_path = ca_dir / f"{ca.spec.file}.pem"
        pem_path.write_bytes(asn1_pem.armor("CERTIFICATE", ca.der))
        core.write_private(ca_dir / f"{ca.spec.file}.key", ca.key.pkcs8_pem())
        paths[role] = str(pem_path.resolve())
    chain = ca_dir / SM2_CHAIN_FILE
    chain.write_bytes(b"".join(asn1_pem.armor("CERTIFICATE", c.der) for c in (issuing, root)))
    paths["chain"] = str(chain.resolve())
    return paths


def build_skf(
    core: ModuleType, outdir: Path, spec: SkfSpec, rsa_issuer: Any, now: datetime, library: Path
) -> dict[str, Any]:
    """Build the SM2 CAs and every SKF device of ``spec``: the manifest's "skf" section."""
    lib = SkfLibrary(library)
    skf_dir = (outdir / "skf").resolve()
    skf_dir.mkdir(parents=True, exist_ok=True)
    section: dict[str, Any] = {
        "library": str(library),
        "library_nowait": str(library.with_name("libsoftskf-nowait.so")),
        "dir": str(skf_dir),
        "dir_env": DIR_ENV,
        "ca": None,
        "devices": [],
        "certificates": [],
    }
    sm2_issuer = None
    if spec.sm2_root is not None and spec.sm2_issuing is not None:
        root = build_sm2_ca(core, spec.sm2_root, None, now)
        sm2_issuer = build_sm2_ca(core, spec.sm2_issuing, root, now)
        section["ca"] = write_sm2_ca_files(core, outdir, root, sm2_issuer)
    for device in spec.devices:
        setup = DeviceSetup(
            device_name=device.device_name,
            label=device.label,
            manufacturer=device.manufacturer,
            issuer=device.issuer,
            application=device.application,
            user_pin=device.user_pin,
            admin_pin=device.admin_pin,
            max_retries=device.max_retries,
        )
        entry = {
            "name": device.name,
            "device_name": device.device_name,
            "label": device.label,
            "serial": setup.serial,
            "manufacturer": device.manufacturer,
            "application": device.application,
            "max_retries": device.max_retries,
            "so_pin_note": "see pki.toml",
            "containers": [],
        }
        try:
            with new_device(lib, skf_dir, setup) as (_dev, app):
                for container, certs in spec.containers(device.name):
                    con = lib.create_container(app, container)
                    names: dict[str, str] = {}
                    for cert in certs:
                        if cert.usage == "sign":
                            public = (
                                lib.gen_ecc_key_pair(con)
                                if cert.cert.key.type == "SM2"
                                else lib.gen_rsa_key_pair(con, cert.cert.key.bits)
                            )
                        else:
                            pem, public = _generate_outside(cert.cert.key)
                            lib.import_key_pair_pem(con, pem, sign=False)
                        der = _issue(core, cert, public, sm2_issuer, rsa_issuer, now)
                        lib.import_certificate(con, der, sign=cert.usage == "sign")
                        names[cert.usage] = cert.name
                        section["certificates"].append(
                            {
                                "name": cert.name,
                                "device": device.name,
                                "device_name": device.device_name,
                                "device_label": device.label,
                                "device_serial": setup.serial,
                                "application": device.application,
                                "container": container,
                                "usage": cert.usage,
                                "key_origin": "device" if cert.usage == "sign" else "imported",
                                "issuer": "sm2" if isinstance(public, EccPublicKey) else "rsa",
                                **certificate_summary(der),
                            }
                        )
                    entry["containers"].append(
                        {
                            "name": container,
                            "type": lib.container_type(con).name,
                            "certificates": names,
                        }
                    )
                    lib.close_container(con)
        except E.CertHelperError as exc:
            raise SkfBuildError(f"SKF device {device.label!r}: {exc}") from exc
        section["devices"].append(entry)
    return section


def print_summary(manifest: Mapping[str, Any]) -> None:
    section = manifest.get("skf")
    if not section:
        return
    print(f"  export {section['dir_env']}={section['dir']}   (library {section['library']})")
    for device in section["devices"]:
        print(
            f"  SKF device {device['label']} ({device['device_name']}, serial {device['serial']})"
        )
        for cert in section["certificates"]:
            if cert["device"] == device["name"]:
                print(
                    f"    cert {cert['name']:<16} {cert['key_type']:<3} {cert['usage']:<4} "
                    f"not_after {cert['not_after']}  {cert['subject_cn']}"
                )


# --------------------------------------------------------------------------------------------
# Command line: import a key pair and certificate into a new device


def _spec_pins() -> tuple[str, str]:
    with SPEC.open("rb") as handle:
        pins = tomllib.load(handle).get("pins", {})
    return pins.get("user_pin", DEFAULT_USER_PIN), pins.get("so_pin", DEFAULT_ADMIN_PIN)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Soft SKF devices for certhelper's tests.")
    commands = parser.add_subparsers(dest="command", required=True)
    imp = commands.add_parser(
        "import",
        help="make a new device holding a given private key and certificate (fixtures only)",
    )
    imp.add_argument("skf_dir", type=Path, help="the SOFTSKF_DIR to put the device in")
    imp.add_argument("--device", required=True, help="device (directory) name")
    imp.add_argument("--container", required=True, help="container name")
    imp.add_argument("--key", type=Path, required=True, help="signing private key, PEM")
    imp.add_argument("--cert", type=Path, required=True, help="signing certificate, DER or PEM")
    imp.add_argument("--enc-key", type=Path, help="encryption private key, PEM")
    imp.add_argument("--enc-cert", type=Path, help="encryption certificate, DER or PEM")
    imp.add_argument("--label", help="device label (default: the device name)")
    imp.add_argument("--serial", help="serial number (default: random)")
    imp.add_argument("--application", default=DEFAULT_APPLICATION)
    imp.add_argument("--library", help=f"libsoftskf.so (default: ${LIBRARY_ENV} or build it)")
    imp.add_argument(
        "--pins-from-stdin",
        action="store_true",
        help="read the user PIN, then the admin PIN, one a line (default: pki.toml's [pins])",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = parse_args(argv)
    if args.pins_from_stdin:
        lines = sys.stdin.read().splitlines()
        if len(lines) < 2:
            print("skf_build.py: --pins-from-stdin wants two lines", file=sys.stderr)
            return 2
        user_pin, admin_pin = lines[0], lines[1]
    else:
        user_pin, admin_pin = _spec_pins()
    try:
        result = import_key_pair(
            args.skf_dir,
            device=args.device,
            container=args.container,
            key_pem=args.key.read_bytes(),
            certificate=args.cert.read_bytes(),
            enc_key_pem=args.enc_key.read_bytes() if args.enc_key else None,
            enc_certificate=args.enc_cert.read_bytes() if args.enc_cert else None,
            label=args.label,
            serial=args.serial,
            application=args.application,
            user_pin=user_pin,
            admin_pin=admin_pin,
            library=args.library,
        )
    except (SkfBuildError, ValueError) as exc:
        print(f"skf_build.py: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"skf_build.py: {exc.strerror or exc}: {exc.filename}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
