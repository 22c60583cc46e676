"""Chain validation: a small path builder of our own rather than
``cryptography.x509.verification``.

Its client verifier applies Web-PKI (CA/B Forum) rules and refuses every certificate
of the fixture PKI ("missing required extension" subjectAltName; Chinese CA leaves
have none), relaxing that needs ``ExtensionPolicy`` (cryptography >= 45, the project
supports >= 42), and its single ``VerificationError`` cannot tell an expired issuer
from an unknown one. The builder here checks, for each issuer: name chaining, the
signature, basicConstraints CA, path length, keyCertSign, validity at ``now``,
SHA-1/MD5 signatures refused, and unknown critical extensions refused. It does not
check revocation, name constraints or certificate policies.

SM2-with-SM3 certificate signatures (GM/T 0015, OID 1.2.156.10197.1.501), which
``cryptography`` cannot check, are verified with :func:`drivers.sm2.verify` (gmalg) over
the TBSCertificate, Z from the issuer's SM2 key and the default ID ``1234567812345678``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID

from drivers import sm2
from helper.domain.certificate import CertificateModel
from helper.errors import CertificateUnreadable
from helper.verify.errors import UntrustedChain
from helper.verify.inputs import check_now, load_certs

MAX_CHAIN_LENGTH = 8
_WEAK_HASHES = (hashes.MD5, hashes.SHA1)
#: critical extensions this module understands (or that cannot make a path invalid)
_HANDLED_CRITICAL = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.CERTIFICATE_POLICIES,
    }
)


def dn(name: x509.Name) -> str:
    try:
        return name.rfc4514_string()
    except ValueError:
        return "<unprintable name>"


def extension(cert: x509.Certificate, ext_type: type[x509.ExtensionType]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(ext_type).value
    except x509.ExtensionNotFound:
        return None


def _cert_problem(cert: x509.Certificate, now: datetime) -> str | None:
    """Why ``cert`` is unusable in any path (validity, extensions), or None."""
    if now < cert.not_valid_before_utc or now > cert.not_valid_after_utc:
        return "not valid at this time"
    try:
        exts = cert.extensions
    except ValueError as exc:
        return f"malformed extensions ({exc})"
    for ext in exts:
        if ext.critical and ext.oid not in _HANDLED_CRITICAL:
            return f"unsupported critical extension {ext.oid.dotted_string}"
    return None


def _issuer_problem(issuer: x509.Certificate, depth: int) -> str | None:
    """Why ``issuer`` may not issue a certificate ``depth`` CAs below it, or None."""
    bc = extension(issuer, x509.BasicConstraints)
    if bc is None or not bc.ca:
        return "not a CA (basicConstraints)"
    if bc.path_length is not None and depth > bc.path_length:
        return f"path length {bc.path_length} exceeded"
    ku = extension(issuer, x509.KeyUsage)
    if ku is not None and not ku.key_cert_sign:
        return "keyUsage lacks keyCertSign"
    return None


def _sm2_signature_problem(cert: x509.Certificate, issuer: x509.Certificate) -> str | None:
    """SM2-with-SM3 over the TBSCertificate by the issuer's SM2 key (GM/T 0015)."""
    try:
        issuer_model = CertificateModel.from_der(issuer.public_bytes(Encoding.DER))
    except CertificateUnreadable as exc:
        return f"unreadable issuer ({exc.detail})"
    if issuer_model.key_type != "SM2":
        return f"SM2 signature but the issuer's key is {issuer_model.key_type}"
    try:
        point = sm2.point_from_spki(issuer_model.spki_der)
        r, s = sm2.signature_from_der(cert.signature, strict=True)
    except (ValueError, TypeError):
        return "bad signature"
    if not sm2.verify(point, cert.tbs_certificate_bytes, r, s):
        return "bad signature"
    return None


