"""The CLI's command handlers. Each takes (args, config, service_factory) and
returns an exit code; errors propagate to :func:`helper.cli.main.main`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.errors import BadInput, CertHelperError, PinLocked
from drivers.protocol import TokenDriver
from drivers.types import PinState
from helper.cli import render
from helper.cli.prompts import PinReader
from helper.config import Config
from helper.domain.presentation import to_pem, token_state_text
from helper.errors import Cancelled
from helper.services import operations
from helper.services.summary import certificate_summary, list_document
from helper.services.tokens import TokenService

Factory = Callable[[Config], TokenService]


def _service(config: Config, factory: Factory) -> TokenService:
    return factory(config)


def cmd_list(args: argparse.Namespace, config: Config, factory: Factory) -> int:
    service = _service(config, factory)
    try:
        now = service.clock()
        views = service.snapshot()
        if args.json:
            doc = list_document(service.modules, views, now)
            json.dump(doc, sys.stdout, ensure_ascii=False, indent=2)
            sys.stdout.write("\n")
        else:
            render.print_list(service.modules, views, now)
    finally:
        service.close()
    # a module the user named (config or --module) that failed is an error
    failed = [m for m in service.modules if m.error is not None and m.source == "config"]
    return failed[0].error.exit_code if failed and failed[0].error else 0


def cmd_show(args: argparse.Namespace, config: Config, factory: Factory) -> int:
    service = _service(config, factory)
    try:
        entry = service.find_certificate(args.cert)
        now = service.clock()
        if args.der:
            Path(args.der).write_bytes(entry.obj.value)
            print(f"已导出 (written): {args.der}")
        elif args.pem:
            pem = to_pem(entry.obj.value)
            if args.pem == "-":
                sys.stdout.write(pem)
            else:
                Path(args.pem).write_text(pem, "ascii")
                print(f"已导出 (written): {args.pem}")
        elif args.json:
            json.dump(certificate_summary(entry, now), sys.stdout, ensure_ascii=False, indent=2)
            sys.stdout.write("\n")
        else:
            render.print_details(entry, now)
    finally:
        service.close()
    return 0


def cmd_change_pin(args: argparse.Namespace, config: Config, factory: Factory) -> int:
    service = _service(config, factory)
    try:
        driver, token = service.find_token(args.token)
        info = driver.token_info(token.serial)
        state = token_state_text(
            info.pin_state, info.pin_retries_left, info.pin_max_retries, info.pin_is_default
        )
        print(f"USB Key: {info.label} ({info.serial})  {state}")
        if info.pin_state is PinState.LOCKED:
            raise PinLocked(detail=info.label)
        render.warn_pin_state(info.pin_state)
        reader = PinReader(from_stdin=args.stdin)
        old = reader.read("当前密码 (current PIN): ")
        new = reader.read("新密码 (new PIN): ")
        confirm = reader.read("再次输入新密码 (confirm new PIN): ")
        result = operations.check_change(info, old, new, confirm)  # token untouched
        for w in result.warnings:
            print(f"提示 (note): {w.message}", file=sys.stderr)
        if (
            result.warnings
            and not args.stdin
            and not _confirm("仍要使用这个密码吗? (use it anyway?)")
        ):
            raise Cancelled()
        try:
            operations.apply_change(driver, info, old, new)
        except CertHelperError:
            _report_state_after_failure(driver, token.serial)
            raise
        print("密码修改成功 (PIN changed)。请牢记新密码 (remember the new PIN).")
    finally:
        service.close()
    return 0


def _confirm(question: str) -> bool:
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes", "是")
    except EOFError:
        return False


def _report_state_after_failure(driver: TokenDriver, serial: str) -> None:
    try:
        t = driver.token_info(serial)
    except CertHelperError:
        return
    state = token_state_text(t.pin_state, t.pin_retries_left, t.pin_max_retries, None)
    print(f"当前密码状态 (PIN state now): {state}", file=sys.stderr)


def cmd_sign(args: argparse.Namespace, config: Config, factory: Factory) -> int:
    data = _read_input(args.infile)
    service = _service(config, factory)
    try:
        entry = service.find_certificate(args.cert)
        plan = operations.plan_signing(service, entry, legacy_sha1=args.sha1)
        info = plan.token
        render.warn_pin_state(info.pin_state)
        pin = None
        if not info.protected_auth_path:
            pin = PinReader(from_stdin=args.pin_stdin).read(
                f"请输入 {info.label} 的密码 (PIN for {info.label}): "
            )
        else:
            print("请在 USB Key 的密码键盘上输入密码 (enter the PIN on the key's PIN pad)")
        try:
            out = operations.sign(
                plan,
                data,
                pin,
                fmt=args.format,
                detached=not args.attached,
                sm2_id=args.sm2_id.encode("utf-8"),
            )
        except CertHelperError:
            _report_state_after_failure(plan.driver, entry.token.serial)
            raise
    finally:
        service.close()
    _write_output(args.outfile, out)
    print(f"签名完成 (signed): {args.outfile} ({args.format}, {len(out)} bytes)")
    return 0


def _read_input(path: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise BadInput(detail=f"{path}: {exc.strerror}") from None


def _write_output(path: str, data: bytes) -> None:
    if path == "-":
        sys.stdout.buffer.write(data)
        return
    try:
        tmp = Path(path + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        raise BadInput(detail=f"{path}: {exc.strerror}") from None


def cmd_doctor(args: argparse.Namespace, config: Config, factory: Factory) -> int:
    from helper.doctor import run_doctor

    service = _service(config, factory)
    try:
        findings = run_doctor(config, service)
        if args.fix is not None:
            from helper.doctor.repair import fix_command

            try:
                again = lambda: run_doctor(config, service)  # noqa: E731
                report = fix_command(config, findings, args.fix, again)
            except ValueError as exc:
                raise BadInput(detail=str(exc)) from None
            findings = report.after
    finally:
        service.close()
    if args.fix is not None:
        if args.json:
            json.dump(report.to_dict(), sys.stdout, ensure_ascii=False, indent=2)
            sys.stdout.write("\n")
        else:
            print(report.text(verbose=args.verbose))
    elif args.json:
        json.dump([f.to_dict() for f in findings], sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        render.print_findings(findings, verbose=args.verbose)
    return 9 if any(f.level != "ok" for f in findings) else 0


def cmd_serve(args: argparse.Namespace, config: Config, factory: Factory) -> int:
    import asyncio

    from helper.daemon.compose import serve_forever
    from helper.ui.prompter import TkPrompter

    if args.port is not None:
        config.bridge_port = args.port
    service = _service(config, factory)
    asyncio.run(serve_forever(config, service, TkPrompter(timeout=config.dialog_timeout)))
    return 0


ALREADY_RUNNING = "证书助手已在运行，已打开「我的证书」 (already running: opened 我的证书)"


def cmd_run(args: argparse.Namespace, config: Config, factory: Factory) -> int:
    from helper.daemon.run import run_daemon
    from helper.services import control

    claim = control.claim()  # before anything slow: a second start only says hello
    if isinstance(claim, control.Running):
        if getattr(args, "background", False):
            return 0  # started by a program, not the user: no window to show
        reply = control.request({"cmd": "show", "window": "mycerts"}, claim.dir)
        if not reply.get("ok"):
            raise control.DaemonUnavailable(detail=str(reply.get("error")))
        print(ALREADY_RUNNING)
        return 0
    return run_daemon(config, claim=claim, service_factory=factory, auto_trust=True)


def cmd_demo_hall(args: argparse.Namespace, config: Config, factory: Factory) -> int:
    from helper.demo.hall import run_demo_hall

    try:
        run_demo_hall(port=args.port, ca_pems=args.ca, helper_base=args.helper)
    except ValueError as exc:
        raise BadInput(detail=str(exc)) from None
    return 0


def cmd_demo_ca(args: argparse.Namespace, config: Config, factory: Factory) -> int:
    from helper.demo.ca import run_demo_ca

    try:
        run_demo_ca(port=args.port, helper_base=args.helper)
    except ValueError as exc:
        raise BadInput(detail=str(exc)) from None
    return 0


def cmd_demo(args: argparse.Namespace, config: Config, factory: Factory) -> int:
    """The product on the demo keys: with a display, the tray daemon hosting the demo
    hall and the demo CA in the same process; without one, bridge and sites only."""
    import asyncio

    from helper.daemon.demo import prepare_demo_config, run_demo, start_demo_sites
    from helper.ui.prompter import TkPrompter

    try:
        prepare_demo_config(config)  # the demo CA signs with the demo token's issuing CA
    except ValueError as exc:
        raise BadInput(detail=str(exc)) from None
    if has_display():
        from helper.daemon.run import run_daemon
        from helper.services import control

        claim = control.claim()
        if isinstance(claim, control.Running):
            raise control.DaemonUnavailable(
                detail="证书助手已在运行，请先在托盘菜单中退出它再启动演示 "
                "(certhelper is already running: quit it from the tray, then start the demo)"
            )

        async def sites(bridge: Any) -> list[Any]:
            return await start_demo_sites(config, bridge, open_browser=not args.no_browser)

        return run_daemon(
            config, claim=claim, service_factory=factory, auto_trust=True, sites=sites
        )
    service = _service(config, factory)
    prompter = TkPrompter(timeout=config.dialog_timeout)
    asyncio.run(
        run_demo(config, service, prompter, open_browser=not args.no_browser, auto_trust=True)
    )
    return 0


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def cmd_origins(args: argparse.Namespace, config: Config, factory: Factory) -> int:
    from helper.config import data_dir
    from helper.services.consent import ConsentStore

    store = ConsentStore(data_dir() / "consent.json")
    if args.action == "revoke":
        if not args.origin:
            raise BadInput(detail="certhelper origins revoke ORIGIN")
        if not store.revoke(args.origin):
            print(f"没有该网站的授权记录 (nothing recorded for) {args.origin}")
            return 5
        print(f"已撤销 (revoked): {args.origin}")
        return 0
    print("配置允许的网站 (configured hall origins):")
    for origin in config.origins:
        print(f"  {origin}")
    recorded = store.all()
    print("用户的选择 (your decisions):" if recorded else "用户的选择 (your decisions): 无 (none)")
    for origin, decision in sorted(recorded.items()):
        label = "始终允许 always" if decision == "always" else "拒绝 deny"
        print(f"  {origin}  {label}")
    return 0


def cmd_audit(args: argparse.Namespace, config: Config, factory: Factory) -> int:
    from helper.config import data_dir
    from helper.services.audit import audit_key, log_files, verify_log

    path = data_dir() / "audit.jsonl"
    if args.action == "show":
        for f in log_files(path, config.audit_keep):
            sys.stdout.write(f.read_text("utf-8"))
        return 0
    key, _where = audit_key(data_dir())
    verdict = verify_log(path, key, config.audit_keep)
    print(
        (
            "审计日志完整 (audit log intact): "
            if verdict.ok
            else "审计日志被改动 (audit log TAMPERED): "
        )
        + verdict.message
    )
    return 0 if verdict.ok else 1


def cmd_install(args: argparse.Namespace, config: Config, factory: Factory) -> int:
    from helper.daemon.installation import install_context
    from installer.install import install, uninstall

    ctx = install_context(config)
    if args.command == "install":
        report = install(ctx, system=args.system, dry_run=args.dry_run)
    else:
        report = uninstall(ctx, system=args.system)
    print(report.text())
    return 0 if report.ok else 1


def cmd_open_url(args: argparse.Namespace, config: Config, factory: Factory) -> int:
    from helper.cli.open_url import open_url

    print(open_url(args.url))
    return 0


def cmd_native_host(args: argparse.Namespace, config: Config, factory: Factory) -> int:
    from helper.bridge.extension.host import main as host_main

    return host_main()


def cmd_extension(args: argparse.Namespace, config: Config, factory: Factory) -> int:
    from helper.webext.build import build_extension, source_dir

    out = build_extension(source_dir(), Path(args.out), config.page_origins(), args.browser)
    print(f"已生成 (written): {out} [{args.browser}]")
    for origin in config.page_origins():
        print(f"  {origin}")
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace, Config, Factory], int]] = {
    "list": cmd_list,
    "show": cmd_show,
    "change-pin": cmd_change_pin,
    "sign": cmd_sign,
    "doctor": cmd_doctor,
    "serve": cmd_serve,
    "run": cmd_run,
    "native-host": cmd_native_host,
    "extension": cmd_extension,
    "demo-hall": cmd_demo_hall,
    "demo-ca": cmd_demo_ca,
    "demo": cmd_demo,
    "origins": cmd_origins,
    "audit": cmd_audit,
    "install": cmd_install,
    "uninstall": cmd_install,
    "open-url": cmd_open_url,
}
