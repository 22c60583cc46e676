"""``certhelper doctor``: what is wrong and what to do about it.

The doctor only reads: it never tries a PIN and never writes to a token. PIN
states come from the token flags alone. The machine checks (daemon, TLS, NSS,
autostart, URL schemes, the extension's native host, browser policy, USB keys) live in
``helper.doctor.checks`` and read the machine through a
:class:`DoctorEnv`, so tests can point them at fake trees. See docs/doctor.md.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from drivers.types import PinState, TokenInfo
from helper.config import Config
from helper.doctor.checks import (
    DoctorEnv,
    Finding,
    Level,
    autostart_findings,
    daemon_findings,
    native_host_findings,
    nss_findings,
    policy_findings,
    scheme_findings,
    tls_findings,
    usb_findings,
)
from helper.domain.expiry import ExpiryState
from helper.domain.presentation import DRIVER_TEXT, pin_tries_text
from helper.services.tokens import TokenService

__all__ = ["DoctorEnv", "Finding", "Level", "machine_findings", "run_doctor"]

log = logging.getLogger(__name__)
RENEW_HINT = "请到河北CA网站办理证书延期 (renew online: 老用户延期 → 点此延长有效期)"


def _config_findings(config: Config) -> list[Finding]:
    where = str(config.path) if config.path else "默认设置 (defaults; no config file)"
    return [Finding("ok", "config", f"配置 (config): {where}")]


def _module_findings(service: TokenService) -> list[Finding]:
    out = []
    for m in service.modules:
        if m.error is None:
            kind = DRIVER_TEXT.get(m.family, m.family)
            out.append(
                Finding("ok", "module_loaded", f"已加载驱动 (module loaded) [{kind}]: {m.path}")
            )
        else:
            out.append(
                Finding(
                    "error",
                    "module_load_failed",
                    "有一个 USB Key 驱动无法加载，用它的 Key 暂时不能使用 "
                    "(a USB key driver could not be loaded; its keys cannot be used)",
                    "检查路径是否正确，或重新安装 USB Key 驱动 "
                    "(check the path or reinstall the key's driver)",
                    detail=f"{m.path}: {m.error.message()}",
                )
            )
    if not service.drivers:
        out.append(
            Finding(
                "error",
                "no_module",
                "没有可用的 USB Key 驱动 (no PKCS#11 module or SKF library loaded)",
                "安装 USB Key 厂商驱动或 OpenSC (sudo apt install opensc)，或在配置文件 modules"
                "（PKCS#11）/ skf_libraries（国密 SKF）中写明驱动路径 "
                "(or list it under `modules` / `skf_libraries` in the config)",
            )
        )
    return out


def _pin_finding(t: TokenInfo) -> Finding | None:
    label, state = t.label, t.pin_state
    tries = pin_tries_text(t.pin_retries_left, t.pin_max_retries)
    if state is PinState.LOCKED:
        return Finding(
            "error",
            "pin_locked",
            f"「{label}」密码已锁定 (PIN locked)",
            "请携带 USB Key 到河北CA沧州办事处解锁 (take the key to the CA office to unlock it)",
        )
    if state in (PinState.FINAL_TRY, PinState.COUNT_LOW):
        return Finding(
            "warning",
            f"pin_{state.value}",
            f"「{label}」密码已输错多次 (wrong PINs were entered: {state.value})"
            + (f" — {tries}" if tries else ""),
            "下次请仔细输入；忘记密码请到 CA 办事处重置 (forgot it? reset it at the CA office)",
        )
    if state is PinState.TO_BE_CHANGED or t.pin_is_default:
        return Finding(
            "warning",
            "pin_to_be_changed",
            f"「{label}」仍在使用初始密码 (still on the initial PIN)",
            "运行 certhelper change-pin 修改密码 (run certhelper change-pin)",
        )
    return None


def _token_findings(service: TokenService) -> list[Finding]:
    now = service.clock()
    views = service.snapshot()
    if not views and service.drivers:
        return [
            Finding(
                "warning",
                "no_token",
                "未检测到 USB Key (no USB key found)",
                "请插入 USB Key；如已插入，请安装其驱动 (insert the key, or install its driver)",
            )
        ]
    out = []
    for v in views:
        t = v.token
        kind = DRIVER_TEXT.get(t.family, t.family)
        tries = pin_tries_text(t.pin_retries_left, t.pin_max_retries)
        line = f"USB Key「{t.label}」({t.serial}) {t.model} [{kind}]" + (
            f" {tries}" if tries else ""
        )
        out.append(Finding("ok", "token", line))
        if (f := _pin_finding(t)) is not None:
            out.append(f)
        for c in v.certificates:
            m = c.model
            if m is None:
                out.append(
                    Finding(
                        "warning",
                        "cert_unreadable",
                        f"「{t.label}」上有无法读取的证书对象 (unreadable certificate {c.id})",
                        "请联系 CA 重新写入证书 (ask the CA to rewrite the certificate)",
                    )
                )
                continue
            if c.archived:  # replaced by its renewal: listed, never a problem
                continue
            name = m.subject_cn or c.id
            state = m.expiry_state(now)
            days = m.days_left(now)
            if state is ExpiryState.EXPIRED:
                out.append(
                    Finding("error", "cert_expired", f"证书「{name}」已过期 (expired)", RENEW_HINT)
                )
            elif state in (ExpiryState.URGENT, ExpiryState.WARNING):
                out.append(
                    Finding(
                        "warning",
                        f"cert_{state.value}",
                        f"证书「{name}」{days} 天后到期 (expires in {days} days)",
                        RENEW_HINT,
                    )
                )
            if not m.signing_supported:
                out.append(
                    Finding("warning", "signing_unsupported", f"证书「{name}」: {m.signing_note}")
                )
            elif c.signing_note:  # the driver lacks the key's algorithm
                out.append(
                    Finding(
                        "warning",
                        "signing_unsupported",
                        f"证书「{name}」: {c.signing_note}",
                        "安装 CA 提供的国密 SKF 驱动并在 skf_libraries 中写明 "
                        "(install the CA's SKF library and list it under skf_libraries)",
                    )
                )
            if c.private_key is None:
                out.append(
                    Finding(
                        "warning",
                        "cert_without_key",
                        f"证书「{name}」在 Key 上没有对应私钥 (no private key; cannot sign)",
                        "这通常是 CA 证书或残留证书，可忽略 (often a CA or leftover certificate)",
                    )
                )
        for k in v.keys_without_certificate:
            out.append(
                Finding(
                    "warning",
                    "key_without_cert",
                    f"「{t.label}」上有私钥没有证书 (key {k.key_id.hex()} has no certificate)",
                    "若刚办理延期，请重新写入证书 (after a renewal, install the certificate again)",
                )
            )
    return out


Check = Callable[[Config, DoctorEnv], list[Finding]]
#: the machine checks, in the order they are shown (docs/doctor.md)
MACHINE_CHECKS: tuple[tuple[str, Check], ...] = (
    ("daemon", daemon_findings),
    ("tls", tls_findings),
    ("nss", nss_findings),
    ("autostart", autostart_findings),
    ("url_schemes", scheme_findings),
    ("native_host", native_host_findings),
    ("browser_policy", policy_findings),
)


def _guarded(name: str, check: Check, config: Config, env: DoctorEnv) -> list[Finding]:
    """A broken check says so instead of hiding every other finding."""
    try:
        return [dataclasses.replace(f, check=name) for f in check(config, env)]
    except Exception as exc:  # the doctor must always finish
        log.exception("doctor check %s failed", name)
        return [
            Finding(
                "warning",
                "check_failed",
                f"有一项检查未能完成 (the check {name} failed)",
                "请把 certhelper doctor 的输出发给技术支持 (send this output to support)",
                detail=f"{type(exc).__name__}: {exc}",
                check=name,
            )
        ]


def machine_findings(config: Config, env: DoctorEnv | None = None) -> list[Finding]:
    """The machine checks alone (no token service): what 修复 can change, so the
    检测修复 window re-runs just these after a fix."""
    env = DoctorEnv.default() if env is None else env
    out: list[Finding] = []
    for name, check in MACHINE_CHECKS:
        out += _guarded(name, check, config, env)
    return out


def run_doctor(
    config: Config, service: TokenService, *, env: DoctorEnv | None = None
) -> list[Finding]:
    """Every finding, read-only. ``env`` defaults to the real machine."""
    env = DoctorEnv.default() if env is None else env
    out = _config_findings(config)
    out += machine_findings(config, env)
    out += _module_findings(service)
    out += _guarded("usb", usb_findings, config, env)
    out += _token_findings(service)
    return out
