"""Signing and PIN changes on top of the token service.

Both read the token's flags first and refuse on a locked PIN, so no PIN try is
ever spent on a token that cannot take it; neither retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from drivers.errors import BadInput, KeyNotFound, PinLocked
from drivers.protocol import TokenDriver
from drivers.sm2 import DEFAULT_ID as DEFAULT_SM2_ID
from drivers.sm2 import MAX_ID_BYTES as MAX_SM2_ID_BYTES
from drivers.types import Pin, PinState, SignAlgorithm, TokenInfo
from helper.cms import build_signed_data
from helper.domain.pin_policy import PolicyResult, check_confirmation, check_new_pin, raise_for
from helper.errors import CertificateUnreadable, SigningUnsupported
from helper.services.tokens import CertEntry, TokenService, algorithm_for

SignFormat = Literal["raw", "cms"]


def fresh_state(driver: TokenDriver, token: TokenInfo) -> TokenInfo:
    """The token re-read now; raises PinLocked when it cannot take a PIN."""
    info = driver.token_info(token.serial)
    if info.pin_state is PinState.LOCKED:
        raise PinLocked(detail=info.label)
    return info


@dataclass(frozen=True)
class SigningPlan:
    """Everything checked before a PIN is asked for, once: the certificate is
    readable and has its key, the driver can make the signature, the PIN is not
    locked. ``token`` is the token as re-read now (its PIN state, PIN pad)."""

    entry: CertEntry
    driver: TokenDriver
    token: TokenInfo
    algorithm: SignAlgorithm


def plan_signing(
    service: TokenService, entry: CertEntry, *, legacy_sha1: bool = False
) -> SigningPlan:
    if entry.model is None:
        raise entry.error or CertificateUnreadable(detail=entry.id)
    algorithm = algorithm_for(entry.model, legacy_sha1=legacy_sha1)  # SM2 and the like
    driver = service.driver_for(entry.token)
    if algorithm not in driver.capabilities.algorithms:
        raise SigningUnsupported(detail=f"{algorithm.value} ({driver.family})")
    if entry.private_key is None:
        raise KeyNotFound(detail=entry.id)
    return SigningPlan(entry, driver, fresh_state(driver, entry.token), algorithm)


def sign(
    plan: SigningPlan,
    data: bytes,
    pin: Pin | None,
    *,
    fmt: SignFormat = "raw",
    detached: bool = True,
    sm2_id: bytes = DEFAULT_SM2_ID,
) -> bytes:
    """Log in, sign ``data`` (raw signature or CMS SignedData), log out. ``sm2_id`` is
    the SM2 distinguishing ID of a raw SM2 signature; CMS always uses the default
    one (GM/T 0010), so any other is refused before the PIN is tried."""
    driver, entry, algorithm = plan.driver, plan.entry, plan.algorithm
    assert entry.model is not None
    if fmt != "raw" and sm2_id != DEFAULT_SM2_ID:
        raise BadInput(detail="a CMS signature uses the default SM2 ID 1234567812345678")
    if not 0 < len(sm2_id) <= MAX_SM2_ID_BYTES:
        raise BadInput(detail=f"the SM2 ID holds 1..{MAX_SM2_ID_BYTES} bytes")
    serial, key_id = entry.token.serial, entry.obj.key_id
    driver.login(serial, pin)
    try:
        if fmt == "raw":
            return driver.sign(serial, key_id, data, algorithm, sm2_id=sm2_id)
        return build_signed_data(
            data,
            entry.model.der,
            lambda tbs: driver.sign(serial, key_id, tbs, algorithm),
            algorithm=algorithm,
            detached=detached,
        )
    finally:
        driver.logout(serial)


def check_change(token: TokenInfo, old: Pin, new: Pin, confirm: Pin) -> PolicyResult:
    """The PIN policy, before anything touches the token. Raises on errors;
    returns the result so its warnings can be shown."""
    check_confirmation(new, confirm)
    result = check_new_pin(new, old=old, min_len=token.pin_min_len, max_len=token.pin_max_len)
    raise_for(result)
    return result


def apply_change(driver: TokenDriver, token: TokenInfo, old: Pin, new: Pin) -> None:
    """C_SetPIN once, after re-reading the flags (locked: refused untouched)."""
    fresh_state(driver, token)
    driver.change_pin(token.serial, old, new)
