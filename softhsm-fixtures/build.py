#!/usr/bin/env python3
"""Build the certhelper test PKI and SoftHSM tokens described by pki.toml.

Usage: python softhsm-fixtures/build.py OUTDIR [--profile demo|test] [--spec PATH]
                                              [--force] [--module PATH]

All token work happens in this process: SoftHSM reads SOFTHSM2_CONF when the module is
initialised and python-pkcs11 caches modules per path, so run this file as a script (or in a
subprocess), never imported into a process that has already loaded a PKCS#11 module.

PINs never appear on a command line: tokens are initialised with C_InitToken through ctypes,
and the user PIN is set with C_InitPIN from an SO session (python-pkcs11).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import time
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# the repository root, so `drivers` imports without an installed package, and this folder
# for skf_build (SKF devices and the SM2 PKI, kept out of this file)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import skf_build
from asn1crypto import algos as asn1_algos
from asn1crypto import core as asn1_core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from drivers.pkcs11.ckraw import CK_TOKEN_INFO, CK_ULONG

MANIFEST_SCHEMA = "certhelper-fixtures/1"
SPEC_SCHEMA = "certhelper-pki/1"
DEFAULT_PROFILE = "test"
DEFAULT_SPEC = Path(__file__).resolve().parent / "pki.toml"
MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
MARKER_FILE = ".certhelper-fixtures"
MAX_LABEL_BYTES = 32
PIN_LENGTHS = range(4, 256)  # SoftHSM accepts PINs of 4..255 bytes

SM2_CURVE_OID = "1.2.156.10197.1.301"
SM2_WITH_SM3_OID = "1.2.156.10197.1.501"

SUBJECT_OIDS: dict[str, x509.ObjectIdentifier] = {
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
    "emailAddress": NameOID.EMAIL_ADDRESS,
    "serialNumber": NameOID.SERIAL_NUMBER,
}
KEY_USAGES: dict[str, str] = {
    "digital_signature": "digital_signature",
    "non_repudiation": "content_commitment",
    "content_commitment": "content_commitment",
    "key_encipherment": "key_encipherment",
    "data_encipherment": "data_encipherment",
    "key_agreement": "key_agreement",
    "key_cert_sign": "key_cert_sign",
    "crl_sign": "crl_sign",
}
EXTENDED_KEY_USAGES: dict[str, x509.ObjectIdentifier] = {
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "time_stamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
}
EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "secp256r1": ec.SECP256R1,
    "secp384r1": ec.SECP384R1,
}
CERT_KINDS = ("x509", "sm2", "corrupt")
OID_RE = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


class SpecError(Exception):
    """The spec file is missing, unreadable or describes something invalid."""


class BuildError(Exception):
    """Building the fixtures failed."""


# --------------------------------------------------------------------------------------------
# Spec model


@dataclass(frozen=True)
class KeySpec:
    type: str  # "RSA" | "EC" | "SM2"
    bits: int
    curve: str | None = None


@dataclass(frozen=True)
class Validity:
    not_before_days: int
    not_after_days: int


@dataclass(frozen=True)
class ExtensionSpec:
    oid: str
    critical: bool
    value: bytes


@dataclass(frozen=True)
class CASpec:
    name: str
    file: str
    subject: tuple[tuple[str, str], ...]
    key: KeySpec
    validity: Validity
    key_usage: frozenset[str]
    path_length: int | None


@dataclass(frozen=True)
class TokenSpec:
    name: str
    label: str
    user_pin: str
    so_pin: str
    profiles: frozenset[str]


@dataclass(frozen=True)
class CertSpec:
    name: str
    token: str
    label: str
    kind: str
    profiles: frozenset[str]
    subject: tuple[tuple[str, str], ...]
    key: KeySpec | None = None
    key_on_token: bool = False
    validity: Validity | None = None
    key_usage: frozenset[str] = frozenset()
    extended_key_usage: tuple[str, ...] = ()
    extensions: tuple[ExtensionSpec, ...] = ()
    value: bytes = b""
    key_id: bytes | None = None


@dataclass(frozen=True)
class KeyPairSpec:
    name: str
    token: str
    label: str
    key: KeySpec
    profiles: frozenset[str]


@dataclass(frozen=True)
class Spec:
    path: Path
    profiles: tuple[str, ...]
    root: CASpec
    issuing: CASpec
    tokens: tuple[TokenSpec, ...]
    certificates: tuple[CertSpec, ...]
    keys: tuple[KeyPairSpec, ...]
    skf: skf_build.SkfSpec | None = None  # [[skf_device]], [[skf_certificate]], [sm2_ca.*]

    def for_profile(self, profile: str) -> Spec:
        if profile not in self.profiles:
            raise SpecError(
                f"unknown profile {profile!r}; the spec declares {', '.join(self.profiles)}"
            )
        return replace(
            self,
            tokens=tuple(t for t in self.tokens if profile in t.profiles),
            certificates=tuple(c for c in self.certificates if profile in c.profiles),
            keys=tuple(k for k in self.keys if profile in k.profiles),
            skf=self.skf.for_profile(profile) if self.skf else None,
        )


# --------------------------------------------------------------------------------------------
# Spec parsing


def _get(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in table:
        raise SpecError(f"{where}: missing required key {key!r}")
    return _check_type(table[key], kind, f"{where}.{key}")


def _opt(
    table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any
) -> Any:
    if key not in table:
        return default
    return _check_type(table[key], kind, f"{where}.{key}")


def _check_type(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    # bool is a subclass of int: never accept it where an int is wanted.
    if isinstance(value, bool) and kind is int:
        raise SpecError(f"{where}: expected an integer, got {value!r}")
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise SpecError(f"{where}: expected {expected}, got {type(value).__name__} {value!r}")
    return value


def _reject_unknown(table: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")


def _string_list(table: Mapping[str, Any], key: str, where: str) -> list[str]:
    values = _opt(table, key, list, where, [])
    for index, value in enumerate(values):
        _check_type(value, str, f"{where}.{key}[{index}]")
    return values


def parse_label(value: Any, where: str) -> str:
    label = _check_type(value, str, where)
    size = len(label.encode("utf-8"))
    if not label.strip():
        raise SpecError(f"{where}: a token label must not be empty")
    if size > MAX_LABEL_BYTES:
        raise SpecError(
            f"{where}: token label {label!r} is {size} bytes in UTF-8; "
            f"PKCS#11 token labels hold at most {MAX_LABEL_BYTES} bytes"
        )
    return label


def parse_pin(value: Any, where: str) -> str:
    pin = _check_type(value, str, where)
    if len(pin.encode("utf-8")) not in PIN_LENGTHS:
        raise SpecError(f"{where}: a PIN must be {PIN_LENGTHS.start}..{PIN_LENGTHS.stop - 1} bytes")
    return pin


def parse_subject(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    table = _check_type(value, dict, where)
    if not table:
        raise SpecError(f"{where}: the subject needs at least one attribute")
    _reject_unknown(table, SUBJECT_OIDS, where)
    for key, text in table.items():
        if not _check_type(text, str, f"{where}.{key}"):
            raise SpecError(f"{where}.{key}: must not be empty")
    if "C" in table and not re.fullmatch(r"[A-Z]{2}", table["C"]):
        raise SpecError(f"{where}.C: a country is two upper-case letters, got {table['C']!r}")
    return tuple(table.items())


def parse_key(value: Any, where: str) -> KeySpec:
    table = _check_type(value, dict, where)
    key_type = _get(table, "type", str, where).upper()
    if key_type == "RSA":
        _reject_unknown(table, ("type", "bits"), where)
        bits = _get(table, "bits", int, where)
        if bits < 1024 or bits % 256:
            raise SpecError(f"{where}.bits: RSA keys need >= 1024 bits in steps of 256")
        return KeySpec("RSA", bits)
    if key_type == "EC":
        _reject_unknown(table, ("type", "curve"), where)
        curve = _get(table, "curve", str, where)
        if curve not in EC_CURVES:
            raise SpecError(f"{where}.curve: unsupported curve {curve!r}; use {list(EC_CURVES)}")
        return KeySpec("EC", EC_CURVES[curve].key_size, curve)
    if key_type == "SM2":
        _reject_unknown(table, ("type",), where)
        return KeySpec("SM2", 256, "sm2p256v1")
    raise SpecError(f"{where}.type: unknown key type {key_type!r}; use RSA, EC or SM2")


def parse_validity(table: Mapping[str, Any], where: str) -> Validity:
    not_before = _get(table, "not_before_days", int, where)
    has_after, has_duration = "not_after_days" in table, "validity_days" in table
    if has_after == has_duration:
        raise SpecError(f"{where}: give exactly one of not_after_days or validity_days")
    if has_after:
        not_after = _get(table, "not_after_days", int, where)
    else:
        not_after = not_before + _get(table, "validity_days", int, where)
    if not_after <= not_before:
        raise SpecError(f"{where}: the validity ends before it starts")
    return Validity(not_before, not_after)


def parse_key_usage(table: Mapping[str, Any], where: str) -> frozenset[str]:
    names = _string_list(table, "key_usage", where)
    for name in names:
        if name not in KEY_USAGES:
            raise SpecError(f"{where}.key_usage: unknown usage {name!r}; use {list(KEY_USAGES)}")
    return frozenset(KEY_USAGES[name] for name in names)


def parse_extended_key_usage(table: Mapping[str, Any], where: str) -> tuple[str, ...]:
    names = _string_list(table, "extended_key_usage", where)
    for name in names:
        if name not in EXTENDED_KEY_USAGES and not OID_RE.match(name):
            raise SpecError(
                f"{where}.extended_key_usage: {name!r} is neither a dotted OID nor one of "
                f"{list(EXTENDED_KEY_USAGES)}"
            )
    return tuple(names)


def parse_extension(value: Any, where: str) -> ExtensionSpec:
    table = _check_type(value, dict, where)
    _reject_unknown(table, ("oid", "critical", "utf8", "der_hex"), where)
    oid = _get(table, "oid", str, where)
    if not OID_RE.match(oid):
        raise SpecError(f"{where}.oid: {oid!r} is not a dotted OID")
    critical = _opt(table, "critical", bool, where, False)
    if ("utf8" in table) == ("der_hex" in table):
        raise SpecError(f"{where}: give exactly one of utf8 or der_hex")
    if "utf8" in table:
        der = asn1_core.UTF8String(_get(table, "utf8", str, where)).dump()
    else:
        try:
            der = bytes.fromhex(_get(table, "der_hex", str, where))
        except ValueError as exc:
            raise SpecError(f"{where}.der_hex: not hex ({exc})") from None
    return ExtensionSpec(oid, critical, der)


def parse_profiles(table: Mapping[str, Any], where: str, known: Iterable[str]) -> frozenset[str]:
    """The profiles of a token: required, non-empty, all declared at the top of the spec."""
    profiles = frozenset(_string_list(table, "profiles", where))
    if "profiles" not in table or not profiles:
        raise SpecError(f"{where}.profiles: name at least one profile")
    unknown = sorted(profiles - set(known))
    if unknown:
        raise SpecError(f"{where}.profiles: undeclared profile(s) {unknown}")
    return profiles


def member_profiles(table: Mapping[str, Any], where: str, token: TokenSpec) -> frozenset[str]:
    """The profiles of an object on a token: by default the token's, else a subset of them."""
    if "profiles" not in table:
        return token.profiles
    profiles = frozenset(_string_list(table, "profiles", where))
    if not profiles:
        raise SpecError(f"{where}.profiles: name at least one profile or leave it out")
    if not profiles <= token.profiles:
        raise SpecError(
            f"{where}.profiles: {sorted(profiles - token.profiles)} "
            f"not among its token's profiles {sorted(token.profiles)}"
        )
    return profiles


