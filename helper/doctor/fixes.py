"""修复: apply the fixes findings name (``Finding.fix_id``, listed in ``FIXES``).

User-level fixes call the installer's own functions (the same code as ``certhelper
install``): NSS trust of the local CA, autostart, URL schemes, the extension's native
host; and start or restart
the daemon. Root fixes run ``certhelper-admin`` through polkit
(:mod:`installer.elevate`): the browser policy and the system trust store. Every change
is recorded in the install manifest, so ``certhelper uninstall`` undoes it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from helper.config import Config
from helper.doctor.checks.base import FIXES, DoctorEnv, Finding
from installer import autostart, elevate, native_host, nss, schemes
from installer import manifest as manifest_mod
from installer import policy as browser_policy
from installer.admin import SYSTEM_CA_FILE
from installer.context import LAUNCHER_NAME, MANIFEST_NAME
from installer.desktop import certhelper_command
from installer.report import Step


@dataclass(frozen=True)
class FixOutcome:
    id: str
    ok: bool
    #: the person closed the password dialog (or was not allowed): nothing changed
    cancelled: bool = False
    #: one line, Chinese (English)
    text: str = ""
    #: the commands run, installer steps, exit codes
    detail: str = ""

    def line(self) -> str:
        mark = "✔" if self.ok else ("–" if self.cancelled else "✘")
        title = FIXES[self.id].title if self.id in FIXES else self.id
        return f"{mark} {title}: {self.text}"


@dataclass
class FixContext:
    config: Config
    env: DoctorEnv
    #: runs the pkexec command line (tests: a seam; None = subprocess, no shell)
    runner: elevate.Runner | None = None
    #: starts ``certhelper run`` detached
    spawn: Callable[[], None] = field(default=lambda: spawn_daemon())
    #: seconds to wait for a (re)started daemon to answer
    start_wait: float = 15.0


def spawn_daemon() -> None:
    """``certhelper run``, detached from this process (as ``certhelper open-url`` does)."""
    kwargs: dict[str, Any] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True
    subprocess.Popen(
        [*certhelper_command(), "run"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        cwd=os.path.expanduser("~"),
        **kwargs,
    )


def fixes_for(findings: Iterable[Finding]) -> list[str]:
    """The fix ids of the findings that are not ok, once each, in FIXES order."""
    wanted = {f.fix_id for f in findings if f.level != "ok" and f.fix_id in FIXES}
    return [fid for fid in FIXES if fid in wanted]


def _steps_outcome(fix_id: str, steps: list[Step]) -> FixOutcome:
    failed = [s for s in steps if s.status in ("failed", "skipped")]
    detail = "\n".join(s.line() for s in steps)
    if failed:
        return FixOutcome(fix_id, False, text=failed[0].line(), detail=detail)
    return FixOutcome(fix_id, True, text="已完成 (done)", detail=detail)


def _with_manifest(
    ctx: FixContext, work: Callable[[manifest_mod.Manifest], list[Step]]
) -> list[Step]:
    path = ctx.env.data_dir / MANIFEST_NAME
    manifest = manifest_mod.load(path)
    try:
        return work(manifest)
    finally:
        manifest_mod.save(manifest, path)


def _trust_local_ca(ctx: FixContext) -> FixOutcome:
    from helper.services.tls import ensure_identity

    identity = ensure_identity(ctx.env.tls_dir)
    ca = identity.paths.ca_cert
    steps = _with_manifest(ctx, lambda m: nss.install(ca, m))
    return _steps_outcome("trust-local-ca", steps)


def _native_host(ctx: FixContext) -> FixOutcome:
    """(Re)write the launcher and the host manifests, as ``certhelper install`` does."""
    from helper.webext.host import native_host_spec

    spec, launcher = native_host_spec(), ctx.env.data_dir / LAUNCHER_NAME
    steps = _with_manifest(ctx, lambda m: native_host.install(spec, launcher, m))
    return _steps_outcome("native-host", steps)


def _ping(ctx: FixContext) -> bool:
    from helper.doctor.checks.daemon import _ping as ping

    reply = ping(ctx.env)
    return bool(reply and reply.get("ok"))


def _wait(ctx: FixContext, running: bool) -> bool:
    deadline = time.monotonic() + ctx.start_wait
    while time.monotonic() < deadline:
        if _ping(ctx) == running:
            return True
        time.sleep(0.3)
    return _ping(ctx) == running


def _start(ctx: FixContext, fix_id: str, *, restart: bool) -> FixOutcome:
    if restart and _ping(ctx):
        from helper.services import control

        try:
            if ctx.env.control_dir is not None:
                control.request({"cmd": "quit"}, ctx.env.control_dir, timeout=ctx.env.timeout)
        except control.DaemonUnavailable:
            pass
        if not _wait(ctx, running=False):
            return FixOutcome(fix_id, False, text="证书助手没有退出 (the helper did not quit)")
    if not _ping(ctx):
        ctx.spawn()
    if _wait(ctx, running=True):
        return FixOutcome(fix_id, True, text="证书助手已启动 (the helper is running)")
    return FixOutcome(
        fix_id,
        False,
        text=f"{ctx.start_wait:.0f} 秒内没有启动 (did not start within {ctx.start_wait:.0f} s)",
        detail=" ".join([*certhelper_command(), "run"]),
    )


def _elevated(ctx: FixContext, fix_id: str, verb: str, args: list[str]) -> FixOutcome:
    result = elevate.run_admin(verb, args, ctx.runner)
    detail = f"$ {' '.join(result.argv)}\nexit {result.code}\n{result.output}".strip()
    if result.cancelled:
        return FixOutcome(fix_id, False, cancelled=True, text=elevate.CANCELLED, detail=detail)
    if not result.ok:
        return FixOutcome(fix_id, False, text=result.text(), detail=detail)
    return FixOutcome(fix_id, True, text="已完成 (done)", detail=detail)


def _browser_policy(ctx: FixContext) -> FixOutcome:
    origins = []
    for o in ctx.config.page_origins():
        try:
            origins.append(browser_policy.normalize_origin(o))
        except ValueError:
            continue
    if not origins:
        return FixOutcome("browser-policy", False, text="没有配置网址 (no origins configured)")
    args = [a for o in origins for a in ("--origin", o)]
    outcome = _elevated(ctx, "browser-policy", "write-browser-policy", args)
    if outcome.ok:

        def record(m: manifest_mod.Manifest) -> list[Step]:
            m.policy_root = str(ctx.env.policy_root)
            return []

        _with_manifest(ctx, record)
    return outcome


def _system_trust(ctx: FixContext) -> FixOutcome:
    ca = ctx.env.tls_dir / "ca.pem"
    if not ca.is_file():
        return FixOutcome("system-trust", False, text=f"{ca} 不存在 (missing)")
    outcome = _elevated(ctx, "system-trust", "trust-system-ca", ["--ca", str(ca.absolute())])
    if outcome.ok:

        def record(m: manifest_mod.Manifest) -> list[Step]:
            m.system["ca_file"] = str(SYSTEM_CA_FILE)
            return []

        _with_manifest(ctx, record)
    return outcome


APPLY: dict[str, Callable[[FixContext], FixOutcome]] = {
    "trust-local-ca": _trust_local_ca,
    "start-helper": lambda ctx: _start(ctx, "start-helper", restart=False),
    "restart-helper": lambda ctx: _start(ctx, "restart-helper", restart=True),
    "autostart": lambda ctx: _steps_outcome(
        "autostart", _with_manifest(ctx, lambda m: [autostart.install(m)])
    ),
    "url-schemes": lambda ctx: _steps_outcome(
        "url-schemes", _with_manifest(ctx, lambda m: schemes.install(m))
    ),
    "native-host": _native_host,
    "browser-policy": _browser_policy,
    "system-trust": _system_trust,
}


def apply_fix(fix_id: str, ctx: FixContext) -> FixOutcome:
    """Run one fix; never raises for a failing fix (it says so in the outcome)."""
    if fix_id not in APPLY:
        return FixOutcome(fix_id, False, text=f"未知的修复 (unknown fix {fix_id!r})")
    try:
        return APPLY[fix_id](ctx)
    except Exception as exc:  # a fix that breaks must not take 检测修复 down
        return FixOutcome(fix_id, False, text=f"失败 (failed): {type(exc).__name__}: {exc}")
