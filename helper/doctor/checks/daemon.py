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
                "证书助手正在运行 (the helper is running)",
                detail=f"version {reply.get('version', '?')}, pid {reply.get('pid', '?')}",
            )
        )
    else:
        out.append(
            Finding(
                "warning",
                "daemon_not_running",
                "证书助手没有运行，网上大厅用不了 USB Key。点「修复」启动它。"
                "(The helper is not running, so the hall cannot use your USB key. "
                "Click 修复 to start it.)",
                START_FIX,
                detail=f"no answer to ping on the control socket in {env.control_dir}",
                fix_id="start-helper",
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
        "另一个程序（例如河北CA自带的助手）占用了证书助手要用的端口，证书助手无法工作。"
        "请退出那个程序后点「重新检测」。(Another program, e.g. the CA's own helper, holds "
        "the helper's port; quit it, then check again.)",
        f"关闭占用端口 {port} 的程序，或在配置文件中改用其他端口 "
        "(stop that program or choose another port in the config)",
        detail=f"{what}: 127.0.0.1:{port} is taken; `ss -ltnp 'sport = :{port}'` names the program",
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
            Finding(
                "ok",
                "bridge_port_ok",
                "网上大厅可以连接证书助手 (the helper answers web pages)",
                detail=f"https://localhost:{port}/v1/ping",
            )
        ]
    return [
        Finding(
            "error",
            "bridge_port_failed",
            "证书助手的网页接口没有应答，网上大厅连不上它。点「修复」重启证书助手。"
            "(The helper does not answer web pages; click 修复 to restart it.)",
            "重启证书助手 (certhelper run)；仍有问题请运行 certhelper install "
            "(restart the daemon; if it persists run `certhelper install`)",
            detail=f"https://localhost:{port}/v1/ping: {detail}",
            fix_id="restart-helper",
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
                "ok",
                "hebca_port_ok",
                "河北CA网页接口正常 (the HEBCA-compatible endpoint answers)",
                detail=f"ws://localhost:{port}",
            )
        ]
    return [
        Finding(
            "error",
            "hebca_port_closed",
            "证书助手的河北CA接口没有应答，公积金大厅登录会失败。点「修复」重启证书助手。"
            "(The HEBCA-compatible endpoint does not answer, so the hall's login fails; "
            "click 修复 to restart the helper.)",
            "重启证书助手 (certhelper run)；端口被占用时请在配置中修改 hebca_port "
            "(restart the daemon; or change hebca_port in the config)",
            detail=f"ws://localhost:{port}: no listener",
            fix_id="restart-helper",
        )
    ]