def parse_ca(tables: Mapping[str, Any], name: str) -> CASpec:
    where = f"ca.{name}"
    table = _get(tables, name, dict, "ca")
    allowed = ("file", "subject", "key", "not_before_days", "not_after_days", "validity_days")
    _reject_unknown(table, (*allowed, "key_usage", "path_length"), where)
    file = _get(table, "file", str, where)
    if not re.fullmatch(r"[A-Za-z0-9._-]+", file):
        raise SpecError(f"{where}.file: {file!r} must be a plain file name stem")
    key = parse_key(_get(table, "key", dict, where), f"{where}.key")
    if key.type == "SM2":
        raise SpecError(f"{where}.key: a CA key must be RSA or EC")
    path_length = _opt(table, "path_length", int, where, None)
    if path_length is not None and path_length < 0:
        raise SpecError(f"{where}.path_length: must be >= 0")
    return CASpec(
        name=name,
        file=file,
        subject=parse_subject(_get(table, "subject", dict, where), f"{where}.subject"),
        key=key,
        validity=parse_validity(table, where),
        key_usage=parse_key_usage(table, where) or frozenset({"key_cert_sign", "crl_sign"}),
        path_length=path_length,
    )


def parse_token(table: Any, where: str, pins: Mapping[str, Any], known: Iterable[str]) -> TokenSpec:
    _check_type(table, dict, where)
    _reject_unknown(table, ("name", "label", "profiles", "user_pin", "so_pin"), where)
    return TokenSpec(
        name=_get(table, "name", str, where),
        label=parse_label(_get(table, "label", str, where), f"{where}.label"),
        user_pin=_token_pin(table, pins, "user_pin", where),
        so_pin=_token_pin(table, pins, "so_pin", where),
        profiles=parse_profiles(table, where, known),
    )


