"""TLS trust in the user's NSS databases (Chromium's ``~/.pki/nssdb``, Firefox
profiles) with ``certutil`` from libnss3-tools.

The CA goes in as ``certhelper local CA (<first 16 hex of its SHA-256>)`` with trust
``C,,`` (a CA for TLS servers). The same CA already there: nothing to do. Another
``certhelper local CA …`` entry (an older, regenerated identity): replaced — so
running ``certhelper install`` again after the identity was regenerated re-trusts it
(:func:`retrust` does the same for databases install already touched).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from installer import paths
from installer.manifest import Manifest, make_dirs
from installer.report import Status, Step

NICK_PREFIX = "certhelper local CA"
TRUST = "C,,"
_DB_FILES = ("cert9.db", "key4.db", "pkcs11.txt")
_LIST_LINE = re.compile(r"^(?P<nick>.+?)\s+(?P<trust>[A-Za-z]*,[A-Za-z]*,[A-Za-z]*)\s*$")


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def nickname(cert: x509.Certificate) -> str:
    return f"{NICK_PREFIX} ({fingerprint(cert)[:16]})"


def have_certutil() -> bool:
    return shutil.which("certutil") is not None


def _certutil(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["certutil", "-d", f"sql:{db}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def list_nicknames(db: Path) -> list[str]:
    result = _certutil(db, "-L")
    out = []
    for line in result.stdout.splitlines():
        m = _LIST_LINE.match(line)
        if m and not line.startswith("Certificate Nickname"):
            out.append(m.group("nick").strip())
    return out


def _cert_in_db(db: Path, nick: str) -> x509.Certificate | None:
    result = _certutil(db, "-L", "-n", nick, "-a")
    try:
        return x509.load_pem_x509_certificate(result.stdout.encode("ascii"))
    except ValueError:
        return None


def databases() -> list[Path]:
    """Existing user NSS databases: ``~/.pki/nssdb`` and Firefox profiles with cert9.db."""
    dbs = []
    if (paths.nssdb_dir() / "cert9.db").exists():
        dbs.append(paths.nssdb_dir())
    for root in paths.firefox_roots():
        if root.is_dir():
            dbs += sorted(p.parent for p in root.glob("*/cert9.db"))
    return dbs


def _create_nssdb(manifest: Manifest) -> Path:
    db = paths.nssdb_dir()
    make_dirs(db, manifest, mode=0o700)
    result = _certutil(db, "-N", "--empty-password")
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip() or "certutil -N failed")
    if str(db) not in manifest.nss_created:
        manifest.nss_created.append(str(db))
    return db


def _trust_one(
    db: Path, ca: x509.Certificate, ca_pem: Path, manifest: Manifest, dry: bool
) -> Status:
    ours = nickname(ca)
    nicks = list_nicknames(db)
    stale = [n for n in nicks if n.startswith(NICK_PREFIX) and n != ours]
    present = ours in nicks and _cert_in_db(db, ours) == ca
    if present and not stale:
        if not dry:
            manifest.nss.setdefault(str(db), ours)
        return "exists"
    if dry:
        return "done"
    for n in stale:
        _certutil(db, "-D", "-n", n)
    if not present:
        result = _certutil(db, "-A", "-t", TRUST, "-n", ours, "-i", str(ca_pem))
        if result.returncode != 0:
            raise RuntimeError(result.stderr.strip() or "certutil -A failed")
    manifest.nss[str(db)] = ours
    return "done"


def install(ca_pem: Path, manifest: Manifest, *, dry_run: bool = False) -> list[Step]:
    if not have_certutil():
        return [
            Step(
                "浏览器信任 NSS trust",
                "skipped",
                "未安装 certutil，请安装 libnss3-tools (certutil missing: install libnss3-tools)",
            )
        ]
    ca = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    steps = []
    dbs = databases()
    if paths.nssdb_dir() not in dbs:
        if dry_run:
            steps.append(Step("创建 NSS 数据库 create NSS db", "done", str(paths.nssdb_dir())))
        else:
            try:
                dbs.insert(0, _create_nssdb(manifest))
                steps.append(Step("创建 NSS 数据库 create NSS db", "done", str(paths.nssdb_dir())))
            except (OSError, RuntimeError) as exc:
                steps.append(Step("创建 NSS 数据库 create NSS db", "failed", str(exc)))
    for db in dbs:
        try:
            status = _trust_one(db, ca, ca_pem, manifest, dry_run)
            steps.append(Step("信任本机 CA trust local CA", status, f"{db} [{nickname(ca)}]"))
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            steps.append(Step("信任本机 CA trust local CA", "failed", f"{db}: {exc}"))
    return steps


def retrust(ca_pem: Path, manifest: Manifest) -> list[Step]:
    """After the identity was regenerated: replace the CA in the databases install
    added it to (the daemon may call this when ``ensure_identity(...).created``)."""
    ca = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    return [
        Step("信任本机 CA trust local CA", _trust_one(Path(db), ca, ca_pem, manifest, False), db)
        for db in list(manifest.nss)
        if Path(db, "cert9.db").exists()
    ]


def uninstall(manifest: Manifest, *, dry_run: bool = False) -> list[Step]:
    steps: list[Step] = []
    if not manifest.nss and not manifest.nss_created:
        return [Step("浏览器信任 NSS trust", "skipped", "未由安装程序添加 not added by install")]
    if not have_certutil():
        return [Step("浏览器信任 NSS trust", "failed", "certutil missing: install libnss3-tools")]
    for db_s, nick in list(manifest.nss.items()):
        db = Path(db_s)
        nicks = list_nicknames(db) if (db / "cert9.db").exists() else []
        # also any other certhelper CA (one trusted by an older install)
        ours = [n for n in nicks if n == nick or n.startswith(NICK_PREFIX)]
        if not ours:
            steps.append(Step("取消信任 remove trust", "skipped", f"{db}: 已不存在 already gone"))
        elif not dry_run:
            for n in ours:
                _certutil(db, "-D", "-n", n)
            steps.append(Step("取消信任 remove trust", "done", f"{db} [{', '.join(ours)}]"))
        else:
            steps.append(Step("取消信任 remove trust", "done", f"{db} [{', '.join(ours)}]"))
        if not dry_run:
            del manifest.nss[db_s]
    for db_s in list(manifest.nss_created):
        db = Path(db_s)
        left = list_nicknames(db) if (db / "cert9.db").exists() else []
        if left:
            steps.append(Step("删除 NSS 数据库 remove NSS db", "skipped", f"{db}: 还有其他证书"))
            if not dry_run:
                manifest.nss_created.remove(db_s)
            continue
        if not dry_run:
            for name in _DB_FILES:
                (db / name).unlink(missing_ok=True)
            manifest.nss_created.remove(db_s)
        steps.append(Step("删除 NSS 数据库 remove NSS db", "done", str(db)))
    return steps
