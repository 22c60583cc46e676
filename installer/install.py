"""``certhelper install`` / ``certhelper uninstall`` (overview in installer/__init__.py).

User level by default: autostart entry, URL scheme handler and its xdg-mime defaults,
the browser extension's native-messaging host (installer/native_host.py), the local CA
in the user's NSS databases. ``--system`` (root) also puts the CA in the
system trust store. Every change is recorded in the manifest (installer/manifest.py);
``uninstall`` undoes exactly those. Running ``install`` twice changes nothing the
second time.
"""

from __future__ import annotations

import os
from pathlib import Path

from installer import autostart, native_host, nss, paths, polkit, schemes, system_trust
from installer import manifest as manifest_mod
from installer import policy as browser_policy
from installer.context import InstallContext
from installer.report import Report, Step

TLS_NAME = "本机 TLS 证书 TLS identity"
POLICY_NAME = "浏览器策略 browser policy (Local Network Access)"
POLKIT_NAME = "一键修复授权 polkit action (certhelper-admin)"
#: tests only: write the browser policy under this directory instead of /
ENV_POLICY_ROOT = "CERTHELPER_POLICY_ROOT"


def policy_root() -> Path:
    return Path(os.environ.get(ENV_POLICY_ROOT) or "/")


def _install_policy(ctx: InstallContext, manifest: manifest_mod.Manifest, *, dry_run: bool) -> Step:
    """Chrome/Chromium managed policy letting the configured halls reach the helper
    (docs/lna.md: a plain-http public hall needs it under Local Network Access)."""
    root = policy_root()
    origins = list(ctx.page_origins)  # the CAs' renewal pages reach it too
    files = browser_policy.policy_paths(root)
    before = {p: p.read_bytes() for p in files if p.exists()}
    if dry_run:
        return Step(POLICY_NAME, "exists" if before else "done", ", ".join(map(str, files)))
    written = browser_policy.write_policy(origins, root)
    manifest.policy_root = str(root)
    changed = any(before.get(p) != p.read_bytes() for p in written)
    return Step(POLICY_NAME, "done" if changed else "exists", ", ".join(map(str, written)))


def _install_polkit(*, dry_run: bool) -> Step:
    """The polkit action that lets 检测修复 run certhelper-admin (installer/polkit.py)."""
    path = polkit.action_file(policy_root())
    if dry_run:
        return Step(POLKIT_NAME, "exists" if path.exists() else "done", str(path))
    path, changed = polkit.install(policy_root())
    return Step(POLKIT_NAME, "done" if changed else "exists", str(path))


def _uninstall_policy(manifest: manifest_mod.Manifest, *, dry_run: bool) -> Step:
    root = Path(manifest.policy_root)
    if not dry_run:
        browser_policy.remove_policy(root)
        polkit.remove(root)
        manifest.policy_root = ""
    return Step(POLICY_NAME, "done", str(root))


def _identity(ctx: InstallContext, report: Report, *, dry_run: bool) -> Path | None:
    ca = ctx.ca_file
    if dry_run or ctx.ensure_ca is None:
        report.add(Step(TLS_NAME, "exists" if ca.exists() else "done", str(ca)))
        return ca if ca.exists() else None
    ca_pem, created = ctx.ensure_ca()
    report.add(Step(TLS_NAME, "done" if created else "exists", str(ca_pem)))
    return ca_pem


def install(ctx: InstallContext, *, system: bool = False, dry_run: bool = False) -> Report:
    report = Report("install", dry_run=dry_run)
    manifest = manifest_mod.load(ctx.manifest_file)
    ca_pem = _identity(ctx, report, dry_run=dry_run)
    report.add(autostart.install(manifest, dry_run=dry_run))
    report.extend(schemes.install(manifest, dry_run=dry_run))
    if ctx.native_host is not None:
        report.extend(
            native_host.install(ctx.native_host, ctx.launcher_file, manifest, dry_run=dry_run)
        )
    if ca_pem is not None:
        report.extend(nss.install(ca_pem, manifest, dry_run=dry_run))
    else:
        report.add(Step("信任本机 CA trust local CA", "done", "新证书 (the new CA)"))
    if system:
        if ca_pem is not None:
            report.add(system_trust.install(ca_pem, manifest, dry_run=dry_run))
        else:
            report.add(Step(system_trust.NAME, "done", str(paths.system_ca_file())))
        report.add(_install_policy(ctx, manifest, dry_run=dry_run))
        report.add(_install_polkit(dry_run=dry_run))
    if not dry_run:
        manifest_mod.save(manifest, ctx.manifest_file)
    return report


def uninstall(ctx: InstallContext, *, system: bool = False, dry_run: bool = False) -> Report:
    report = Report("uninstall", dry_run=dry_run)
    manifest = manifest_mod.load(ctx.manifest_file)
    if manifest.is_empty():
        report.add(Step("卸载 uninstall", "skipped", "未安装 nothing was installed"))
        return report
    report.add(autostart.uninstall(manifest, dry_run=dry_run))
    report.extend(schemes.uninstall(manifest, dry_run=dry_run))
    report.extend(native_host.uninstall(ctx.launcher_file, manifest, dry_run=dry_run))
    report.extend(nss.uninstall(manifest, dry_run=dry_run))
    if manifest.policy_root:
        if system:
            report.add(_uninstall_policy(manifest, dry_run=dry_run))
        else:
            report.add(
                Step(
                    POLICY_NAME,
                    "skipped",
                    "需要 --system (run `sudo certhelper uninstall --system`)",
                )
            )
    if manifest.system:
        if system:
            report.add(system_trust.uninstall(manifest, dry_run=dry_run))
        else:
            report.add(
                Step(
                    system_trust.NAME,
                    "skipped",
                    "需要 --system 与 root 权限 (run `sudo certhelper uninstall --system`)",
                )
            )
    if not dry_run:
        # files left in the list were removed by someone else; forget them
        manifest.files = [f for f in manifest.files if Path(f).exists()]
        for f in list(manifest.files):
            Path(f).unlink(missing_ok=True)
            manifest.files.remove(f)
        manifest_mod.remove_dirs(manifest)
        manifest_mod.save(manifest, ctx.manifest_file)
    return report