def _token_pin(table: Mapping[str, Any], pins: Mapping[str, Any], key: str, where: str) -> str:
    if key in table:
        return parse_pin(table[key], f"{where}.{key}")
    if key in pins:
        return parse_pin(pins[key], f"pins.{key}")
    raise SpecError(f"{where}: no {key}; set it on the token or in [pins]")


COMMON_CERT_KEYS = frozenset(["name", "token", "label", "kind", "profiles", "subject", "key_id"])
ISSUED_ONLY_KEYS = frozenset(
    {
        "key",
        "private_key",
        "not_before_days",
        "not_after_days",
        "validity_days",
        "key_usage",
        "extended_key_usage",
        "extensions",
    }
)
CERT_KEYS = COMMON_CERT_KEYS | ISSUED_ONLY_KEYS | {"value"}


def parse_certificate(table: Any, where: str, tokens: Mapping[str, TokenSpec]) -> CertSpec:
    _check_type(table, dict, where)
    _reject_unknown(table, CERT_KEYS, where)
    name = _get(table, "name", str, where)
    where = f"{where} ({name})"
    token = _token_ref(table, where, tokens)
    kind = _opt(table, "kind", str, where, "x509")
    if kind not in CERT_KINDS:
        raise SpecError(f"{where}.kind: unknown kind {kind!r}; use {list(CERT_KINDS)}")
    common = {
        "name": name,
        "token": token.name,
        "label": _object_label(table, where),
        "kind": kind,
        "profiles": member_profiles(table, where, token),
        "subject": parse_subject(_get(table, "subject", dict, where), f"{where}.subject"),
        "key_id": _parse_key_id(table, where),
    }
    if kind == "corrupt":
        return _parse_corrupt(table, where, common)
    return _parse_issued(table, where, common)


def _token_ref(table: Mapping[str, Any], where: str, tokens: Mapping[str, TokenSpec]) -> TokenSpec:
    ref = _get(table, "token", str, where)
    if ref not in tokens:
        raise SpecError(f"{where}.token: no token named {ref!r}; tokens are {list(tokens)}")
    return tokens[ref]


def _object_label(table: Mapping[str, Any], where: str) -> str:
    label = _get(table, "label", str, where)
    if not label.strip():
        raise SpecError(f"{where}.label: must not be empty")
    return label


def _parse_key_id(table: Mapping[str, Any], where: str) -> bytes | None:
    if "key_id" not in table:
        return None
    try:
        key_id = bytes.fromhex(_get(table, "key_id", str, where))
    except ValueError as exc:
        raise SpecError(f"{where}.key_id: not hex ({exc})") from None
    if not key_id:
        raise SpecError(f"{where}.key_id: must not be empty")
    return key_id


def _parse_corrupt(table: Mapping[str, Any], where: str, common: dict[str, Any]) -> CertSpec:
    extra = sorted(set(table) & ISSUED_ONLY_KEYS)
    if extra:
        raise SpecError(f"{where}: kind 'corrupt' takes no {', '.join(extra)}")
    value = _get(table, "value", str, where).encode("utf-8")
    return CertSpec(**common, value=value)


def _parse_issued(table: Mapping[str, Any], where: str, common: dict[str, Any]) -> CertSpec:
    kind = common["kind"]
    if "value" in table:
        raise SpecError(f"{where}.value: only kind 'corrupt' takes a value")
    key = parse_key(_get(table, "key", dict, where), f"{where}.key")
    storage = _opt(table, "private_key", str, where, "none" if kind == "sm2" else "token")
    if storage not in ("token", "none"):
        raise SpecError(f"{where}.private_key: use 'token' or 'none', got {storage!r}")
    if (kind == "sm2") != (key.type == "SM2"):
        raise SpecError(f"{where}.key: kind 'sm2' goes with key type SM2, and only with it")
    if kind == "sm2" and storage != "none":
        raise SpecError(f"{where}.private_key: SoftHSM has no SM2; an SM2 key cannot be on it")
    if kind == "sm2" and common["key_id"] is not None:
        raise SpecError(f"{where}.key_id: derived from the SM2 public point, do not set it")
    extensions = _opt(table, "extensions", list, where, [])
    return CertSpec(
        **common,
        key=key,
        key_on_token=storage == "token",
        validity=parse_validity(table, where),
        key_usage=parse_key_usage(table, where),
        extended_key_usage=parse_extended_key_usage(table, where),
        extensions=tuple(
            parse_extension(ext, f"{where}.extensions[{i}]") for i, ext in enumerate(extensions)
        ),
    )


