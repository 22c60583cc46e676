"""Secrets the helper keeps between runs without a person typing them: random keys
in the OS keyring (service ``certhelper``), created on first use. PINs are never
among them."""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from typing import Any

import keyring
import keyring.backends.fail

log = logging.getLogger(__name__)

KEYRING_SERVICE = "certhelper"


class KeyringSecret:
    """A random 32-byte key under ``name``; None whenever the keyring cannot help
    (no backend, a backend that fails or does not keep what it was given)."""

    def __init__(self, name: str, backend: Any = None) -> None:
        self.name = name
        self._backend = backend

    def get_or_create(self) -> bytes | None:
        try:
            backend = self._backend if self._backend is not None else keyring.get_keyring()
            if isinstance(backend, keyring.backends.fail.Keyring):
                log.warning("no keyring backend for %s", self.name)
                return None
            return self._get(backend) or self._create(backend)
        except Exception as exc:  # backends raise their own (D-Bus, OS) errors, not only
            # keyring.errors.KeyringError; any of them means "no usable keyring"
            log.warning("keyring unusable for %s (%s)", self.name, exc)
            return None

    def _get(self, backend: Any) -> bytes | None:
        stored = backend.get_password(KEYRING_SERVICE, self.name)
        return stored.encode("ascii") if stored and valid_key(stored) else None

    def _create(self, backend: Any) -> bytes | None:
        value = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        backend.set_password(KEYRING_SERVICE, self.name, value)
        if backend.get_password(KEYRING_SERVICE, self.name) != value:
            log.warning("keyring did not keep %s", self.name)
            return None
        return value.encode("ascii")


def valid_key(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False
