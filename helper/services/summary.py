"""The stable JSON shapes of ``certhelper list --json`` (docs/cli.md).

The bridge reuses :func:`certificate_summary` for ``certificates.list``, so a
field added here shows up in both; fields are never renamed or removed within
a schema version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from drivers.types import KeyObject, TokenInfo
from helper.services.tokens import CertEntry, ModuleStatus, TokenView

LIST_SCHEMA = "certhelper-list/1"


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def token_summary(t: TokenInfo) -> dict[str, Any]:
    return {
        "label": t.label,
        "serial": t.serial,
        "manufacturer": t.manufacturer,
        "model": t.model,
        "module": t.module_path,
        "pin_state": t.pin_state.value,
        "pin_min_len": t.pin_min_len,
        "pin_max_len": t.pin_max_len,
        "protected_auth_path": t.protected_auth_path,
        "driver": t.family,
        "pin_retries_left": t.pin_retries_left,
        "pin_max_retries": t.pin_max_retries,
        "pin_is_default": t.pin_is_default,
    }


def certificate_summary(c: CertEntry, now: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": c.id,
        "token_serial": c.token.serial,
        "token_label": c.token.label,
        "label": c.obj.label,
        "key_id": c.obj.key_id.hex(),
        "readable": c.readable,
        "has_private_key": c.private_key is not None,
        "driver": c.token.family,
        "archived": c.archived,
    }
    m = c.model
    if m is None:
        out["error"] = c.error.to_dict() if c.error else None
        return out
    out.update(
        {
            "subject": {"cn": m.subject_cn, "dn": m.subject_dn, "fields": m.subject},
            "issuer": {"cn": m.issuer_cn, "dn": m.issuer_dn},
            "serial_hex": m.serial_hex,
            "not_before": iso(m.not_before),
            "not_after": iso(m.not_after),
            "days_left": m.days_left(now),
            "expiry_state": m.expiry_state(now).value,
            "key_type": m.key_type,
            "key_bits": m.key_bits,
            "curve": m.curve,
            "key_usage": list(m.key_usage),
            "extended_key_usage": list(m.extended_key_usage),
            "signing_supported": m.signing_supported and c.driver_signs,
            "signing_note": c.signing_note,
            "usage": m.usage,
            "hebca_unique_id": m.hebca_unique_id,
            "sha256": m.sha256,
        }
    )
    return out


def key_summary(token: TokenInfo, k: KeyObject) -> dict[str, Any]:
    return {
        "token_serial": token.serial,
        "token_label": token.label,
        "key_id": k.key_id.hex(),
        "label": k.label,
        "key_type": k.key_type,
        "key_bits": k.key_bits,
    }


def module_summary(m: ModuleStatus) -> dict[str, Any]:
    return {
        "path": m.path,
        "source": m.source,
        "loaded": m.driver is not None,
        "description": getattr(m.driver, "library_description", "") if m.driver else "",
        "driver": m.family,
        "error": m.error.to_dict() if m.error else None,
    }


def list_document(
    modules: list[ModuleStatus], views: list[TokenView], now: datetime
) -> dict[str, Any]:
    return {
        "schema": LIST_SCHEMA,
        "generated_at": iso(now),
        "modules": [module_summary(m) for m in modules],
        "tokens": [
            token_summary(v.token) | {"error": v.error.to_dict() if v.error else None}
            for v in views
        ],
        "certificates": [certificate_summary(c, now) for v in views for c in v.certificates],
        "keys_without_certificate": [
            key_summary(v.token, k) for v in views for k in v.keys_without_certificate
        ],
    }