def parse_keypair(table: Any, where: str, tokens: Mapping[str, TokenSpec]) -> KeyPairSpec:
    _check_type(table, dict, where)
    _reject_unknown(table, ("name", "token", "label", "key", "profiles"), where)
    name = _get(table, "name", str, where)
    where = f"{where} ({name})"
    token = _token_ref(table, where, tokens)
    key = parse_key(_get(table, "key", dict, where), f"{where}.key")
    if key.type == "SM2":
        raise SpecError(f"{where}.key: SoftHSM cannot hold SM2 keys")
    return KeyPairSpec(
        name=name,
        token=token.name,
        label=_object_label(table, where),
        key=key,
        profiles=member_profiles(table, where, token),
    )


def _unique(names: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SpecError(f"duplicate {what}: {name}")
        seen.add(name)


def parse_spec(data: Mapping[str, Any], path: Path) -> Spec:
    _reject_unknown(
        data,
        ("schema", "profiles", "pins", "ca", "token", "certificate", "key", *skf_build.SPEC_KEYS),
        "spec",
    )
    schema = _get(data, "schema", str, "spec")
    if schema != SPEC_SCHEMA:
        raise SpecError(f"spec.schema: expected {SPEC_SCHEMA!r}, got {schema!r}")
    profiles = tuple(_string_list(data, "profiles", "spec"))
    if not profiles:
        raise SpecError("spec.profiles: declare at least one profile")
    pins = _opt(data, "pins", dict, "spec", {})
    _reject_unknown(pins, ("user_pin", "so_pin"), "pins")
    cas = _get(data, "ca", dict, "spec")
    _reject_unknown(cas, ("root", "issuing"), "ca")
    token_list = [
        parse_token(t, f"token[{i}]", pins, profiles)
        for i, t in enumerate(_opt(data, "token", list, "spec", []))
    ]
    _unique((t.name for t in token_list), "token name")
    _unique((t.label for t in token_list), "token label")
    tokens = {t.name: t for t in token_list}
    certificates = tuple(
        parse_certificate(c, f"certificate[{i}]", tokens)
        for i, c in enumerate(_opt(data, "certificate", list, "spec", []))
    )
    keys = tuple(
        parse_keypair(k, f"key[{i}]", tokens)
        for i, k in enumerate(_opt(data, "key", list, "spec", []))
    )
    _unique([*(c.name for c in certificates), *(k.name for k in keys)], "certificate/key name")
    _unique((f"{o.label!r} on token {o.token!r}" for o in (*certificates, *keys)), "object label")
    root, issuing = parse_ca(cas, "root"), parse_ca(cas, "issuing")
    if root.file == issuing.file:
        raise SpecError("ca: root and issuing need different file names")
    skf = skf_build.parse_skf(sys.modules[__name__], data, profiles, pins)
    return Spec(path, profiles, root, issuing, tuple(token_list), certificates, keys, skf)


def load_spec(path: Path) -> Spec:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path} is not valid TOML: {exc}") from None
    return parse_spec(data, path)


# --------------------------------------------------------------------------------------------
# X.509 with cryptography


@dataclass(frozen=True)
class CA:
    spec: CASpec
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def key_identifier(self) -> bytes:
        ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        return ski.value.digest


def build_name(subject: Iterable[tuple[str, str]]) -> x509.Name:
    return x509.Name([x509.NameAttribute(SUBJECT_OIDS[key], value) for key, value in subject])


def generate_python_key(key: KeySpec) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if key.type == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=key.bits)
    if key.type == "EC" and key.curve is not None:
        return ec.generate_private_key(EC_CURVES[key.curve]())
    raise BuildError(f"cannot generate a {key.type} key in Python")


def key_usage_extension(usages: frozenset[str]) -> x509.KeyUsage:
    flags = {name: name in usages for name in sorted(set(KEY_USAGES.values()))}
    return x509.KeyUsage(**flags, encipher_only=False, decipher_only=False)


def validity_dates(validity: Validity, now: datetime) -> tuple[datetime, datetime]:
    return (
        now + timedelta(days=validity.not_before_days),
        now + timedelta(days=validity.not_after_days),
    )


def key_identifier(public_key: Any) -> bytes:
    """SHA-1 of the subjectPublicKey bits (RFC 5280 method 1), also used as CKA_ID."""
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest


def build_ca(spec: CASpec, issuer: CA | None, now: datetime) -> CA:
    key = generate_python_key(spec.key)
    subject = build_name(spec.subject)
    ski = key_identifier(key.public_key())
    aki = issuer.key_identifier if issuer else ski
    not_before, not_after = validity_dates(spec.validity, now)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=spec.path_length), critical=True)
        .add_extension(key_usage_extension(spec.key_usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(ski), critical=False)
        .add_extension(_aki(aki), critical=False)
        .sign(issuer.key if issuer else key, hashes.SHA256())
    )
    return CA(spec, key, cert)


def _aki(key_id: bytes) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier(
        key_identifier=key_id, authority_cert_issuer=None, authority_cert_serial_number=None
    )


