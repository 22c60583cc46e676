"""Exporting a certificate: format by file extension, PEM or DER bytes, safe names."""

from __future__ import annotations

import os
from pathlib import Path

from helper.domain.presentation import to_pem


def export_format(path: str | os.PathLike[str]) -> str:
    """'der' for .der and .cer (Windows' default binary form), else 'pem'."""
    return "der" if Path(path).suffix.lower() in (".der", ".cer") else "pem"


def certificate_file(der: bytes, fmt: str) -> bytes:
    return der if fmt == "der" else to_pem(der).encode("ascii")


def safe_filename(name: str) -> str:
    cleaned = "".join("_" if ch in '/\\:*?"<>|' or ord(ch) < 32 else ch for ch in name).strip()
    return cleaned.strip(".") or "certificate"
