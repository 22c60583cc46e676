"""A PKCS#11 token with an SM2 key behind a vendor mechanism: libsoftp11sm2, the test
double of softhsm-fixtures/softp11sm2/ (SoftHSM2 plus one vendor SM2 mechanism; no free
module has one).

The session builds one token directory (in a child process, so that no SoftHSM of this
process is touched): a SoftHSM token holding an SM2 signing certificate, its SM2 private key
(the double's vendor key type) and its public key. Each test gets a private copy of the
directory and of the library file: the double reads ``$SOFTP11SM2_DIR`` at C_Initialize, and
python-pkcs11 keeps one module per path per process, so a new path is a new, fresh module.

A pytest plugin (tests/conftest.py loads it): ``p11sm2`` and ``p11sm2_driver``.
Run as ``python -m tests.support.p11sm2 build OUTDIR`` to build a directory by hand.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "softhsm-fixtures" / "softp11sm2"
LIBRARY = SOURCE / "libsoftp11sm2.so"
SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
LABEL = "河北CA测试国密P11"
USER_PIN = "123456"  # published test PINs, as in softhsm-fixtures/pki.toml
SO_PIN = "12345678"
KEY_ID = bytes.fromhex("5a3c0001")
SUBJECT = "/C=CN/O=沧州市测试国密科技有限公司/CN=沧州市测试国密科技有限公司 PKCS#11"
#: the double's vendor values (softp11sm2.c); drivers/pkcs11/vendors.toml has the same
CKK_SOFTP11SM2_SM2 = 0x80000000 + 0x5302
CKM_SOFTP11SM2_SM2 = 0x80000000 + 0x5301
MAX_TRIES = 6


@dataclass
class P11Sm2:
    """A private copy of the token directory and of the library."""

    dir: Path
    library: str
    manifest: dict[str, Any]

    @property
    def serial(self) -> str:
        return str(self.manifest["serial"])

    @property
    def cert_der(self) -> bytes:
        return bytes.fromhex(self.manifest["cert_der"])

    def renamed(self, name: str) -> str:
        """The same library under another file name (another module for python-pkcs11)."""
        dst = Path(self.library).parent / name
        shutil.copyfile(self.library, dst)
        return str(dst)


def library() -> Path:
    if not LIBRARY.is_file():
        done = subprocess.run(["make", "-s", "-C", str(SOURCE)], capture_output=True, text=True)
        if done.returncode != 0 or not LIBRARY.is_file():
            pytest.fail(f"cannot build libsoftp11sm2 (`make softp11sm2`):\n{done.stderr}")
    return LIBRARY


# --- the build (a child process) --------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _init_token(conf: Path) -> None:
    """C_InitToken on SoftHSM's spare slot, straight through ctypes (python-pkcs11 has none)."""
    os.environ["SOFTHSM2_CONF"] = str(conf)
    from drivers.pkcs11.ckraw import CK_ULONG

    dll = ctypes.CDLL(SOFTHSM)
    for name in ("C_Initialize", "C_GetSlotList", "C_InitToken", "C_Finalize"):
        getattr(dll, name).restype = CK_ULONG
    assert dll.C_Initialize(None) == 0
    count = CK_ULONG(0)
    assert dll.C_GetSlotList(ctypes.c_ubyte(1), None, ctypes.byref(count)) == 0
    slots = (CK_ULONG * count.value)()
    assert dll.C_GetSlotList(ctypes.c_ubyte(1), slots, ctypes.byref(count)) == 0
    so_pin = SO_PIN.encode()
    label = LABEL.encode("utf-8").ljust(32, b" ")
    rv = dll.C_InitToken(CK_ULONG(slots[0]), so_pin, CK_ULONG(len(so_pin)), label)
    assert rv == 0, f"C_InitToken: 0x{rv:x}"
    dll.C_Finalize(None)
    del os.environ["SOFTHSM2_CONF"]