def issue_certificate(
    spec: CertSpec, public_key: Any, key_id: bytes, issuer: CA, now: datetime
) -> x509.Certificate:
    assert spec.validity is not None
    not_before, not_after = validity_dates(spec.validity, now)
    builder = (
        x509.CertificateBuilder()
        .subject_name(build_name(spec.subject))
        .issuer_name(issuer.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage_extension(spec.key_usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(key_id), critical=False)
        .add_extension(_aki(issuer.key_identifier), critical=False)
    )
    if spec.extended_key_usage:
        usages = [
            EXTENDED_KEY_USAGES.get(n) or x509.ObjectIdentifier(n) for n in spec.extended_key_usage
        ]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    for ext in spec.extensions:
        value = x509.UnrecognizedExtension(x509.ObjectIdentifier(ext.oid), ext.value)
        builder = builder.add_extension(value, critical=ext.critical)
    return builder.sign(issuer.key, hashes.SHA256())


# --------------------------------------------------------------------------------------------
# SM2 certificate crafted with asn1crypto (random point and signature: parse-only fixture)


def craft_sm2_certificate(spec: CertSpec, issuer: CA, now: datetime) -> asn1_x509.Certificate:
    assert spec.validity is not None
    point = b"\x04" + secrets.token_bytes(64)
    not_before, not_after = validity_dates(spec.validity, now)
    algorithm = asn1_algos.SignedDigestAlgorithm({"algorithm": SM2_WITH_SM3_OID})
    spki = asn1_keys.PublicKeyInfo(
        {
            "algorithm": {"algorithm": "ec", "parameters": ("named", SM2_CURVE_OID)},
            "public_key": point,
        }
    )
    extensions = [
        _asn1_extension("basic_constraints", True, {"ca": False}),
        _asn1_extension("key_usage", True, _asn1_key_usage(spec.key_usage)),
        _asn1_extension("key_identifier", False, hashlib.sha1(point).digest()),
        _asn1_extension(
            "authority_key_identifier", False, {"key_identifier": issuer.key_identifier}
        ),
    ]
    tbs = asn1_x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": x509.random_serial_number(),
            "signature": algorithm,
            "issuer": asn1_x509.Name.load(issuer.cert.subject.public_bytes()),
            "validity": {"not_before": _asn1_time(not_before), "not_after": _asn1_time(not_after)},
            "subject": asn1_x509.Name.load(build_name(spec.subject).public_bytes()),
            "subject_public_key_info": spki,
            "extensions": extensions,
        }
    )
    signature = asn1_algos.DSASignature(
        {
            "r": int.from_bytes(secrets.token_bytes(32), "big") | 1 << 255,
            "s": int.from_bytes(secrets.token_bytes(32), "big") | 1 << 255,
        }
    )
    return asn1_x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": algorithm,
            "signature_value": signature.dump(),
        }
    )


def _asn1_extension(extn_id: str, critical: bool, value: Any) -> asn1_x509.Extension:
    return asn1_x509.Extension({"extn_id": extn_id, "critical": critical, "extn_value": value})


def _asn1_key_usage(usages: frozenset[str]) -> set[str]:
    # asn1crypto calls content_commitment by its older name.
    return {"non_repudiation" if u == "content_commitment" else u for u in usages}


def _asn1_time(moment: datetime) -> asn1_x509.Time:
    name = "utc_time" if 1950 <= moment.year < 2050 else "general_time"
    return asn1_x509.Time(name=name, value=moment)


# --------------------------------------------------------------------------------------------
# Token initialisation through ctypes (python-pkcs11 0.10.1 does not wrap C_InitToken)

CKF_TOKEN_INITIALIZED = 0x400
CKR_NAMES = {
    0x00: "CKR_OK",
    0x05: "CKR_GENERAL_ERROR",
    0x06: "CKR_FUNCTION_FAILED",
    0x07: "CKR_ARGUMENTS_BAD",
    0x32: "CKR_DEVICE_REMOVED",
    0x03: "CKR_SLOT_ID_INVALID",
    0xA1: "CKR_PIN_INCORRECT",
    0xA2: "CKR_PIN_INVALID",
    0xA3: "CKR_PIN_LEN_RANGE",
    0xB3: "CKR_SESSION_EXISTS",
    0xE0: "CKR_TOKEN_NOT_PRESENT",
    0x190: "CKR_CRYPTOKI_NOT_INITIALIZED",
    0x191: "CKR_CRYPTOKI_ALREADY_INITIALIZED",
}


class RawModule:
    """The few raw Cryptoki calls needed to initialise tokens."""

    def __init__(self, path: str) -> None:
        try:
            self._dll = ctypes.CDLL(path)
        except OSError as exc:
            raise BuildError(f"cannot load PKCS#11 module {path}: {exc}") from None
        if not hasattr(self._dll, "C_InitToken"):
            raise BuildError(f"{path} does not export C_InitToken: not a PKCS#11 module")
        self._declare("C_Initialize", ctypes.c_void_p)
        self._declare("C_Finalize", ctypes.c_void_p)
        self._declare(
            "C_GetSlotList", ctypes.c_ubyte, ctypes.POINTER(CK_ULONG), ctypes.POINTER(CK_ULONG)
        )
        self._declare("C_GetTokenInfo", CK_ULONG, ctypes.POINTER(CK_TOKEN_INFO))
        self._declare("C_InitToken", CK_ULONG, ctypes.c_char_p, CK_ULONG, ctypes.c_char_p)

    def _declare(self, name: str, *argtypes: Any) -> None:
        function = getattr(self._dll, name)
        function.argtypes = list(argtypes)
        function.restype = CK_ULONG

    def call(self, name: str, *args: Any) -> None:
        rv = getattr(self._dll, name)(*args)
        if rv != 0:
            raise BuildError(f"{name} failed: {CKR_NAMES.get(rv, 'CKR')} (0x{rv:X})")

    @contextmanager
    def initialized(self) -> Iterator[RawModule]:
        self.call("C_Initialize", None)
        try:
            yield self
        finally:
            self._dll.C_Finalize(None)

    def token_slots(self) -> list[int]:
        count = CK_ULONG(0)
        self.call("C_GetSlotList", 1, None, ctypes.byref(count))
        slots = (CK_ULONG * count.value)()
        self.call("C_GetSlotList", 1, slots, ctypes.byref(count))
        return list(slots[: count.value])

    def token_flags(self, slot: int) -> int:
        info = CK_TOKEN_INFO()
        self.call("C_GetTokenInfo", slot, ctypes.byref(info))
        return int(info.flags)

    def init_token(self, slot: int, so_pin: str, label: str) -> None:
        pin = so_pin.encode("utf-8")
        padded = label.encode("utf-8").ljust(MAX_LABEL_BYTES, b" ")
        self.call("C_InitToken", slot, pin, len(pin), padded)