def _signature_problem(cert: x509.Certificate, issuer: x509.Certificate) -> str | None:
    if cert.signature_algorithm_oid.dotted_string == sm2.SM2_WITH_SM3_OID:
        return _sm2_signature_problem(cert, issuer)
    try:
        hash_alg = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return "unsupported signature algorithm"
    if isinstance(hash_alg, _WEAK_HASHES):
        return f"weak signature hash {hash_alg.name}"
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return "bad signature"
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return f"cannot check the signature ({exc})"
    return None


def _key_ids_differ(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    aki = extension(cert, x509.AuthorityKeyIdentifier)
    ski = extension(issuer, x509.SubjectKeyIdentifier)
    return bool(aki and aki.key_identifier and ski and aki.key_identifier != ski.digest)


class _ChainBuilder:
    """Depth-first search from the leaf to a trust anchor through the intermediates."""

    def __init__(
        self,
        anchors: list[x509.Certificate],
        intermediates: list[x509.Certificate],
        now: datetime,
    ) -> None:
        self.anchors = anchors
        self.intermediates = intermediates
        self.now = now
        self.problems: list[str] = []
        self._anchor_fps = {a.fingerprint(hashes.SHA256()) for a in anchors}

    def _note(self, cert: x509.Certificate, problem: str) -> None:
        text = f"{dn(cert.subject)}: {problem}"
        if text not in self.problems:
            self.problems.append(text)

    def _candidates(self, cert: x509.Certificate) -> list[tuple[x509.Certificate, bool]]:
        found = [(a, True) for a in self.anchors if a.subject == cert.issuer]
        found += [
            (c, False)
            for c in self.intermediates
            if c.subject == cert.issuer and c.fingerprint(hashes.SHA256()) not in self._anchor_fps
        ]
        return [(c, is_anchor) for c, is_anchor in found if not _key_ids_differ(cert, c)]

    def build(
        self, cert: x509.Certificate, depth: int, seen: frozenset[bytes]
    ) -> list[x509.Certificate] | None:
        """A path [issuer, …, anchor] above ``cert``, or None (reasons in ``problems``)."""
        candidates = self._candidates(cert)
        if not candidates:
            self._note(cert, f"no issuer {dn(cert.issuer)} among the trusted certificates")
        for issuer, is_anchor in candidates:
            fp = issuer.fingerprint(hashes.SHA256())
            if fp in seen:
                continue
            problem = _cert_problem(issuer, self.now) or _issuer_problem(issuer, depth)
            if problem:
                self._note(issuer, problem)
                continue
            problem = _signature_problem(cert, issuer)
            if problem:
                self._note(cert, f"{problem} (issuer {dn(issuer.subject)})")
                continue
            if is_anchor:
                return [issuer]
            if depth + 2 >= MAX_CHAIN_LENGTH:
                self._note(issuer, "chain too long")
                continue
            rest = self.build(issuer, depth + 1, seen | {fp})
            if rest is not None:
                return [issuer, *rest]
        return None


def check_chain_of(
    leaf: x509.Certificate,
    anchors: list[x509.Certificate],
    intermediates: list[x509.Certificate],
    now: datetime,
) -> None:
    problem = _cert_problem(leaf, now)
    if problem:
        raise UntrustedChain(detail=f"{dn(leaf.subject)}: {problem}")
    builder = _ChainBuilder(anchors, intermediates, now)
    if builder.build(leaf, 0, frozenset({leaf.fingerprint(hashes.SHA256())})) is None:
        raise UntrustedChain(detail="; ".join(builder.problems[:4]))


def check_chain(
    leaf: bytes | x509.Certificate,
    anchors: Iterable[bytes | x509.Certificate],
    intermediates: Iterable[bytes | x509.Certificate] = (),
    now: datetime | None = None,
) -> None:
    """Raise :class:`UntrustedChain` unless ``leaf`` is valid now and chains to
    one of ``anchors`` (DER, PEM or cryptography certificates)."""
    (cert,) = load_certs([leaf], "certificate")
    roots = load_certs(anchors, "trust anchor")
    if not roots:
        raise UntrustedChain(detail="no trust anchor configured")
    check_chain_of(cert, roots, load_certs(intermediates, "intermediate"), check_now(now))
