"""Soak: `certhelper serve` in its own process over the session's SoftHSM tokens, 20
clients at once, each sending a run of cheap read-only requests that open no dialog
— half on the native API (WSS ``/v1/ws``: ``certificates.list``, ``auth.logout``, an
unknown method), half on the legacy HEBCA endpoint (``GetSignCertCount``,
``GetCertList``, ``Digest`` of data unique to each request).

Proves: no reply is lost, duplicated or mismatched (native replies matched by their
unique id, with several requests in flight per connection; HEBCA replies in request
order, each ``Digest`` checked against the SHA-256 of its own data, each list against
the first one), the daemon's RSS (``/proc/PID/status`` VmRSS of the server process,
measured alone) stays flat after warm-up, and its output and log hold no traceback.
Prints requests/s, p50/p99 latency and the RSS samples.

The default run is the issue's full 20 clients × 1,000 requests (about 10 s here);
``CERTHELPER_SOAK_REQUESTS`` changes the per-client count.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from tests.support.tokens import ROOT, Fixtures

ORIGIN = "http://127.0.0.1:9010"  # configured explicitly below (no demo mode)
CLIENTS = 20
REQUESTS = int(os.environ.get("CERTHELPER_SOAK_REQUESTS", "1000"))
WARM_UP = 50  # requests per client before the first RSS sample
WINDOW = 4  # native requests in flight per connection (the API allows 8)
RSS_GROWTH_MB = 30.0
TIMEOUT = 20.0


@dataclass
class Daemon:
    proc: subprocess.Popen[str]
    port: int
    hebca_port: int
    ca: Path
    log: Path
    output: Path

    def rss_kb(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1])


@contextlib.contextmanager
def serve(fx: Fixtures, module: str, home: Path) -> Iterator[Daemon]:
    """`certhelper serve` with the session's tokens, a configured hall origin and
    both endpoints on free ports; HOME and the XDG dirs inside ``home``."""
    port, hebca_port = _free_port(), _free_port()
    config = home / "config.toml"
    config.write_text(
        f'use_catalog = false\nmodules = ["{module}"]\n'
        f'[bridge]\nport = {port}\norigins = ["{ORIGIN}"]\n'
        f"[hebca]\nport = {hebca_port}\n",
        "utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "CERTHELPER_"))}
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CONFIG_HOME=str(home / "cfg"),
        CERTHELPER_CONFIG=str(config),
        SOFTHSM2_CONF=str(fx.conf),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    output = home / "serve.out"  # a file, not a pipe: a full pipe would stall the daemon
    with output.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "helper.cli.main", "serve"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    daemon = Daemon(
        proc,
        port,
        hebca_port,
        home / "data" / "certhelper" / "tls" / "ca.pem",
        home / "state" / "certhelper" / "log" / "certhelper.log",
        output,
    )
    try:
        end = time.monotonic() + 60
        while not (daemon.ca.exists() and _listening(port) and _listening(hebca_port)):
            assert proc.poll() is None, output.read_text()
            assert time.monotonic() < end, "certhelper serve did not start"
            time.sleep(0.1)
        yield daemon
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# --- the clients --------------------------------------------------------------------


async def receive(ws: aiohttp.ClientWebSocketResponse) -> str:
    """The next text message within TIMEOUT. (Not ``receive_str(timeout=…)``: the
    server's heartbeat pings restart that timeout, so a lost reply would wait forever.)"""
    return await asyncio.wait_for(ws.receive_str(), TIMEOUT)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    answered: int = 0


async def native_client(
    http: aiohttp.ClientSession, d: Daemon, ctx: ssl.SSLContext, n: int, who: int, tally: Tally
) -> None:
    """``n`` requests, ``WINDOW`` in flight; every reply matched to its own id once."""
    url = f"https://127.0.0.1:{d.port}/v1/ws"
    async with http.ws_connect(url, headers={"Origin": ORIGIN}, ssl=ctx, max_msg_size=0) as ws:
        sent: dict[str, tuple[str, float]] = {}
        count: int | None = None
        next_i = 0
        while next_i < n or sent:
            while next_i < n and len(sent) < WINDOW:
                rid = f"c{who}-{next_i}"
                method = ("certificates.list", "auth.logout", "certificates.list", "no.such")[
                    next_i % 4
                ]
                sent[rid] = (method, time.perf_counter())
                await ws.send_str(json.dumps({"id": rid, "method": method}))
                next_i += 1
            try:
                data = json.loads(await receive(ws))
            except TimeoutError:
                raise AssertionError(f"replies lost: {sorted(sent)}") from None
            if "event" in data:
                continue
            rid = data.get("id")
            assert rid in sent, f"a reply to no outstanding request: {data}"
            method, t0 = sent.pop(rid)
            tally.latencies.append(time.perf_counter() - t0)
            tally.answered += 1
            if method == "certificates.list":
                listed = len(data.get("result", {}).get("certificates", []))
                count = listed if count is None else count
                assert listed == count and listed > 0, (rid, method, data)
            elif method == "auth.logout":
                assert data.get("result") == {"logged_out": True}, (rid, method, data)
            else:
                assert data.get("error", {}).get("code") == "unknown_method", (rid, method, data)


async def hebca_client(
    http: aiohttp.ClientSession, d: Daemon, n: int, who: int, tally: Tally
) -> None:
    """``n`` frames one after the other; each reply is the one for its frame."""
    url = f"http://127.0.0.1:{d.hebca_port}/test"
    async with http.ws_connect(url, headers={"Origin": ORIGIN}, max_msg_size=0) as ws:
        await ws.send_str("0|0")
        assert (await receive(ws)) == "0|Welcome"
        certlist: str | None = None
        for i in range(n):
            data = f"soak {who}/{i}".encode()
            function, param = [
                ("GetSignCertCount", None),
                ("GetCertList", None),
                (
                    "Digest",
                    {
                        "certSN": "",
                        "b64data": base64.b64encode(data).decode(),
                        "digestalg": "sha256",
                    },
                ),
            ][i % 3]
            frame = f"1|{function}" if param is None else f"1|{function}|{json.dumps(param)}"
            t0 = time.perf_counter()
            await ws.send_str(frame)
            try:
                reply = await receive(ws)
            except TimeoutError:
                raise AssertionError(f"reply lost: client {who}, frame {i} {function}") from None
            tally.latencies.append(time.perf_counter() - t0)
            tally.answered += 1
            tag, name, body = reply.split("|", 2)
            assert (tag, name) == ("1", function), reply[:200]
            result = json.loads(body)
            assert result["ret"] == 0, result
            if function == "Digest":
                expected = base64.b64encode(hashlib.sha256(data).digest()).decode()
                assert result["digest"] == expected, (who, i, result)
            elif function == "GetCertList":
                certlist = certlist or result["certlist"]
                assert result["certlist"] == certlist and certlist
            else:
                assert result["count"] > 0


async def round_of(d: Daemon, n: int, offset: int) -> tuple[Tally, float]:
    """All clients at once, ``n`` requests each; (tally, wall seconds)."""
    ctx = ssl.create_default_context(cafile=str(d.ca))
    tally = Tally()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        t0 = time.perf_counter()
        await asyncio.gather(
            *(
                native_client(http, d, ctx, n, offset + who, tally)
                if who % 2 == 0
                else hebca_client(http, d, n, offset + who, tally)
                for who in range(CLIENTS)
            )
        )
        return tally, time.perf_counter() - t0


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass
class SoakResult:
    requests: int
    answered: int
    seconds: float
    p50: float
    p99: float
    rss_kb: list[int]

    def line(self) -> str:
        rss = " → ".join(f"{kb / 1024:.1f}" for kb in self.rss_kb)
        return (
            f"soak: {CLIENTS} clients × {self.requests // CLIENTS} requests: "
            f"{self.answered}/{self.requests} answered in {self.seconds:.1f} s "
            f"({self.answered / self.seconds:.0f} req/s), latency p50 {self.p50 * 1e3:.1f} ms "
            f"p99 {self.p99 * 1e3:.1f} ms; daemon RSS MB (after warm-up → end): {rss}"
        )


def soak(fx: Fixtures, module: str, home: Path, requests: int = REQUESTS) -> SoakResult:
    with serve(fx, module, home) as d:
        asyncio.run(asyncio.wait_for(round_of(d, WARM_UP, 1000), 120))  # warm-up
        rss = [d.rss_kb()]
        tallies: list[Tally] = []
        seconds = 0.0
        rounds = 4  # the run in rounds, RSS sampled after each (flat, not just end ≈ start)
        for r in range(rounds):
            n = requests // rounds + (requests % rounds if r == rounds - 1 else 0)
            tally, wall = asyncio.run(asyncio.wait_for(round_of(d, n, 100 * r), 300))
            tallies.append(tally)
            seconds += wall
            rss.append(d.rss_kb())
        assert d.proc.poll() is None, "the daemon died"
    out = d.output.read_text("utf-8")
    log = d.log.read_text("utf-8") if d.log.exists() else ""
    assert "Traceback" not in out + log, (out + log)[-3000:]
    latencies = [x for t in tallies for x in t.latencies]
    return SoakResult(
        requests=CLIENTS * requests,
        answered=sum(t.answered for t in tallies),
        seconds=seconds,
        p50=pct(latencies, 50),
        p99=pct(latencies, 99),
        rss_kb=rss,
    )


def test_soak_no_reply_lost_and_rss_flat(
    fixtures: Fixtures, module_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = soak(fixtures, module_path, tmp_path)
    with capsys.disabled():
        print("\n" + result.line())
    assert result.answered == result.requests  # none lost (mismatches fail in the clients)
    growth_mb = (max(result.rss_kb) - result.rss_kb[0]) / 1024
    assert growth_mb < RSS_GROWTH_MB, result.line()


# --- helpers ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False