def initialise_tokens(module: str, tokens: Iterable[TokenSpec]) -> None:
    """C_InitToken each token on SoftHSM's spare slot.

    SoftHSM shows a new spare slot only after a fresh C_Initialize, so each token gets its own
    Initialize/Finalize round. Must run before python-pkcs11 initialises the module.
    """
    raw = RawModule(module)
    for token in tokens:
        with raw.initialized():
            free = [s for s in raw.token_slots() if not raw.token_flags(s) & CKF_TOKEN_INITIALIZED]
            if not free:
                raise BuildError(f"no uninitialised slot left for token {token.label!r}")
            raw.init_token(free[0], token.so_pin, token.label)


# --------------------------------------------------------------------------------------------
# Token contents through python-pkcs11


@dataclass
class TokenResult:
    spec: TokenSpec
    serial: str = ""


@dataclass
class ObjectResult:
    name: str
    token: TokenResult
    label: str
    key_id: bytes
    key_type: str | None = None
    key_bits: int | None = None
    der: bytes = b""
    has_private_key: bool = False
    valid_der: bool = True
    info: dict[str, Any] = field(default_factory=dict)


def pkcs11_key_material(session: Any, key: KeySpec, label: str) -> tuple[Any, Any, Any]:
    """Generate a key pair on the token; return (public, private, cryptography public key)."""
    from pkcs11 import Attribute, KeyType, MechanismFlag
    from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters
    from pkcs11.util.rsa import encode_rsa_public_key

    private_template = {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.SIGN: True,
    }
    public_template = {Attribute.TOKEN: True, Attribute.PRIVATE: False}
    options: dict[str, Any] = {
        "label": label,
        "store": True,
        "private_template": private_template,
        "public_template": public_template,
    }
    if key.type == "RSA":
        caps = MechanismFlag.SIGN | MechanismFlag.VERIFY | MechanismFlag.ENCRYPT
        caps |= MechanismFlag.DECRYPT
        public, private = session.generate_keypair(
            KeyType.RSA, key.bits, capabilities=caps, **options
        )
        der = encode_rsa_public_key(public)
    elif key.type == "EC" and key.curve is not None:
        params = session.create_domain_parameters(
            KeyType.EC,
            {Attribute.EC_PARAMS: encode_named_curve_parameters(key.curve)},
            local=True,
        )
        caps = MechanismFlag.SIGN | MechanismFlag.VERIFY
        public, private = params.generate_keypair(capabilities=caps, **options)
        der = encode_ec_public_key(public)
    else:
        raise BuildError(f"SoftHSM cannot generate {key.type} keys")
    return public, private, serialization.load_der_public_key(der)


def generate_on_token(
    session: Any, key: KeySpec, label: str, key_id: bytes | None = None
) -> tuple[Any, bytes]:
    """Generate a key pair on the token and set its CKA_ID; return (public key, CKA_ID).

    The CKA_ID defaults to the key identifier (SHA-1 of the public key bits), which is only
    known once the token has made the key, so it is set after generation.
    """
    from pkcs11 import Attribute

    public, private, crypto_public = pkcs11_key_material(session, key, label)
    key_id = key_id or key_identifier(crypto_public)
    public[Attribute.ID] = key_id
    private[Attribute.ID] = key_id
    return crypto_public, key_id


def store_certificate(
    session: Any,
    label: str,
    key_id: bytes,
    der: bytes,
    subject: bytes,
    issuer: bytes | None,
    serial: int | None,
) -> None:
    from pkcs11 import Attribute, CertificateType, ObjectClass

    attrs: dict[Any, Any] = {
        Attribute.CLASS: ObjectClass.CERTIFICATE,
        Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
        Attribute.TOKEN: True,
        Attribute.PRIVATE: False,
        Attribute.LABEL: label,
        Attribute.ID: key_id,
        Attribute.VALUE: der,
        Attribute.SUBJECT: subject,
    }
    if issuer is not None:
        attrs[Attribute.ISSUER] = issuer
    if serial is not None:
        attrs[Attribute.SERIAL_NUMBER] = asn1_core.Integer(serial).dump()
    session.create_object(attrs)


def key_size(public_key: Any) -> int:
    return int(public_key.key_size)


def add_x509_certificate(
    session: Any, spec: CertSpec, token: TokenResult, issuer: CA, now: datetime
) -> ObjectResult:
    assert spec.key is not None
    if spec.key_on_token:
        public_key, key_id = generate_on_token(session, spec.key, spec.label, spec.key_id)
    else:
        public_key = generate_python_key(spec.key).public_key()  # private half is dropped
        key_id = spec.key_id or key_identifier(public_key)
    cert = issue_certificate(spec, public_key, key_id, issuer, now)
    der = cert.public_bytes(serialization.Encoding.DER)
    store_certificate(
        session,
        spec.label,
        key_id,
        der,
        cert.subject.public_bytes(),
        cert.issuer.public_bytes(),
        cert.serial_number,
    )
    return ObjectResult(
        name=spec.name,
        token=token,
        label=spec.label,
        key_id=key_id,
        key_type=spec.key.type,
        key_bits=key_size(public_key),
        der=der,
        has_private_key=spec.key_on_token,
        info=_cert_info(
            cert.serial_number, cert.subject, cert.not_valid_before_utc, cert.not_valid_after_utc
        ),
    )


