"""PKCS#10 certification requests signed by a key that never leaves the token.

The subject is copied byte for byte from the certificate being renewed, so the
CA sees exactly the name it issued before (asn1crypto keeps parsed encodings).

SM2 requests (GM/T 0009 / GM/T 0015 names): the SubjectPublicKeyInfo is
id-ecPublicKey with the SM2 curve (1.2.156.10197.1.301), as the token reports it,
and the signature is SM2-with-SM3 (1.2.156.10197.1.501) with no parameters: DER
``SEQUENCE{r, s}`` over e = SM3(Z ‖ CertificationRequestInfo), Z with the default
ID ``1234567812345678`` (the driver computes Z and e; the ID is not in the request,
so a CA checks with the default ID).
"""

from __future__ import annotations

from collections.abc import Callable

from asn1crypto import algos, csr, keys, x509

from drivers import sm2
from drivers.types import SignAlgorithm

__all__ = ["build_csr", "issuer_der", "subject_der"]

# RFC 4055 / RFC 5758 signature algorithms of a PKCS#10 request
_CSR_ALGORITHMS = {
    SignAlgorithm.RSA_PKCS1_SHA256: "sha256_rsa",
    SignAlgorithm.RSA_PKCS1_SHA1: "sha1_rsa",
    SignAlgorithm.ECDSA_SHA256: "sha256_ecdsa",
    SignAlgorithm.ECDSA_SHA384: "sha384_ecdsa",
    SignAlgorithm.SM2_SM3: sm2.SM2_WITH_SM3_OID,  # asn1crypto has no name for it
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
    its signature made by ``sign`` over the request info (ECDSA and SM2: DER)."""
    algorithm = SignAlgorithm(algorithm)
    public_key = keys.PublicKeyInfo.load(spki)
    if (algorithm is SignAlgorithm.SM2_SM3) != _is_sm2(public_key):
        raise ValueError(f"{algorithm.value} does not fit the request's public key")
    info = csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": x509.Name.load(subject),
            "subject_pk_info": public_key,
            "attributes": [],
        }
    )
    signature = sign(info.dump())
    request = csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": algos.SignedDigestAlgorithm(
                {"algorithm": _CSR_ALGORITHMS[algorithm]}
            ),
            "signature": signature,
        }
    )
    return request.dump()


def _is_sm2(spki: keys.PublicKeyInfo) -> bool:
    algorithm = spki["algorithm"]
    if algorithm["algorithm"].native != "ec":
        return False
    params = algorithm["parameters"]
    return params.name == "named" and params.chosen.dotted == sm2.CURVE_OID
