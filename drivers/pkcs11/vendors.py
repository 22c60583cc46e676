"""The vendor table (``vendors.toml``): which PKCS#11 modules sign SM2, and how.

PKCS#11 has no SM2: a vendor's module has its own vendor-defined key type and mechanism,
and its own signature encoding. An entry matches a loaded module by file name or by its
CK_INFO strings; the driver then lists keys of that key type as SM2 and signs e = SM3(Z ‖ M),
computed on the host, with that mechanism (docs/pkcs11-sm2.md).
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("vendors.toml")
SCHEMA = "certhelper-pkcs11-vendors/1"
VENDOR_DEFINED = 0x80000000  # CKK_VENDOR_DEFINED = CKM_VENDOR_DEFINED
_MAX_ULONG = 0xFFFFFFFF  # values from 32-bit headers; a 64-bit CK_ULONG holds them too

_ENTRY_KEYS = {
    "id", "name", "source", "match_library", "match_manufacturer", "match_description",
    "test_only", "sm2",
}  # fmt: skip
_SM2_KEYS = {"key_type", "mechanism", "input", "signature"}


class VendorTableError(ValueError):
    """The table is malformed; the message says where and what."""


class Sm2Input(StrEnum):
    #: the mechanism signs the 32-byte e the host computed (like CKM_ECDSA over a hash)
    E = "e"
    #: the module hashes the message with an ID parameter itself (not used by certhelper)
    MESSAGE_WITH_ID = "message-with-id"


class SignatureEncoding(StrEnum):
    RAW = "raw"  # r ‖ s, 64 bytes
    DER = "der"  # SEQUENCE { INTEGER r, INTEGER s }
    AUTO = "auto"  # not evidenced: 64 bytes are r ‖ s, anything else DER


@dataclass(frozen=True)
class Sm2Mechanism:
    key_type: int
    mechanism: int
    input: Sm2Input
    signature: SignatureEncoding


@dataclass(frozen=True)
class VendorEntry:
    id: str
    name: str
    source: str
    libraries: tuple[str, ...]
    manufacturers: tuple[str, ...]
    descriptions: tuple[str, ...]
    test_only: bool
    sm2: Sm2Mechanism

    @property
    def signs_sm2(self) -> bool:
        """certhelper can sign through this entry (host-computed e only)."""
        return self.sm2.input is Sm2Input.E

    def matches(self, library_path: str, manufacturer: str, description: str) -> bool:
        return (
            os.path.basename(library_path) in self.libraries
            or (bool(manufacturer) and manufacturer.strip() in self.manufacturers)
            or (bool(description) and description.strip() in self.descriptions)
        )


def _fail(where: str, message: str) -> VendorTableError:
    return VendorTableError(f"{where}: {message}")


def _text(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"'{key}' must be a non-empty string")
    return value.strip()


def _names(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(where, f"'{key}' must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _vendor_value(table: Mapping[str, Any], key: str, where: str) -> int:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, f"'{key}' must be an integer (write it in hex: 0x8…)")
    if not VENDOR_DEFINED <= value <= _MAX_ULONG:
        raise _fail(where, f"'{key}' = {value:#x} is not vendor-defined (0x80000000 … 0xFFFFFFFF)")
    return value


def _choice(table: Mapping[str, Any], key: str, kind: type[StrEnum], where: str) -> Any:
    value = table.get(key)
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return kind(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in kind)
        raise _fail(where, f"'{key}' = {value!r}; use one of {allowed}") from None


def _unknown(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise _fail(where, f"unknown key(s) {', '.join(extra)}")


def _entry(raw: Any, where: str) -> VendorEntry:
    if not isinstance(raw, dict):
        raise _fail(where, "must be a table")
    _unknown(raw, _ENTRY_KEYS, where)
    entry_id = _text(raw, "id", where)
    where = f"{where} ({entry_id})"
    libraries = _names(raw, "match_library", where)
    if any("/" in name for name in libraries):
        raise _fail(where, "'match_library' holds file names, not paths")
    manufacturers = _names(raw, "match_manufacturer", where)
    descriptions = _names(raw, "match_description", where)
    if not (libraries or manufacturers or descriptions):
        raise _fail(where, "needs at least one of match_library, match_manufacturer, "
                           "match_description")  # fmt: skip
    test_only = raw.get("test_only", False)
    if not isinstance(test_only, bool):
        raise _fail(where, "'test_only' must be true or false")
    sm2 = raw.get("sm2")
    if not isinstance(sm2, dict):
        raise _fail(where, "needs an [vendor.sm2] table")
    sm2_where = f"{where}.sm2"
    _unknown(sm2, _SM2_KEYS, sm2_where)
    return VendorEntry(
        id=entry_id,
        name=_text(raw, "name", where),
        source=_text(raw, "source", where),
        libraries=libraries,
        manufacturers=manufacturers,
        descriptions=descriptions,
        test_only=test_only,
        sm2=Sm2Mechanism(
            key_type=_vendor_value(sm2, "key_type", sm2_where),
            mechanism=_vendor_value(sm2, "mechanism", sm2_where),
            input=_choice(sm2, "input", Sm2Input, sm2_where),
            signature=_choice(sm2, "signature", SignatureEncoding, sm2_where),
        ),
    )


def parse_vendors(doc: Mapping[str, Any], source: str = "vendors.toml") -> tuple[VendorEntry, ...]:
    """The entries of a parsed table; :class:`VendorTableError` names the first fault."""
    if doc.get("schema") != SCHEMA:
        raise _fail(source, f"'schema' must be {SCHEMA!r}")
    _unknown(doc, {"schema", "vendor"}, source)
    raw = doc.get("vendor", [])
    if not isinstance(raw, list):
        raise _fail(source, "'vendor' must be an array of tables ([[vendor]])")
    entries = tuple(_entry(item, f"{source}: vendor[{i}]") for i, item in enumerate(raw))
    seen: set[str] = set()
    for e in entries:
        if e.id in seen:
            raise _fail(source, f"vendor id {e.id!r} appears twice")
        seen.add(e.id)
    return entries


def load_vendors(path: str | os.PathLike[str] | None = None) -> tuple[VendorEntry, ...]:
    """The table at ``path`` (default: the one shipped beside this module, read once)."""
    if path is None:
        return _shipped()
    return _read(Path(path))


@functools.cache
def _shipped() -> tuple[VendorEntry, ...]:
    return _read(TABLE)


def _read(path: Path) -> tuple[VendorEntry, ...]:
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise VendorTableError(f"{path.name}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise VendorTableError(f"{path.name}: not valid TOML: {exc}") from None
    return parse_vendors(doc, path.name)


def match_vendor(
    entries: Iterable[VendorEntry], library_path: str, manufacturer: str, description: str
) -> VendorEntry | None:
    """The first entry that matches the loaded module, if any."""
    for entry in entries:
        if entry.matches(library_path, manufacturer, description):
            return entry
    return None
