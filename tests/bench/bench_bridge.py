"""Bridge benchmark (issue 3), one run, figures beside their baselines:

* ``sign.data`` (raw, RSA-2048 on SoftHSM) round trips over WSS with the login
  session open and a prompter that answers at once — p50/p99 latency and
  throughput with 1 and with 20 concurrent clients — beside a raw in-process
  python-pkcs11 loop in a separate process (same key, same mechanism);
* cold start of ``certhelper serve`` to the first successful ``/v1/ping``,
  beside the bare interpreter's start-up;
* idle RSS of that daemon after 30 s.

Targets: p50 overhead over raw <= 2 ms; >= 300 sig/s with 20 clients; cold
start <= 1.5 s; idle RSS <= 80 MB. Run: `make bench`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PIN = "123456"
ORIGIN = "http://127.0.0.1:9010"
N_SEQ = 300
N_PER_CLIENT = 40
CLIENTS = 20
IDLE_SECONDS = 30

RAW_LOOP = r"""
import hashlib, os, sys, time, json, pkcs11
from pkcs11 import Mechanism, ObjectClass
DI = bytes.fromhex("3031300d060960864801650304020105000420")
lib = pkcs11.lib(sys.argv[1])
tok = lib.get_token(token_serial=sys.argv[2].encode())
lat = []
with tok.open(rw=True, user_pin=sys.stdin.readline().strip()) as s:
    key = s.get_key(object_class=ObjectClass.PRIVATE_KEY, id=bytes.fromhex(sys.argv[3]))
    for i in range(int(sys.argv[4])):
        t = time.perf_counter()
        key.sign(DI + hashlib.sha256(b"bench %d" % i).digest(), mechanism=Mechanism.RSA_PKCS)
        lat.append(time.perf_counter() - t)
