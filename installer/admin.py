"""``certhelper-admin``: the one command certhelper runs as root, through ``pkexec``.

It does only what its closed set of verbs says, with arguments it checks itself, and
never starts a shell::

    certhelper-admin write-browser-policy --origin URL [--origin URL ...] [--root DIR]
    certhelper-admin remove-browser-policy [--root DIR]
    certhelper-admin trust-system-ca --ca FILE [--root DIR]
    certhelper-admin untrust-system-ca [--root DIR]

- the browser policy is ``installer.policy``'s ``certhelper.json``, written only into
  ``installer.policy.POLICY_DIRS``; each origin must be an ``http(s)://host[:port]``
  origin (at most :data:`MAX_ORIGINS`);
- the system CA is written only to ``/usr/local/share/ca-certificates/
  certhelper-local-ca.crt``, and only when ``FILE`` holds exactly one certificate that
  is certhelper's own local CA (a CA whose subject CN starts with
  :data:`CA_CN_PREFIX`, limited by name constraints to loopback) — any other file is
  refused, so the verb cannot be used to trust an arbitrary certificate;
- ``--root DIR`` (an existing absolute directory) puts every path under ``DIR``
  (tests); then ``update-ca-certificates`` is not run.

Exit codes: 0 done (or nothing to change), 1 failed while writing, 2 refused (bad
verb or argument; nothing was touched). One line of Chinese + English on stdout or
stderr says what happened.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from cryptography import x509

from installer import policy

VERBS = ("write-browser-policy", "remove-browser-policy", "trust-system-ca", "untrust-system-ca")
MAX_ORIGINS = 64
MAX_ORIGIN_LEN = 200
MAX_CA_BYTES = 16 * 1024
#: helper.services.tls.CA_CN_PREFIX (the installer never imports helper)
CA_CN_PREFIX = "证书助手本机 CA certhelper local CA"
SYSTEM_CA_FILE = PurePosixPath("/usr/local/share/ca-certificates/certhelper-local-ca.crt")
UPDATE_CA = "/usr/sbin/update-ca-certificates"
#: the only options each verb takes (name -> may repeat)
OPTIONS: dict[str, dict[str, bool]] = {
    "write-browser-policy": {"--origin": True, "--root": False},
    "remove-browser-policy": {"--root": False},
    "trust-system-ca": {"--ca": False, "--root": False},
    "untrust-system-ca": {"--root": False},
}


class Refused(Exception):
    """A bad verb or argument: exit 2, nothing touched."""


def parse(argv: Sequence[str]) -> tuple[str, dict[str, list[str]]]:
    """(verb, {option: [values]}); raises :class:`Refused`."""
    if not argv or argv[0] not in VERBS:
        raise Refused(f"未知操作 (unknown verb): {argv[0] if argv else '(none)'}")
    verb, rest = argv[0], list(argv[1:])
    allowed = OPTIONS[verb]
    opts: dict[str, list[str]] = {}
    while rest:
        name = rest.pop(0)
        if name not in allowed:
            raise Refused(f"{verb} 不接受参数 (does not take) {name!r}")
        if not rest:
            raise Refused(f"{name} 缺少值 (needs a value)")
        value = rest.pop(0)
        if name in opts and not allowed[name]:
            raise Refused(f"{name} 只能给一次 (given twice)")
        opts.setdefault(name, []).append(value)
    return verb, opts


def _root(opts: dict[str, list[str]]) -> Path:
    raw = opts.get("--root", ["/"])[0]
    path = Path(raw)
    if not path.is_absolute() or ".." in path.parts or not path.is_dir():
        raise Refused(f"--root 必须是已存在的绝对路径目录 (an existing absolute dir): {raw}")
    return path


def _origins(opts: dict[str, list[str]]) -> list[str]:
    raw = opts.get("--origin", [])
    if not raw:
        raise Refused("至少需要一个 --origin (at least one --origin)")
    if len(raw) > MAX_ORIGINS:
        raise Refused(f"网址太多 (more than {MAX_ORIGINS} origins)")
    out = []
    for origin in raw:
        if len(origin) > MAX_ORIGIN_LEN or not origin.isprintable():
            raise Refused("网址无效 (bad origin)")
        try:
            out.append(policy.normalize_origin(origin))
        except ValueError as exc:
            raise Refused(f"网址无效 (bad origin): {exc}") from None
    return out


def read_local_ca(raw: str) -> bytes:
    """The PEM bytes of ``raw`` if it is certhelper's local CA; else :class:`Refused`."""
    path = Path(raw)
    if not path.is_absolute():
        raise Refused("--ca 必须是绝对路径 (must be an absolute path)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise Refused(f"--ca 无法打开 (cannot open): {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Refused("--ca 不是普通文件 (not a regular file)")
        data = os.read(fd, MAX_CA_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_CA_BYTES or data.count(b"-----BEGIN CERTIFICATE-----") != 1:
        raise Refused("--ca 必须恰好含一张 PEM 证书 (must hold exactly one PEM certificate)")
    try:
        cert = x509.load_pem_x509_certificate(data)
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        cert.extensions.get_extension_for_class(x509.NameConstraints)
    except (ValueError, x509.ExtensionNotFound):
        raise Refused("--ca 不是证书助手的本机 CA (not certhelper's local CA)") from None
    if not basic.ca or not cn or not str(cn[0].value).startswith(CA_CN_PREFIX):
        raise Refused("--ca 不是证书助手的本机 CA (not certhelper's local CA)")
    return data


def _under(root: Path, path: PurePosixPath) -> Path:
    return root / path.relative_to("/")


def _update_ca(root: Path) -> str:
    """Run update-ca-certificates (not under a test root); "" or an error."""
    if root != Path("/"):
        return ""
    try:
        result = subprocess.run(
            [UPDATE_CA], capture_output=True, text=True, timeout=300, check=False, env={}
        )
    except OSError as exc:
        return f"{UPDATE_CA}: {exc.strerror}"
    return "" if result.returncode == 0 else (result.stderr.strip() or "update-ca-certificates")


def _write(path: Path, data: bytes) -> bool:
    """Write atomically, mode 0644; False when it already held ``data``."""
    try:
        if path.read_bytes() == data and not path.is_symlink():
            return False
    except OSError:
        pass
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return True


def run(verb: str, opts: dict[str, list[str]]) -> str:
    """Do ``verb``; returns the line to print. Raises Refused / OSError."""
    root = _root(opts)
    if verb == "write-browser-policy":
        origins = _origins(opts)
        written = policy.write_policy(origins, root)
        done = ", ".join(map(str, written))
        return f"已允许网上大厅连接证书助手 (browser policy written): {done}"
    if verb == "remove-browser-policy":
        removed = policy.remove_policy(root)
        return "已删除浏览器策略 (browser policy removed): " + (
            ", ".join(map(str, removed)) or "无 (none)"
        )
    target = _under(root, SYSTEM_CA_FILE)
    if verb == "trust-system-ca":
        data = read_local_ca(opts.get("--ca", [""])[0])
        changed = _write(target, data)
        error = _update_ca(root) if changed else ""
        if error:
            raise OSError(error)
        return f"系统已信任证书助手本机证书 (system trust store): {target}"
    existed = target.exists()
    target.unlink(missing_ok=True)
    error = _update_ca(root) if existed else ""
    if error:
        raise OSError(error)
    return f"已从系统信任中删除 (removed from the system trust store): {target}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        verb, opts = parse(args)
        # check every argument before touching anything
        _root(opts)
        if verb == "write-browser-policy":
            _origins(opts)
        elif verb == "trust-system-ca":
            if "--ca" not in opts:
                raise Refused("trust-system-ca 需要 --ca (needs --ca)")
            read_local_ca(opts["--ca"][0])
        line = run(verb, opts)
    except Refused as exc:
        print(f"certhelper-admin: 已拒绝，未做任何更改 (refused, nothing changed): {exc}",
              file=sys.stderr)  # fmt: skip
        print(f"usage: certhelper-admin {{{','.join(VERBS)}}} ...", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"certhelper-admin: 失败 (failed): {exc}", file=sys.stderr)
        return 1
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
