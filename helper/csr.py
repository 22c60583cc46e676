"""PKCS#10 certification requests signed by a key that never leaves the token.

The subject is copied byte for byte from the certificate being renewed, so the
CA sees exactly the name it issued before (asn1crypto keeps parsed encodings).
"""

from __future__ import annotations

from collections.abc import Callable

from asn1crypto import algos, csr, keys, x509

from drivers.types import SignAlgorithm

__all__ = ["build_csr", "issuer_der", "subject_der"]

# RFC 4055 / RFC 5758 signature algorithms of a PKCS#10 request
_CSR_ALGORITHMS = {
    SignAlgorithm.RSA_PKCS1_SHA256: "sha256_rsa",
    SignAlgorithm.RSA_PKCS1_SHA1: "sha1_rsa",
    SignAlgorithm.ECDSA_SHA256: "sha256_ecdsa",
    SignAlgorithm.ECDSA_SHA384: "sha384_ecdsa",
}


def subject_der(cert_der: bytes) -> bytes:
    """The certificate's subject Name exactly as encoded in it."""
    return x509.Certificate.load(cert_der)["tbs_certificate"]["subject"].dump()


def issuer_der(cert_der: bytes) -> bytes:
    return x509.Certificate.load(cert_der)["tbs_certificate"]["issuer"].dump()


def build_csr(
    subject: bytes,
    spki: bytes,
    sign: Callable[[bytes], bytes],
    *,
    algorithm: SignAlgorithm,
) -> bytes:
    """DER of a CertificationRequest for ``spki`` named ``subject`` (both DER),
    its signature made by ``sign`` over the request info (ECDSA: DER)."""
    info = csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": x509.Name.load(subject),
            "subject_pk_info": keys.PublicKeyInfo.load(spki),
            "attributes": [],
        }
    )
    signature = sign(info.dump())
    request = csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": algos.SignedDigestAlgorithm(
                {"algorithm": _CSR_ALGORITHMS[SignAlgorithm(algorithm)]}
            ),
            "signature": signature,
        }
    )
    return request.dump()
