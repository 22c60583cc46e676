"""The native API's use cases: ``certificates.list``, ``auth.authenticate``,
``sign.data``, ``auth.logout``. Each checks its parameters, then asks the gate
for everything that touches a key or a person.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from drivers.types import SignAlgorithm
from helper import __version__
from helper.errors import BadParams
from helper.services.gate import Gate, check_signing_text
from helper.services.params import b64decode_param
from helper.services.summary import certificate_summary
from helper.verify import signed_bytes

AUTH_FORMAT = "certhelper-auth:1"
MIN_CHALLENGE_BYTES = 32
MAX_CHALLENGE_CHARS = 1024
MAX_SIGN_BYTES = 48 * 1024
MAX_TEXT_CHARS = 4000
_JWS = {
    SignAlgorithm.RSA_PKCS1_SHA256: "RS256",
    SignAlgorithm.ECDSA_SHA256: "ES256",
    SignAlgorithm.ECDSA_SHA384: "ES384",
    # SM2 over e = SM3(Z ‖ signed bytes), default ID; r ‖ s like ES256 (not a JOSE name)
    SignAlgorithm.SM2_SM3: "SM2SM3",
}


def _raw_ecdsa(der_sig: bytes, key_bits: int | None) -> bytes:
    """ECDSA's and SM2's DER ``SEQUENCE{r, s}`` as fixed-length ``r ‖ s``."""
    r, s = decode_dss_signature(der_sig)
    size = ((key_bits or 256) + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _check_challenge(challenge: Any) -> str:
    if not isinstance(challenge, str) or len(challenge) > MAX_CHALLENGE_CHARS:
        raise BadParams(detail="'challenge' must be a base64url string")
    if any(ch in "+/=" for ch in challenge.rstrip("=")) or " " in challenge:
        raise BadParams(detail="'challenge' must be base64url")
    if len(b64decode_param(challenge, "challenge", urlsafe=True)) < MIN_CHALLENGE_BYTES:
        raise BadParams(detail=f"'challenge' must carry >= {MIN_CHALLENGE_BYTES} bytes")
    return challenge


class NativeApi:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def list_certificates(self, origin: str) -> list[dict[str, Any]]:
        async with self.gate.audit(origin, "certificates.list"):
            now = self.gate.tokens.clock()
            return [
                certificate_summary(e, now) | {"der": base64.b64encode(e.model.der).decode()}
                for e in await self.gate.certificates.usable()
                if e.model is not None
            ]

    async def authenticate(
        self, origin: str, challenge: Any, cert_filter: str | None
    ) -> dict[str, Any]:
        challenge = _check_challenge(challenge)
        gate = self.gate
        async with gate.audit(origin, "auth.authenticate") as record:
            entry = await gate.choose(origin, await gate.certificates.usable(cert_filter))
            assert entry.model is not None
            record.cert = entry.model.sha256
            algorithm = gate.certificates.algorithm(entry)
            session = await gate.ensure_login(origin, "auth.authenticate", entry)
            signature = await gate.sign(entry, signed_bytes(origin, challenge), algorithm)
            session.just_logged_in = False  # the login's signature is this one
            gate.sessions.touch(session)
            if algorithm is not SignAlgorithm.RSA_PKCS1_SHA256:
                signature = _raw_ecdsa(signature, entry.model.key_bits)
            return {
                "format": AUTH_FORMAT,
                "certificate": base64.b64encode(entry.model.der).decode(),
                "algorithm": _JWS[algorithm],
                "signature": base64.b64encode(signature).decode(),
                "origin": origin,
                "app_version": __version__,
            }

    async def sign_data(
        self,
        origin: str,
        data_b64: Any,
        fmt: Literal["raw", "cms"],
        text: Any,
        cert_filter: str | None,
    ) -> dict[str, Any]:
        data = b64decode_param(data_b64, "data")
        if len(data) > MAX_SIGN_BYTES:
            raise BadParams(detail=f"'data' is larger than {MAX_SIGN_BYTES} bytes")
        if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT_CHARS):
            raise BadParams(detail=f"'text' must be a string of at most {MAX_TEXT_CHARS} chars")
        check_signing_text(data, text)
        gate = self.gate
        async with gate.audit(origin, "sign.data") as record:
            candidates = await gate.certificates.usable(cert_filter)
            if cert_filter is None:
                in_use = {s.cert_sha256 for s in gate.sessions.for_origin(origin)}
                preferred = [c for c in candidates if c.model and c.model.sha256 in in_use]
                candidates = preferred or candidates
            entry = await gate.choose(origin, candidates)
            assert entry.model is not None
            record.cert = entry.model.sha256
            algorithm = gate.certificates.algorithm(entry)
            await gate.confirm_signing(origin, entry, data, text)
            session = await gate.ensure_login(origin, "sign.data", entry)
            if fmt == "raw":
                signature = await gate.sign(entry, data, algorithm)
            else:
                signature = await gate.sign_cms(entry, data, algorithm)
            gate.sessions.touch(session)
            return {
                "format": fmt,
                "signature": base64.b64encode(signature).decode(),
                "certificate": base64.b64encode(entry.model.der).decode(),
                "algorithm": _JWS.get(algorithm, algorithm.value),
            }

    async def logout(self, origin: str) -> None:
        async with self.gate.audit(origin, "auth.logout"):
            await self.gate.logout_origin(origin)
