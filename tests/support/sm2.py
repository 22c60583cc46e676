"""SM2 signatures checked outside certhelper's own code: gmalg (pure Python) and the
OpenSSL 3 command line with the GM/T 0009 distinguishing ID (OpenSSL's default ID is
empty: sm2-skf-notes.md, the distid trap)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

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
