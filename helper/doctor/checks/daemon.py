"""Is the daemon running, and do its ports answer? (read-only: a ping, a connect)"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
from typing import Any

from helper.config import Config
from helper.doctor.checks.base import DoctorEnv, Finding

START_FIX = (
    "运行 certhelper run 启动证书助手；运行 certhelper install 设置开机自启 "
    "(start it with `certhelper run`; `certhelper install` sets up autostart)"
)


def _ping(env: DoctorEnv) -> dict[str, Any] | None:
    """The daemon's ping reply, or None when no daemon answers."""
    if env.daemon_request is not None:
        try:
            return env.daemon_request({"cmd": "ping"})
        except Exception:
            return None
    if env.control_dir is None:
        return None
    from helper.services import control

    d = env.control_dir
    if not (d / control.SOCKET_NAME).exists() and not (d / control.TCP_NAME).exists():
        return None  # never started, or stopped cleanly: don't wait for it
    try:
        return control.request({"cmd": "ping"}, d, timeout=env.timeout)
    except control.DaemonUnavailable:
        return None


def _tcp_open(port: int, timeout: float) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _https_ping(port: int, env: DoctorEnv) -> tuple[bool, str]:
    """(ok, detail): GET /v1/ping over TLS, trusting only our CA."""
    ca = env.tls_dir / "ca.pem"
    if not ca.is_file():
        return False, f"{ca} 不存在 (missing)"
    try:
        ctx = ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError, ValueError) as exc:
        return False, f"{ca}: {exc}"
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=env.timeout, context=ctx)
    try:
        conn.request("GET", "/v1/ping", headers={"Host": f"localhost:{port}"})
        resp = conn.getresponse()
        body = resp.read(4096)
    except ssl.SSLError as exc:
        return False, f"TLS: {exc.reason or exc}"
    except (OSError, http.client.HTTPException) as exc:
        return False, str(exc) or type(exc).__name__
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    if resp.status != 200:
        return False, f"HTTP {resp.status}"
    try:
        app = json.loads(body).get("app")
    except (ValueError, AttributeError):
        app = None
    if app != "certhelper":
        return False, "应答不是证书助手 (not certhelper's answer)"
    return True, ""


def daemon_findings(config: Config, env: DoctorEnv) -> list[Finding]:
    reply = _ping(env)
    running = bool(reply and reply.get("ok"))
    out: list[Finding] = []
    if running:
        assert reply is not None
        out.append(
            Finding(
                "ok",
                "daemon_running",
                f"证书助手正在运行 (daemon running: version {reply.get('version', '?')}, "
                f"pid {reply.get('pid', '?')})",
            )
        )
    else:
        out.append(
            Finding(
                "warning",
                "daemon_not_running",
                "证书助手未在运行，网页无法连接 USB Key (the daemon is not running; "
                "web pages cannot reach the key)",
                START_FIX,
            )
        )
    out += _bridge_port(config, env, running)
    if config.hebca_enabled:
        out += _hebca_port(config, env, running)
    return out


def _port_taken(code: str, port: int, what: str) -> Finding:
    return Finding(
        "error",
        code,
        f"端口 {port} 已被其他程序占用，证书助手无法启动{what} "
        f"(port {port} is taken by another program)",
        f"关闭占用端口 {port} 的程序，或在配置文件中改用其他端口 "
        f"(stop that program or choose another port in the config; `ss -ltnp 'sport = :{port}'`)",
    )


def _bridge_port(config: Config, env: DoctorEnv, running: bool) -> list[Finding]:
    port = config.bridge_port
    if not running:
        if _tcp_open(port, env.timeout):
            return [_port_taken("bridge_port_in_use", port, "网页接口 (bridge)")]
        return []
    ok, detail = _https_ping(port, env)
    if ok:
        return [
            Finding("ok", "bridge_port_ok", f"网页接口 https://localhost:{port} 应答正常 (answers)")
        ]
    return [
        Finding(
            "error",
            "bridge_port_failed",
            f"网页接口 https://localhost:{port} 无应答或证书不符 (bridge not answering): {detail}",
            "重启证书助手 (certhelper run)；仍有问题请运行 certhelper install "
            "(restart the daemon; if it persists run `certhelper install`)",
        )
    ]


def _hebca_port(config: Config, env: DoctorEnv, running: bool) -> list[Finding]:
    port = config.hebca_port
    is_open = _tcp_open(port, env.timeout)
    if not running:
        return [_port_taken("hebca_port_in_use", port, "河北CA兼容接口")] if is_open else []
    if is_open:
        return [
            Finding(
                "ok", "hebca_port_ok", f"河北CA兼容接口 ws://localhost:{port} 应答正常 (answers)"
            )
        ]
    return [
        Finding(
            "error",
            "hebca_port_closed",
            f"河北CA兼容接口 ws://localhost:{port} 无应答 (HEBCA endpoint not answering)",
            "重启证书助手 (certhelper run)；端口被占用时请在配置中修改 hebca_port "
            "(restart the daemon; or change hebca_port in the config)",
        )
    ]
