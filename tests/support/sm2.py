"""SM2 signatures checked outside certhelper's own code: gmalg (pure Python) and the
OpenSSL 3 command line with the GM/T 0009 distinguishing ID (OpenSSL's default ID is
empty: sm2-skf-notes.md, the distid trap)."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import gmalg
from asn1crypto import algos, pem, x509

DEFAULT_ID = b"1234567812345678"


def spki_of(cert_der: bytes) -> bytes:
    return x509.Certificate.load(cert_der).public_key.dump()


def point_of(spki_der: bytes) -> bytes:
    from asn1crypto import keys

    return bytes(keys.PublicKeyInfo.load(spki_der)["public_key"].native)


def gmalg_verifies(
    spki_der: bytes, message: bytes, sig_der: bytes, uid: bytes = DEFAULT_ID
) -> bool:
    parsed = algos.DSASignature.load(sig_der)
    r, s = int(parsed["r"].native), int(parsed["s"].native)
    verifier = gmalg.SM2(pk=point_of(spki_der), uid=uid)
    return bool(verifier.verify(message, r.to_bytes(32, "big"), s.to_bytes(32, "big")))


def openssl_verifies(
    spki_der: bytes, message: bytes, sig_der: bytes, uid: bytes = DEFAULT_ID
) -> bool:
    """``openssl dgst -sm3 -verify … -sigopt distid:<uid>`` (uid printable ASCII)."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "pub.pem").write_bytes(pem.armor("PUBLIC KEY", spki_der))
        (d / "sig.der").write_bytes(sig_der)
        (d / "msg.bin").write_bytes(message)
        done = subprocess.run(
            [
                "openssl", "dgst", "-sm3", "-verify", str(d / "pub.pem"),
                "-sigopt", f"distid:{uid.decode('ascii')}",
                "-signature", str(d / "sig.der"), str(d / "msg.bin"),
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )  # fmt: skip
    return done.returncode == 0 and b"Verified OK" in done.stdout


def verified_both_ways(
    cert_der: bytes, message: bytes, sig_der: bytes, uid: bytes = DEFAULT_ID
) -> bool:
    spki = spki_of(cert_der)
    return gmalg_verifies(spki, message, sig_der, uid) and openssl_verifies(
        spki, message, sig_der, uid
    )


# --- SM2 certificate chains ---------------------------------------------------------------


def _as_der(cert: Any) -> bytes:
    if isinstance(cert, bytes):
        return cert
    from cryptography.hazmat.primitives.serialization import Encoding

    return bytes(cert.public_bytes(Encoding.DER))


def gmalg_chain(
    leaf: Any, anchors: Iterable[Any], intermediates: Iterable[Any] = (), now: Any = None
) -> None:
    """``helper.verify.check_chain``'s contract for SM2 chains, checked with gmalg: names,
    SM2-with-SM3 signatures (default ID) and validity from the leaf up to an anchor. A test
    stand-in for a verifier that cannot check SM2 signatures yet (no basicConstraints,
    key usage or critical-extension rules)."""
    from helper.verify import UntrustedChain

    roots = [x509.Certificate.load(_as_der(a)) for a in anchors]
    pool = roots + [x509.Certificate.load(_as_der(c)) for c in intermediates]
    cert = x509.Certificate.load(_as_der(leaf))
    moment = now or datetime.now(UTC)
    for _ in range(4):
        validity = cert["tbs_certificate"]["validity"]
        if not validity["not_before"].native <= moment <= validity["not_after"].native:
            raise UntrustedChain(detail="not valid at this time")
        tbs, sig = cert["tbs_certificate"].dump(), bytes(cert["signature_value"])
        issuers = [
            c
            for c in pool
            if c.subject == cert.issuer and gmalg_verifies(c.public_key.dump(), tbs, sig)
        ]
        if not issuers:
            raise UntrustedChain(detail="bad signature or no issuer")
        if any(i.dump() == r.dump() for i in issuers for r in roots):
            return
        cert = issuers[0]
    raise UntrustedChain(detail="chain too long")


def use_sm2_chains(monkeypatch: Any, module: ModuleType, sm2_ca: dict[str, Any]) -> str:
    """ "verifier" when ``helper.verify.check_chain`` accepts the fixture's SM2 chain;
    else ``module.check_chain`` becomes :func:`gmalg_chain` and "stand-in" comes back.
    ``sm2_ca``: the build manifest's ``skf.ca`` section."""
    from helper.verify import UntrustedChain, check_chain

    def der(path: str) -> bytes:
        return pem.unarmor(Path(path).read_bytes())[2]

    try:
        check_chain(der(sm2_ca["issuing"]), [der(sm2_ca["root"])])
        return "verifier"
    except UntrustedChain:
        monkeypatch.setattr(module, "check_chain", gmalg_chain)
        return "stand-in"