def build(out: Path) -> dict[str, Any]:
    """An SM2 key pair and self-signed SM2-with-SM3 certificate (OpenSSL 3, with the GM/T
    0009 ID), and a token holding the certificate and both keys, written through the double."""
    from asn1crypto import keys, pem, x509

    out.mkdir(parents=True)
    (out / "tokens").mkdir()
    conf = out / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {out / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n"
    )
    work = out / "pki"
    work.mkdir()
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2",
             "-pkeyopt", "ec_param_enc:named_curve", "-out", "key.pem", cwd=work)  # fmt: skip
    (work / "req.cnf").write_text(
        "[req]\ndistinguished_name = dn\nx509_extensions = leaf\n[dn]\n[leaf]\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, nonRepudiation\n"
        "subjectKeyIdentifier = hash\n"
    )
    _openssl("req", "-x509", "-new", "-config", "req.cnf", "-key", "key.pem", "-sm3",
             "-sigopt", "distid:1234567812345678", "-utf8", "-subj", SUBJECT, "-days", "365",
             "-outform", "DER", "-out", "cert.der", cwd=work)  # fmt: skip
    info = keys.PrivateKeyInfo.load(pem.unarmor((work / "key.pem").read_bytes())[2])
    d = int(info["private_key"].parsed["private_key"].native).to_bytes(32, "big")
    cert_der = (work / "cert.der").read_bytes()
    cert = x509.Certificate.load(cert_der)
    point = bytes(cert.public_key["public_key"])
    _init_token(conf)

    os.environ["SOFTP11SM2_DIR"] = str(out)
    import pkcs11
    from pkcs11 import Attribute, CertificateType, ObjectClass

    token = pkcs11.lib(str(library())).get_token(token_label=LABEL)
    with token.open(rw=True, so_pin=SO_PIN) as so:
        so.init_pin(USER_PIN)
    with token.open(rw=True, user_pin=USER_PIN) as session:
        tbs = cert["tbs_certificate"]
        session.create_object({
            Attribute.CLASS: ObjectClass.CERTIFICATE,
            Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: False,
            Attribute.ID: KEY_ID,
            Attribute.LABEL: "国密签名证书",
            Attribute.VALUE: cert_der,
            Attribute.SUBJECT: tbs["subject"].dump(),
            Attribute.ISSUER: tbs["issuer"].dump(),
            Attribute.SERIAL_NUMBER: tbs["serial_number"].dump(),
        })  # fmt: skip
        session.create_object({
            Attribute.CLASS: ObjectClass.PRIVATE_KEY,
            Attribute.KEY_TYPE: CKK_SOFTP11SM2_SM2,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SIGN: True,
            Attribute.ID: KEY_ID,
            Attribute.LABEL: "国密签名私钥",
            Attribute.VALUE: d,
        })  # fmt: skip
        session.create_object({
            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
            Attribute.KEY_TYPE: CKK_SOFTP11SM2_SM2,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: False,
            Attribute.ID: KEY_ID,
            Attribute.LABEL: "国密签名公钥",
            Attribute.EC_POINT: b"\x04" + bytes([len(point)]) + point,
        })  # fmt: skip
        serial = token.serial.decode().strip()
    shutil.rmtree(work)  # the private key leaves no file behind: only the token holds it
    manifest = {
        "serial": serial,
        "label": LABEL,
        "key_id": KEY_ID.hex(),
        "cert_der": cert_der.hex(),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def build_in_child(out: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("SOFTHSM2_CONF", "SOFTP11SM2_DIR")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.p11sm2", "build", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    if done.returncode != 0:
        pytest.fail(f"softp11sm2 token build failed:\n{done.stdout}\n{done.stderr}")
    return dict(json.loads((out / "manifest.json").read_text("utf-8")))


# --- pytest fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def p11sm2_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    library()
    out = tmp_path_factory.mktemp("p11sm2") / "build"
    build_in_child(out)
    return out


@pytest.fixture
def p11sm2(p11sm2_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> P11Sm2:
    """A private copy of the SM2 token and a library path of its own."""
    dst = tmp_path / "p11sm2"
    shutil.copytree(p11sm2_build, dst)
    (dst / "softhsm2.conf").write_text(
        f"directories.tokendir = {dst / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n"
    )
    lib_dir = tmp_path / "lib"
    lib_dir.mkdir()
    lib = lib_dir / LIBRARY.name  # the file name the vendor table matches
    shutil.copyfile(library(), lib)
    monkeypatch.setenv("SOFTP11SM2_DIR", str(dst))
    manifest = json.loads((dst / "manifest.json").read_text("utf-8"))
    return P11Sm2(dst, str(lib), manifest)


@pytest.fixture
def p11sm2_driver(p11sm2: P11Sm2) -> Iterator[Any]:
    from drivers.pkcs11.driver import Pkcs11Driver

    drv = Pkcs11Driver(p11sm2.library, timeout=30)
    yield drv
    drv.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "build":
        print("usage: python -m tests.support.p11sm2 build OUTDIR", file=sys.stderr)
        return 2
    build(Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