print(json.dumps(lat))
"""


class InstantPrompter:
    """The test prompter: answers every dialog at once (the person is not measured)."""

    async def ask_pin(self, request):  # type: ignore[no-untyped-def]
        from drivers.types import Pin

        return Pin(PIN)

    async def ask_consent(self, request):  # type: ignore[no-untyped-def]
        from helper.services.prompts import ConsentChoice

        return ConsentChoice.ONCE

    async def pick_certificate(self, origin, insecure, choices):  # type: ignore[no-untyped-def]
        return next(c.id for c in choices if c.subject_cn == "沧州市测试科技有限公司")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def raw_baseline(manifest: dict, cert: dict, n: int) -> list[float]:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            RAW_LOOP,
            manifest["module"],
            cert["token_serial"],
            cert["key_id"],
            str(n),
        ],
        input=PIN + "\n",
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "SOFTHSM2_CONF": manifest["softhsm2_conf"]},
    )
    return json.loads(proc.stdout)


async def sign_round_trips(url: str, ctx: ssl.SSLContext, n: int, http) -> list[float]:  # type: ignore[no-untyped-def]
    lat = []
    async with http.ws_connect(url, headers={"Origin": ORIGIN}, ssl=ctx) as ws:
        data = base64.b64encode(b"bench payload").decode()
        for i in range(n):
            t = time.perf_counter()
            await ws.send_str(
                json.dumps(
                    {"id": i, "method": "sign.data", "params": {"data": data, "format": "raw"}}
                )
            )
            while True:
                msg = json.loads(await ws.receive_str())
                if msg.get("id") == i:
                    break
            lat.append(time.perf_counter() - t)
            assert "result" in msg, msg
    return lat


async def start_bench_bridge(manifest: dict, state: Path):  # type: ignore[no-untyped-def]
    """The bridge the benchmarks measure: the fixture token, ORIGIN configured, the
    instant prompter; returns (bridge, tokens) — stop the one, close the other."""
    import keyring.backends.fail

    from helper.config import Config
    from helper.daemon.compose import start_bridge
    from helper.services.tokens import TokenService

    # the instant prompter answers ~1000 consents a minute: lift the per-origin dialog cap
    config = Config(
        modules=[manifest["module"]],
        use_catalog=False,
        origins=[ORIGIN],
        dialogs_per_minute=1_000_000,
    )
    tokens = TokenService.from_config(config)
    bridge = await start_bridge(
        config,
        tokens=tokens,
        prompter=InstantPrompter(),
        keyring_backend=keyring.backends.fail.Keyring(),
        state_dir=state,
        port=0,
    )
    return bridge, tokens


async def in_process(manifest: dict, cert: dict, state: Path) -> dict:
    bridge, tokens = await start_bench_bridge(manifest, state)
    ctx = ssl.create_default_context(cafile=str(bridge.ca_path))
    url = f"https://127.0.0.1:{bridge.port}/v1/ws"
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(url, headers={"Origin": ORIGIN}, ssl=ctx) as ws,
        ):
            chal = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
            auth = {"id": "a", "method": "auth.authenticate", "params": {"challenge": chal}}
            await ws.send_str(json.dumps(auth))
            while (m := json.loads(await ws.receive_str())).get("id") != "a":
                pass  # certificate.expiring events come first
            assert "result" in m, m
            await sign_round_trips(url, ctx, 20, http)  # warm-up
            single = await sign_round_trips(url, ctx, N_SEQ, http)
            t0 = time.perf_counter()
            many = await asyncio.gather(
                *(sign_round_trips(url, ctx, N_PER_CLIENT, http) for _ in range(CLIENTS))
            )
            wall = time.perf_counter() - t0
    finally:
        await bridge.stop()
        tokens.close()
    flat = [x for lat in many for x in lat]
    return {"single": single, "many": flat, "many_rate": len(flat) / wall}


def cold_start(manifest: dict, tmp: Path) -> tuple[float, float, int]:
    port = 17000 + secrets.randbelow(2000)
    config = tmp / "serve.toml"
    config.write_text(
        f'use_catalog = false\nmodules = ["{manifest["module"]}"]\n[bridge]\nport = {port}\n'
    )
    env = {
        **os.environ,
        "CERTHELPER_CONFIG": str(config),
        "SOFTHSM2_CONF": manifest["softhsm2_conf"],
        "XDG_DATA_HOME": str(tmp / "data"),
        "XDG_STATE_HOME": str(tmp / "state"),
    }
    # first start makes the TLS identity; the figure is the second (a normal) start
    times = []
    rss = 0
    for attempt in range(2):
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "helper.cli.main", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ca = tmp / "data" / "certhelper" / "tls" / "ca.pem"
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("certhelper serve exited")
                try:
                    ctx = ssl.create_default_context(cafile=str(ca))
                    import urllib.request

                    with urllib.request.urlopen(
                        f"https://127.0.0.1:{port}/v1/ping", context=ctx, timeout=1
                    ) as r:
                        if r.status == 200:
                            break
                except (OSError, ssl.SSLError):
                    time.sleep(0.01)
            times.append(time.perf_counter() - t0)
            if attempt == 1:
                time.sleep(IDLE_SECONDS)
                status = Path(f"/proc/{proc.pid}/status").read_text()
                rss = int(
                    next(ln for ln in status.splitlines() if ln.startswith("VmRSS")).split()[1]
                )
        finally:
            proc.terminate()
            proc.wait(10)
    base = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        base.append(time.perf_counter() - t0)
    return times[1], statistics.median(base), rss


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "softhsm-fixtures" / "build.py"),
                str(tmp / "fx"),
                "--profile",
                "demo",
            ],
            check=True,
            capture_output=True,
        )
        manifest = json.loads((tmp / "fx" / "manifest.json").read_text("utf-8"))
        os.environ["SOFTHSM2_CONF"] = manifest["softhsm2_conf"]
        cert = next(c for c in manifest["certificates"] if c["name"] == "company_sign")
        raw = raw_baseline(manifest, cert, N_SEQ)
        result = asyncio.run(in_process(manifest, cert, tmp / "state"))
        raw2 = raw_baseline(manifest, cert, N_SEQ)  # before and after: same-run baseline
        cold, bare, rss_kb = cold_start(manifest, tmp)

    raw_all = raw + raw2
    raw_p50, single_p50 = statistics.median(raw_all), statistics.median(result["single"])
    raw_rate = 1 / statistics.mean(raw_all)
    print("certhelper bridge benchmark (SoftHSM, RSA-2048, sign.data raw over WSS)")
    print(
        f"  raw python-pkcs11 sign  : p50 {raw_p50 * 1e3:6.2f} ms  p99 "
        f"{pct(raw_all, 99) * 1e3:6.2f} ms  {raw_rate:6.0f} sig/s"
    )
    print(
        f"  1 client  sign.data     : p50 {single_p50 * 1e3:6.2f} ms  p99 "
        f"{pct(result['single'], 99) * 1e3:6.2f} ms  "
        f"{1 / statistics.mean(result['single']):6.0f} sig/s"
    )
    over = (single_p50 - raw_p50) * 1e3
    print(
        f"  p50 overhead over raw   : {over:6.2f} ms   target <= 2 ms  "
        f"{'OK' if over <= 2 else 'MISSED'}   (ratio {single_p50 / raw_p50:.2f}x)"
    )
    many = result["many"]
    print(
        f"  {CLIENTS} clients sign.data    : p50 {statistics.median(many) * 1e3:6.2f} ms  p99 "
        f"{pct(many, 99) * 1e3:6.2f} ms  {result['many_rate']:6.0f} sig/s   target >= 300  "
        f"{'OK' if result['many_rate'] >= 300 else 'MISSED'}   "
        f"(ratio to raw {result['many_rate'] / raw_rate:.2f})"
    )
    print(
        f"  cold start serve→ping   : {cold:6.3f} s    target <= 1.5 s  "
        f"{'OK' if cold <= 1.5 else 'MISSED'}   (bare python {bare:.3f} s, "
        f"ratio {cold / bare:.1f}x)"
    )
    print(
        f"  idle RSS after {IDLE_SECONDS} s    : {rss_kb / 1024:6.1f} MB   target <= 80 MB  "
        f"{'OK' if rss_kb / 1024 <= 80 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
