"""Writing to a PKCS#11 token for online renewal: a key pair, then a certificate.

Each write is all-or-nothing: one C_GenerateKeyPair, or a certificate write
that undoes itself when a later step fails. Keys are never deleted. These run
on the driver's worker thread, in the login's read-write session.
"""

from __future__ import annotations

import logging
from typing import Any

from pkcs11 import Attribute, CertificateType, KeyType, Mechanism, MechanismFlag, ObjectClass

from drivers import errors as E
from drivers.pkcs11.objects import attr, destroy_quietly, spki, unused_id
from drivers.types import CertObject, KeyPairSpec, NewCertificate, PublicKeyObject

log = logging.getLogger(__name__)

_PRIVATE_TEMPLATE = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.SIGN: True,
    Attribute.DECRYPT: False,
    Attribute.UNWRAP: False,
    Attribute.DERIVE: False,
}
_PUBLIC_TEMPLATE = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: False,
    Attribute.VERIFY: True,
    Attribute.ENCRYPT: False,
    Attribute.WRAP: False,
}


def generation_mechanism(spec: KeyPairSpec) -> Mechanism:
    """The key-pair mechanism for ``spec``, after checking it is complete."""
    kind = spec.key_type.upper()
    if kind == "RSA":
        if not isinstance(spec.bits, int) or spec.bits <= 0:
            raise E.BadInput(detail="an RSA key pair needs its modulus size in bits")
        return Mechanism.RSA_PKCS_KEY_PAIR_GEN
    if kind == "EC":
        if not spec.ec_params:
            raise E.BadInput(detail="an EC key pair needs the curve's CKA_EC_PARAMS")
        return Mechanism.EC_KEY_PAIR_GEN
    raise E.MechanismUnsupported(detail=f"key type {spec.key_type}")


def generate_key_pair(session: Any, spec: KeyPairSpec, label: str) -> PublicKeyObject:
    """A signing key pair under a fresh random 20-byte CKA_ID; the private key is
    sensitive and never extractable."""
    key_id = unused_id(session)
    public_template: dict[Attribute, Any] = dict(_PUBLIC_TEMPLATE)
    options: dict[str, Any] = {
        "id": key_id,
        "label": label,
        "store": True,
        "capabilities": MechanismFlag.SIGN | MechanismFlag.VERIFY,
        "public_template": public_template,
        "private_template": dict(_PRIVATE_TEMPLATE),
    }
    if spec.key_type.upper() == "RSA":
        public_template[Attribute.PUBLIC_EXPONENT] = b"\x01\x00\x01"
        public, private = session.generate_keypair(KeyType.RSA, spec.bits, **options)
    else:
        # Local (never stored) domain parameters carry CKA_EC_PARAMS into the
        # public template; the key pair is still one C_GenerateKeyPair.
        params = session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: spec.ec_params}, local=True
        )
        public, private = params.generate_keypair(**options)
    try:
        der = spki(public)
    except Exception:
        destroy_quietly((private, public), label)  # keep all-or-nothing
        raise
    return PublicKeyObject(key_id=key_id, label=label, spki=der)


def write_certificate(
    session: Any,
    serial: str,
    new: NewCertificate,
    replace: CertObject | None,
    archive_label: str | None,
) -> None:
    """Store ``new``; then relabel ``replace`` (matched by value, exactly once) to
    ``archive_label`` or destroy it. A failure after the new object exists
    destroys it again."""
    if not new.der:
        raise E.BadInput(detail="empty certificate")
    certs = list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}))
    if any(attr(c, Attribute.VALUE, None) == new.der for c in certs):
        raise E.CertificateExists(detail=new.label)
    old: Any = None
    old_label = ""
    if replace is not None:
        matches = [c for c in certs if attr(c, Attribute.VALUE, None) == replace.value]
        if len(matches) != 1:
            raise E.TokenChanged(
                detail=f"{len(matches)} certificate objects match {replace.label!r}"
            )
        old = matches[0]
        old_label = attr(old, Attribute.LABEL, "")

    created = session.create_object(
        {
            Attribute.CLASS: ObjectClass.CERTIFICATE,
            Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: False,
            Attribute.LABEL: new.label,
            Attribute.ID: new.key_id,
            Attribute.VALUE: new.der,
            Attribute.SUBJECT: new.subject,
            Attribute.ISSUER: new.issuer,
            Attribute.SERIAL_NUMBER: new.serial_number,
        }
    )
    relabelled = False
    try:
        if old is not None and archive_label is not None:
            old[Attribute.LABEL] = archive_label
            relabelled = True
        elif old is not None:
            old.destroy()
    except Exception as exc:
        log.warning(
            "writing certificate %r to %s failed (%s); undoing",
            new.label,
            serial,
            type(exc).__name__,
        )
        _undo_write(serial, created, new.label, old if relabelled else None, old_label)
        raise  # mapped by the worker
    log.info("wrote certificate %r to %s", new.label, serial)


def _undo_write(serial: str, created: Any, new_label: str, old: Any, old_label: str) -> None:
    """Destroy the new certificate object and give ``old`` (when it was
    relabelled) its label back. A failure here is only logged: the caller
    raises the original error."""
    try:
        if old is not None:
            old[Attribute.LABEL] = old_label
        created.destroy()
    except Exception as exc:
        log.error(
            "undo failed on %s (%s): the new certificate %r may remain and the old "
            "certificate %r may carry another label",
            serial,
            type(exc).__name__,
            new_label,
            old_label,
        )