def _cert_info(
    serial: int, subject: x509.Name, not_before: datetime, not_after: datetime
) -> dict[str, Any]:
    common_names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return {
        # even length, uppercase: the same form as `certhelper list --json`
        "serial_hex": f"{serial:X}".zfill(len(f"{serial:X}") + len(f"{serial:X}") % 2),
        "subject_cn": str(common_names[0].value) if common_names else None,
        "not_before": iso(not_before),
        "not_after": iso(not_after),
    }


def add_sm2_certificate(
    session: Any, spec: CertSpec, token: TokenResult, issuer: CA, now: datetime
) -> ObjectResult:
    cert = craft_sm2_certificate(spec, issuer, now)
    tbs = cert["tbs_certificate"]
    point = bytes(tbs["subject_public_key_info"]["public_key"])
    key_id = hashlib.sha1(point).digest()
    der = cert.dump()
    serial = int(tbs["serial_number"].native)
    store_certificate(
        session, spec.label, key_id, der, tbs["subject"].dump(), tbs["issuer"].dump(), serial
    )
    subject = build_name(spec.subject)
    validity = tbs["validity"]
    return ObjectResult(
        name=spec.name,
        token=token,
        label=spec.label,
        key_id=key_id,
        key_type="SM2",
        key_bits=256,
        der=der,
        info=_cert_info(
            serial, subject, validity["not_before"].native, validity["not_after"].native
        ),
    )


def add_corrupt_certificate(session: Any, spec: CertSpec, token: TokenResult) -> ObjectResult:
    key_id = spec.key_id or hashlib.sha1(f"certhelper-fixture:{spec.name}".encode()).digest()
    subject = build_name(spec.subject).public_bytes()
    store_certificate(session, spec.label, key_id, spec.value, subject, None, None)
    return ObjectResult(
        name=spec.name,
        token=token,
        label=spec.label,
        key_id=key_id,
        der=spec.value,
        valid_der=False,
        info={"serial_hex": None, "subject_cn": None, "not_before": None, "not_after": None},
    )


def populate_token(
    lib: Any, token: TokenResult, spec: Spec, issuer: CA, now: datetime
) -> tuple[list[ObjectResult], list[ObjectResult]]:
    tok = lib.get_token(token_label=token.spec.label)
    token.serial = tok.serial.decode("ascii").strip()
    with tok.open(rw=True, so_pin=token.spec.so_pin) as session:
        session.init_pin(token.spec.user_pin)
    certificates: list[ObjectResult] = []
    keys: list[ObjectResult] = []
    with tok.open(rw=True, user_pin=token.spec.user_pin) as session:
        for cert in (c for c in spec.certificates if c.token == token.spec.name):
            if cert.kind == "corrupt":
                certificates.append(add_corrupt_certificate(session, cert, token))
            elif cert.kind == "sm2":
                certificates.append(add_sm2_certificate(session, cert, token, issuer, now))
            else:
                certificates.append(add_x509_certificate(session, cert, token, issuer, now))
        for pair in (k for k in spec.keys if k.token == token.spec.name):
            public_key, key_id = generate_on_token(session, pair.key, pair.label)
            keys.append(
                ObjectResult(
                    name=pair.name,
                    token=token,
                    label=pair.label,
                    key_id=key_id,
                    key_type=pair.key.type,
                    key_bits=key_size(public_key),
                    has_private_key=True,
                )
            )
    return certificates, keys


def populate_tokens(
    module: str, spec: Spec, issuer: CA, now: datetime
) -> tuple[list[TokenResult], list[ObjectResult], list[ObjectResult]]:
    import pkcs11

    tokens = [TokenResult(t) for t in spec.tokens]
    certificates: list[ObjectResult] = []
    keys: list[ObjectResult] = []
    lib = pkcs11.lib(module)
    try:
        for token in tokens:
            try:
                made_certs, made_keys = populate_token(lib, token, spec, issuer, now)
            except pkcs11.PKCS11Error as exc:
                raise BuildError(
                    f"token {token.spec.label!r}: {type(exc).__name__} {exc}".rstrip()
                ) from exc
            certificates += made_certs
            keys += made_keys
    finally:
        pkcs11.unload(module)
    return tokens, certificates, keys


# --------------------------------------------------------------------------------------------
# Output directory, files and manifest


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def resolve_module(explicit: str | None) -> str:
    if explicit:
        candidates: tuple[str, ...] = (explicit,)
    elif os.environ.get("SOFTHSM2_MODULE"):
        candidates = (os.environ["SOFTHSM2_MODULE"],)
    else:
        candidates = MODULE_CANDIDATES
    for candidate in candidates:
        if Path(candidate).is_file():
            RawModule(candidate)  # fail before touching OUTDIR if it is no PKCS#11 module
            return os.path.abspath(candidate)  # not resolved: pkcs11.lib() caches per path
    raise BuildError(f"SoftHSM module not found (tried {', '.join(candidates)}); use --module")


def prepare_outdir(outdir: Path, force: bool) -> bool:
    """Return False when a complete build is already there and must be kept."""
    if outdir.exists() and not outdir.is_dir():
        raise BuildError(f"{outdir} exists and is not a directory")
    if (outdir / "manifest.json").exists() and not force:
        return False
    if outdir.exists() and any(outdir.iterdir()):
        if not (outdir / MARKER_FILE).exists():
            raise BuildError(
                f"{outdir} is not empty and was not made by this builder; refusing to touch it"
            )
        shutil.rmtree(outdir)
    (outdir / "tokens").mkdir(parents=True, exist_ok=True)
    (outdir / "ca").mkdir(exist_ok=True)
    (outdir / MARKER_FILE).write_text("built by softhsm-fixtures/build.py; safe to delete\n")
    return True


def write_softhsm_conf(outdir: Path) -> Path:
    conf = outdir / "softhsm2.conf"
    conf.write_text(
        "# Written by certhelper softhsm-fixtures/build.py\n"
        f"directories.tokendir = {(outdir / 'tokens').resolve()}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n",
        encoding="utf-8",
    )
    return conf


