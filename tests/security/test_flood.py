"""Finding 4: caps and deadlines on connections. Slow clients (silent TLS, request
heads dripped a byte at a time, TLS or plain) are dropped on time and never crowd
out a real page: its request is served while thousands of them are held open, the
daemon stays below its open-file limit, and its log shows no traceback flood."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import keyring.backends.fail

from helper.config import Config
from helper.daemon.compose import start_bridge
from helper.services.tokens import TokenService
from tests.support.doubles import ScriptedPrompter
from tests.support.tokens import ROOT

HANDSHAKE = "0|0|checkVersion"  # the HEBCA client's first frame (any frame will do here)


def small_config(**kw: Any) -> Config:
    config = Config(use_catalog=False)
    config.max_connections = kw.get("max_connections", 64)
    config.max_pending_connections = kw.get("max_pending", 16)
    config.header_timeout = kw.get("header_timeout", 1.0)
    config.tls_handshake_timeout = kw.get("tls_handshake_timeout", 1.0)
    return config


async def ping(port: int, ca: Path, timeout: float = 5) -> float:
    """Seconds for one HTTPS /v1/ping round trip on a fresh connection."""
    ctx = ssl.create_default_context(cafile=str(ca))
    t0 = time.perf_counter()
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx), timeout
    )
    writer.write(f"GET /v1/ping HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    status = await asyncio.wait_for(reader.readline(), timeout)
    writer.close()
    assert status.startswith(b"HTTP/1.1 200"), status
    return time.perf_counter() - t0


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), seconds) == b""
    except (TimeoutError, ConnectionError):
        return False


def test_slow_clients_are_dropped_on_time(tmp_path: Path) -> None:
    async def go() -> dict[str, Any]:
        bridge = await start_bridge(
            small_config(),
            tokens=TokenService([]),
            prompter=ScriptedPrompter(),
            state_dir=tmp_path,
            port=0,
            hebca_port=0,
            keyring_backend=keyring.backends.fail.Keyring(),
        )
        try:
            t0 = time.monotonic()
            # a TLS client that never says hello
            silent_r, _silent_w = await asyncio.open_connection("127.0.0.1", bridge.port)
            # a plain client that drips its request head
            drip_r, drip_w = await asyncio.open_connection("127.0.0.1", bridge.hebca_port)
            drip_w.write(b"GET /test HTTP/1.1\r\nHost: localhost")
            silent = await closed_within(silent_r, 3)
            dripped = await closed_within(drip_r, 3)
            elapsed = time.monotonic() - t0
            stats = [s.guard.stats for s in bridge.sites]
            return {"silent": silent, "dripped": dripped, "elapsed": elapsed, "stats": stats}
        finally:
            await bridge.stop()

    r = asyncio.run(go())
    assert r["silent"] and r["dripped"] and r["elapsed"] < 3.5
    assert sum(s.too_slow for s in r["stats"]) >= 2


def test_a_page_is_served_while_the_pending_slots_are_full(tmp_path: Path) -> None:
    async def go() -> dict[str, Any]:
        bridge = await start_bridge(
            small_config(header_timeout=30, tls_handshake_timeout=30),
            tokens=TokenService([]),
            prompter=ScriptedPrompter(),
            state_dir=tmp_path,
            port=0,
            keyring_backend=keyring.backends.fail.Keyring(),
        )
        held = []
        try:
            for _ in range(300):  # far beyond max_pending (16) and max_connections (64)
                held.append(await asyncio.open_connection("127.0.0.1", bridge.port))
            await asyncio.sleep(0.2)
            assert bridge.ca_path is not None
            took = await ping(bridge.port, bridge.ca_path)
            return {"took": took, "stats": bridge.sites[0].guard.stats}
        finally:
            for _r, w in held:
                w.close()
            await bridge.stop()

    r = asyncio.run(go())
    stats = r["stats"]
    assert r["took"] < 2.0
    assert stats.peak_pending <= 16 and stats.peak_open <= 64
    assert stats.evicted >= 300 - 16


def test_a_flood_of_slow_connections_does_not_starve_the_daemon(tmp_path: Path) -> None:
    """`certhelper serve` in its own process limited to 1,024 open files, 3,000 slow
    connections on its two ports (silent TLS, dripped heads), and a real client
    meanwhile. Bounded: the flood lasts a few seconds."""
    port, hebca = _free_port(), _free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f"use_catalog = false\n[bridge]\nport = {port}\n[hebca]\nport = {hebca}\n"
        '[logging]\nlevel = "INFO"\n',
        "utf-8",
    )
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "CERTHELPER_CONFIG": str(config),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "helper.cli.main", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_cap_open_files,  # a machine's common default: 1,024 files, hard
    )
    ca = tmp_path / "data" / "certhelper" / "tls" / "ca.pem"
    try:
        _wait_for(lambda: ca.exists() and _listening(port) and _listening(hebca))
        result = asyncio.run(asyncio.wait_for(_flood(port, hebca, ca, proc.pid), 90))
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    log = (tmp_path / "state" / "certhelper" / "log" / "certhelper.log").read_text("utf-8")
    print(
        f"flood: {result['held']} slow connections held by the client; "
        f"ping p50 {result['p50'] * 1000:.0f} ms, max {result['max'] * 1000:.0f} ms; "
        f"daemon fds peak {result['fds']} (limit {result['limit']})"
    )
    assert result["held"] >= 2500
    assert result["max"] < 3.0 and result["pings"] == 10
    assert result["fds"] < result["limit"]
    assert "Traceback" not in out and "Traceback" not in log
    assert "Too many open files" not in out + log


async def _flood(port: int, hebca: int, ca: Path, pid: int) -> dict[str, Any]:
    held: list[Any] = []
    fds = 0

    async def hold(target: int, drip: bool) -> None:
        with contextlib.suppress(OSError):
            _r, w = await asyncio.open_connection("127.0.0.1", target)
            if drip:
                w.write(b"GET /test HTTP/1.1\r\n")
            held.append(w)

    limit = _soft_limit(pid)
    for _batch in range(30):  # 3,000 connections in batches of 100, half on each port
        await asyncio.gather(
            *(hold(port if i % 2 else hebca, drip=bool(i % 3)) for i in range(100))
        )
        fds = max(fds, len(os.listdir(f"/proc/{pid}/fd")))
    times = []
    for _ in range(10):
        times.append(await ping(port, ca))
        fds = max(fds, len(os.listdir(f"/proc/{pid}/fd")))
    for w in held:
        w.close()
    times.sort()
    return {
        "held": len(held),
        "pings": len(times),
        "p50": times[len(times) // 2],
        "max": times[-1],
        "fds": fds,
        "limit": limit,
    }


def _cap_open_files() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def _soft_limit(pid: int) -> int:
    text = Path(f"/proc/{pid}/limits").read_text()
    m = re.search(r"Max open files\s+(\d+)", text)
    assert m
    return int(m.group(1))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def _wait_for(condition: Any, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "the daemon did not start"
        time.sleep(0.1)
