"""The local TLS identity (<data dir>/tls) and its trust in the user's NSS database.

Read-only: unlike ``helper.services.tls.ensure_identity`` this never creates,
renews or touches the keyring; key protection is read from the PEM header.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from helper.config import Config
from helper.doctor.checks.base import DoctorEnv, Finding

INSTALL_FIX = "运行 certhelper install (run `certhelper install`)"
NOT_TRUSTED = (
    "浏览器不信任证书助手，网上大厅连不上它。点「修复」即可解决。"
    "(The browser does not trust the helper, so the hall cannot reach it. Click 修复 to fix it.)"
)
#: the leaf is renewed when fewer than this remain (helper.services.tls.RENEW_BEFORE)
MIN_LEFT = timedelta(days=10)
#: nicknames the installer gives the CA in NSS (and the CA's own CN)
NICKNAME_PREFIXES = ("certhelper local ca", "证书助手本机 ca")
_DER = Encoding.DER
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
_TRUST_LINE = re.compile(r"^(?P<nick>.*?)\s+(?P<trust>[A-Za-z]*,[A-Za-z]*,[A-Za-z]*)\s*$")


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_ca(env: DoctorEnv) -> x509.Certificate | None:
    try:
        return _load(env.tls_dir / "ca.pem")
    except (OSError, ValueError):
        return None


def key_protection(key_file: Path) -> str | None:
    """ "keyring" (encrypted PKCS#8), "file" (unencrypted) or None (unreadable)."""
    try:
        head = key_file.read_bytes()[:200]
    except OSError:
        return None
    if b"BEGIN ENCRYPTED PRIVATE KEY" in head:
        return "keyring"
    if b"PRIVATE KEY" in head:
        return "file"
    return None


def tls_findings(config: Config, env: DoctorEnv) -> list[Finding]:
    d = env.tls_dir
    ca_path, leaf_path = d / "ca.pem", d / "leaf.pem"
    if not ca_path.exists() and not leaf_path.exists():
        return [
            Finding(
                "warning",
                "tls_missing",
                "证书助手还没有完成首次设置，网上大厅连不上它。点「修复」完成设置。"
                "(The helper is not set up yet, so the hall cannot reach it. "
                "Click 修复 to set it up.)",
                "运行 certhelper install，或启动一次 certhelper run 自动生成 "
                "(run `certhelper install`, or start `certhelper run` once)",
                detail=f"no local TLS certificate in {d}",
                fix_id="trust-local-ca",
            )
        ]
    try:
        ca = _load(ca_path)
        leaf = _load(leaf_path)
    except (OSError, ValueError) as exc:
        return [
            Finding(
                "error",
                "tls_unreadable",
                "证书助手的本机安全证书已损坏，网上大厅连不上它。点「修复」重启证书助手。"
                "(The helper's local certificate is damaged; click 修复 to restart the helper.)",
                "重启证书助手会重新生成 (restart `certhelper run`; it regenerates them), "
                "然后运行 certhelper install (then run `certhelper install`)",
                detail=f"TLS files in {d} unreadable: {exc}",
                fix_id="restart-helper",
            )
        ]
    out: list[Finding] = []
    now = env.now()
    left = leaf.not_valid_after_utc - now
    chained = leaf.issuer == ca.subject
    if chained:
        try:
            leaf.verify_directly_issued_by(ca)
        except Exception:  # wrong key type, bad signature
            chained = False
    if not chained:
        out.append(
            Finding(
                "error",
                "tls_leaf_not_chained",
                "证书助手的本机安全证书不完整，网上大厅连不上它。(The helper's local "
                "certificate is inconsistent; the hall cannot reach it.)",
                "删除 tls 目录后重启证书助手并运行 certhelper install "
                f"(remove {d}, restart the daemon, run `certhelper install`)",
                detail=f"{leaf_path} does not chain to {ca_path}",
            )
        )
    elif leaf.not_valid_before_utc > now or left < MIN_LEFT:
        days = left.days
        out.append(
            Finding(
                "warning" if days >= 0 else "error",
                "tls_leaf_expiring" if days >= 0 else "tls_leaf_expired",
                "证书助手的本机安全证书快到期了，点「修复」重启证书助手即自动更新。"
                "(The helper's local certificate is about to expire; click 修复 to restart "
                "the helper, which renews it.)",
                "重启证书助手即自动续期 (restart `certhelper run`; it renews the leaf)",
                detail=f"{leaf_path}: valid for {days} more days (renewed below 10)",
                fix_id="restart-helper",
            )
        )
    else:
        out.append(
            Finding(
                "ok",
                "tls_leaf_ok",
                "证书助手的本机安全证书有效 (the helper's local certificate is valid)",
                detail=f"{leaf_path}: {left.days} days left",
            )
        )
    out += _key_findings(d)
    return out


def _key_findings(d: Path) -> list[Finding]:
    out = []
    kinds = {key_protection(d / name) for name in ("leaf.key", "ca.key")}
    if "file" in kinds:
        out.append(
            Finding(
                "warning",
                "tls_key_unencrypted",
                "电脑没有可用的密钥环，证书助手的本机密钥未加密保存（仅您本人可读），可以正常使用。"
                "(No keyring: the helper's local keys are unencrypted, readable by you only; "
                "everything still works.)",
                "（可选）安装并解锁系统密钥环（如 gnome-keyring），"
                "然后删除本机证书目录并重启证书助手 "
                "(optional: install/unlock a keyring, remove the TLS folder, restart the helper)",
                detail=f"{d}/leaf.key and {d}/ca.key are unencrypted PKCS#8 (mode 0600); "
                f"to encrypt them: unlock a keyring, remove {d}, restart the daemon",
            )
        )
    for name in ("leaf.key", "ca.key"):
        p = d / name
        try:
            mode = p.stat().st_mode
        except OSError:
            continue
        if mode & 0o077:
            out.append(
                Finding(
                    "error",
                    "tls_key_permissions",
                    "电脑上的其他用户能读取证书助手的本机密钥 (other users can read the "
                    "helper's local key)",
                    f"chmod 600 {p}",
                    detail=f"{p}: mode {oct(mode & 0o777)}",
                )
            )
    return out


def _fingerprint(der: bytes) -> str:
    h = hashes.Hash(hashes.SHA256())
    h.update(der)
    return h.finalize().hex()


def nss_findings(config: Config, env: DoctorEnv) -> list[Finding]:
    """Is ca.pem trusted for TLS in ~/.pki/nssdb (Chrome/Chromium on Linux)?"""
    if not env.is_linux:
        return []
    ca = load_ca(env)
    if ca is None:
        return []  # tls_findings already says what to do
    db = env.nssdb
    if not (db / "cert9.db").exists():
        return [
            Finding(
                "warning",
                "nss_missing",
                NOT_TRUSTED,
                INSTALL_FIX,
                detail=f"no NSS database at {db} (cert9.db)",
                fix_id="trust-local-ca",
            )
        ]
    listing = env.query("certutil", "-L", "-d", f"sql:{db}")
    if listing is None:
        return [
            Finding(
                "warning",
                "nss_unchecked",
                "无法检查浏览器是否信任证书助手：缺少一个系统组件（libnss3-tools）"
                "(cannot check whether the browser trusts the helper: libnss3-tools missing)",
                "sudo apt install libnss3-tools，然后运行 certhelper install "
                "(install libnss3-tools, then run `certhelper install`)",
            )
        ]
    rc, text = listing
    want = _fingerprint(ca.public_bytes(_DER))
    stale = False
    for nick, trust in _nicknames(text if rc == 0 else ""):
        got = env.query("certutil", "-L", "-d", f"sql:{db}", "-n", nick, "-a")
        if got is None or got[0] != 0:
            continue
        prints = {_fingerprint(_pem_der(m)) for m in _PEM.findall(got[1].encode())}
        if want in prints:
            if "C" in trust.split(",")[0]:
                return [
                    Finding(
                        "ok",
                        "nss_trusted",
                        "浏览器信任证书助手 (the browser trusts the helper)",
                        detail=f"{db}: trusted as “{nick}” ({trust})",
                    )
                ]
            return [
                Finding(
                    "warning",
                    "nss_not_trusted",
                    NOT_TRUSTED,
                    INSTALL_FIX,
                    detail=f"{db}: the local CA is there as “{nick}” without SSL trust ({trust})",
                    fix_id="trust-local-ca",
                )
            ]
        if nick.lower().startswith(NICKNAME_PREFIXES):
            stale = True
    if stale:
        return [
            Finding(
                "warning",
                "nss_stale_ca",
                NOT_TRUSTED,
                INSTALL_FIX,
                detail=f"{db} holds an older certhelper local CA, not {env.tls_dir}/ca.pem",
                fix_id="trust-local-ca",
            )
        ]
    return [
        Finding(
            "warning",
            "nss_not_trusted",
            NOT_TRUSTED,
            INSTALL_FIX,
            detail=f"{env.tls_dir}/ca.pem is not in the NSS database {db}",
            fix_id="trust-local-ca",
        )
    ]


def _nicknames(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        m = _TRUST_LINE.match(line)
        if not m or not m["nick"].strip() or m["nick"].startswith("Certificate Nickname"):
            continue
        out.append((m["nick"].strip(), m["trust"]))
    # our own nicknames first, so the usual case asks certutil once
    out.sort(key=lambda p: not p[0].lower().startswith(NICKNAME_PREFIXES))
    return out


def _pem_der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(_DER)