def write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def write_ca_files(outdir: Path, root: CA, issuing: CA) -> dict[str, str]:
    ca_dir = outdir / "ca"
    paths: dict[str, str] = {}
    for role, ca in (("root", root), ("issuing", issuing)):
        pem = ca.cert.public_bytes(serialization.Encoding.PEM)
        (ca_dir / f"{ca.spec.file}.pem").write_bytes(pem)
        key_pem = ca.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private(ca_dir / f"{ca.spec.file}.key", key_pem)
        paths[role] = str((ca_dir / f"{ca.spec.file}.pem").resolve())
    chain = ca_dir / "chain.pem"
    chain.write_bytes(
        b"".join(ca.cert.public_bytes(serialization.Encoding.PEM) for ca in (issuing, root))
    )
    paths["chain"] = str(chain.resolve())
    return paths


def certificate_entry(result: ObjectResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "token": result.token.spec.name,
        "token_label": result.token.spec.label,
        "token_serial": result.token.serial,
        "key_id": result.key_id.hex(),
        "label": result.label,
        "sha256": hashlib.sha256(result.der).hexdigest(),
        **result.info,
        "key_type": result.key_type,
        "key_bits": result.key_bits,
        "has_private_key": result.has_private_key,
        "valid_der": result.valid_der,
    }


def key_entry(result: ObjectResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "token_label": result.token.spec.label,
        "token_serial": result.token.serial,
        "key_id": result.key_id.hex(),
        "label": result.label,
        "key_type": result.key_type,
    }


def write_manifest(outdir: Path, manifest: dict[str, Any]) -> None:
    """Write atomically: manifest.json present means the build is complete."""
    tmp = outdir / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(outdir / "manifest.json")


def print_summary(outdir: Path, manifest: dict[str, Any], seconds: float) -> None:
    print(f"Built profile {manifest['profile']!r} into {outdir} in {seconds:.1f} s")
    print(f"  export SOFTHSM2_CONF={manifest['softhsm2_conf']}")
    for token in manifest["tokens"]:
        print(f"  token {token['label']} (serial {token['serial']})")
        for cert in manifest["certificates"]:
            if cert["token_label"] == token["label"]:
                until = cert["not_after"] or "unparseable"
                key = "key" if cert["has_private_key"] else "no key"
                print(
                    f"    cert {cert['name']:<13} {cert['key_type'] or '-':<3} {key:<6} "
                    f"not_after {until}  {cert['subject_cn'] or cert['label']}"
                )
        for key in manifest["keys_without_certificate"]:
            if key["token_label"] == token["label"]:
                print(f"    key  {key['name']:<13} {key['key_type']:<3} (no certificate)")
    skf_build.print_summary(manifest)


# --------------------------------------------------------------------------------------------
# Main


def build(
    outdir: Path, spec: Spec, profile: str, module: str, skf_library: Path | None = None
) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    conf = write_softhsm_conf(outdir)
    os.environ["SOFTHSM2_CONF"] = str(conf.resolve())
    root = build_ca(spec.root, None, now)
    issuing = build_ca(spec.issuing, root, now)
    ca_paths = write_ca_files(outdir, root, issuing)
    initialise_tokens(module, spec.tokens)
    tokens, certificates, keys = populate_tokens(module, spec, issuing, now)
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "built_at": iso(now),
        "profile": profile,
        "module": module,
        "softhsm2_conf": str(conf.resolve()),
        "ca": ca_paths,
        "tokens": [
            {
                "name": t.spec.name,
                "label": t.spec.label,
                "serial": t.serial,
                "so_pin_note": "see pki.toml",
            }
            for t in tokens
        ],
        "certificates": [certificate_entry(c) for c in certificates],
        "keys_without_certificate": [key_entry(k) for k in keys],
    }
    if spec.skf is not None and spec.skf.devices and skf_library is not None:
        core = sys.modules[__name__]
        manifest["skf"] = skf_build.build_skf(core, outdir, spec.skf, issuing, now, skf_library)
    write_manifest(outdir, manifest)
    return manifest


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Build the certhelper test PKI and SoftHSM tokens.",
    )
    parser.add_argument("outdir", type=Path, help="output directory")
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"profile to build: demo or test (default {DEFAULT_PROFILE})",
    )
    parser.add_argument(
        "--spec",
        type=Path,
        default=DEFAULT_SPEC,
        help="spec file (default: pki.toml next to this script)",
    )
    parser.add_argument("--force", action="store_true", help="delete OUTDIR and rebuild")
    parser.add_argument("--module", help="PKCS#11 module (default: SOFTHSM2_MODULE or SoftHSM)")
    parser.add_argument(
        "--skf-library", help="libsoftskf.so (default: SOFTSKF_LIBRARY, else build softskf/)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # Chinese names on a non-UTF-8 console
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = parse_args(argv)
    outdir: Path = args.outdir.resolve()
    started = time.monotonic()
    try:
        spec = load_spec(args.spec).for_profile(args.profile)
        module = resolve_module(args.module)
        skf_library = None
        if spec.skf is not None and spec.skf.devices:
            skf_library = skf_build.resolve_library(args.skf_library)
        if not prepare_outdir(outdir, args.force):
            _report_existing(outdir, args.profile)
            return 0
        manifest = build(outdir, spec, args.profile, module, skf_library)
    except SpecError as exc:
        print(f"build.py: spec error: {exc}", file=sys.stderr)
        return 2
    except (BuildError, skf_build.SkfBuildError) as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"build.py: {exc.strerror or exc}: {exc.filename or outdir}", file=sys.stderr)
        return 1
    print_summary(outdir, manifest, time.monotonic() - started)
    return 0


def _report_existing(outdir: Path, profile: str) -> None:
    print(f"{outdir / 'manifest.json'} exists: fixtures already built (use --force to rebuild)")
    try:
        built = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if built.get("profile") != profile:
        print(f"note: it holds profile {built.get('profile')!r}, not {profile!r}")


if __name__ == "__main__":
    sys.exit(main())
