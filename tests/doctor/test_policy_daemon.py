"""Browser policy under a fake root; the daemon not running, running, and its ports."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import ssl
import threading
from pathlib import Path

from helper.config import Config
from helper.doctor.checks import daemon_findings, policy_findings
from helper.services import control
from helper.services.tls import ensure_identity, ssl_context
from tests.support.doctor import free_port, make_env
from tests.support.keyring import MemoryKeyring

HALL = "http://111.62.46.105:9010"


def codes(findings) -> list[tuple[str, str]]:
    return [(f.level, f.code) for f in findings]


def write_policy(root: Path, rel: str, data: dict) -> None:
    d = root / rel
    d.mkdir(parents=True)
    (d / "certhelper.json").write_text(json.dumps(data))


def test_policy_missing_explains_local_network_access(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    [f] = policy_findings(
        Config(renewal_ca_origins=[], origins=[HALL, "http://127.0.0.1:9010"]), env
    )
    assert (f.level, f.code) == ("error", "browser_policy_missing")
    assert HALL in f.message
    assert "sudo certhelper install --system" in f.fix


def test_policy_written_by_the_installer_is_recognised(tmp_path: Path) -> None:
    from installer.policy import write_policy as install_policy

    env = make_env(tmp_path)
    install_policy([HALL], env.policy_root)
    assert codes(policy_findings(Config(renewal_ca_origins=[], origins=[HALL]), env)) == [
        ("ok", "browser_policy_ok")
    ]


def test_allow_lists_alone_do_not_let_a_plain_http_hall_through(tmp_path: Path) -> None:
    """Measured with Chromium 156 (docs/lna.md): a plain-http public page also needs
    OverrideSecurityRestrictionsOnInsecureOrigin; the two allow-lists alone fail."""
    env = make_env(tmp_path)
    for rel in ("etc/opt/chrome/policies/managed", "etc/chromium/policies/managed"):
        write_policy(
            env.policy_root,
            rel,
            {"LocalNetworkAccessAllowedForUrls": [HALL], "LoopbackNetworkAllowedForUrls": [HALL]},
        )
    assert codes(policy_findings(Config(renewal_ca_origins=[], origins=[HALL]), env)) == [
        ("error", "browser_policy_missing")
    ]


def test_policy_for_another_origin_does_not_count(tmp_path: Path) -> None:
    from installer.policy import write_policy as install_policy

    env = make_env(tmp_path)
    install_policy(["http://111.62.46.105:9011"], env.policy_root)
    assert codes(policy_findings(Config(renewal_ca_origins=[], origins=[HALL]), env)) == [
        ("error", "browser_policy_missing")
    ]


def test_loopback_halls_need_nothing_https_halls_get_a_note(tmp_path: Path) -> None:
    config = Config(
        renewal_ca_origins=[],
        origins=["http://127.0.0.1:9010", "http://localhost:1", "https://x.cn"],
    )
    assert codes(policy_findings(config, make_env(tmp_path))) == [
        ("warning", "browser_policy_prompt")
    ]


# --- daemon ------------------------------------------------------------------------


def test_daemon_not_running(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    config = Config(bridge_port=free_port(), hebca_port=free_port())
    [f] = daemon_findings(config, env)
    assert (f.level, f.code) == ("warning", "daemon_not_running")
    assert "certhelper run" in f.fix and "certhelper install" in f.fix


def test_daemon_not_running_but_port_taken(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        config = Config(bridge_port=s.getsockname()[1], hebca_enabled=False)
        found = codes(daemon_findings(config, env))
    assert found == [("warning", "daemon_not_running"), ("error", "bridge_port_in_use")]


class _Ping(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"app": "certhelper", "version": "0", "protocol": 1}).encode()
        self.send_response(200 if self.path == "/v1/ping" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_daemon_running_with_both_ports(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    ident = ensure_identity(env.tls_dir, keyring_backend=MemoryKeyring())
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Ping)
    httpd.socket = ssl_context(ident).wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    hebca = socket.socket()
    hebca.bind(("127.0.0.1", 0))
    hebca.listen()
    # a real control socket answering ping, as the daemon does
    claim = control.claim(tmp_path / "control")
    assert isinstance(claim, control.Claim)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    reply = {"ok": True, "app": "certhelper", "version": "9.9", "pid": 42}
    asyncio.run_coroutine_threadsafe(claim.serve(lambda m: reply), loop).result(5)
    try:
        config = Config(bridge_port=httpd.server_address[1], hebca_port=hebca.getsockname()[1])
        found = daemon_findings(config, env)
        assert codes(found) == [
            ("ok", "daemon_running"),
            ("ok", "bridge_port_ok"),
            ("ok", "hebca_port_ok"),
        ]
        assert "9.9" in found[0].detail
        # a server whose certificate is not from our CA is reported
        other = make_env(tmp_path / "other")
        ensure_identity(other.tls_dir, keyring_backend=MemoryKeyring())
        other.daemon_request = lambda m: reply
        found = codes(daemon_findings(config, other))
        assert ("error", "bridge_port_failed") in found
        hebca.close()
        found = codes(daemon_findings(config, env))
        assert ("error", "hebca_port_closed") in found
    finally:
        loop.call_soon_threadsafe(claim.close)
        loop.call_soon_threadsafe(loop.stop)
        httpd.shutdown()
        hebca.close()


def test_https_ping_refuses_without_ca(tmp_path: Path) -> None:
    env = make_env(tmp_path, daemon_request=lambda m: {"ok": True})
    config = Config(bridge_port=free_port(), hebca_enabled=False)
    assert codes(daemon_findings(config, env)) == [
        ("ok", "daemon_running"),
        ("error", "bridge_port_failed"),
    ]
    assert ssl.HAS_SNI  # the ping uses a normal verifying client context


def test_ca_origins_are_checked_like_halls(tmp_path: Path) -> None:
    """The CA's renewal pages reach the helper too: they are in the policy check."""
    from installer.policy import write_policy as install_policy

    env = make_env(tmp_path)
    config = Config(origins=[HALL], renewal_ca_origins=["http://ca.example.cn"])
    assert codes(policy_findings(config, env)) == [("error", "browser_policy_missing")] * 2
    install_policy(config.page_origins(), env.policy_root)
    assert codes(policy_findings(config, env)) == [("ok", "browser_policy_ok")] * 2
