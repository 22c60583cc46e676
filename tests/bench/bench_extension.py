"""The extension transport's cost (issue 15), beside the WebSocket in the same run.

One in-process bridge (SoftHSM demo token, RSA-2048) with its control listener;
the same native-API ``sign.data`` (raw) requests after a login, sent

* over WSS to the bridge (the baseline), and
* through the real ``certhelper native-host`` subprocess, framed on stdio the way
  the browser frames them (32-bit length + JSON), relayed over the control socket.

Also the cost of opening a connection: a WSS handshake vs starting a native host
(which the browser does for every page socket) until ``{"opened"}``. The browser's
own hop (content script → service worker → host) is not in these figures.
Figures, not pass/fail: run `make bench`.
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

from tests.bench.bench_bridge import ORIGIN, pct, start_bench_bridge  # noqa: E402

#: what the installed launcher runs, and the CLI's way to the same host
LAUNCHER = ("helper.bridge.extension.host",)
CLI = ("helper.cli.main", "native-host")
N_SEQ = 300
N_OPEN = 10
DATA = base64.b64encode(b"bench payload").decode()


class HostProcess:
    """The browser's side of one native-messaging port (asyncio subprocess)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, runtime: Path, entry: tuple[str, ...] = LAUNCHER) -> HostProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            *entry,
            "chrome-extension://bench/",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(ROOT)},
        )
        return cls(proc)

    async def send(self, message: dict) -> None:
        from helper.bridge.extension.framing import encode

        assert self.proc.stdin is not None
        self.proc.stdin.write(encode(message))
        await self.proc.stdin.drain()

    async def recv(self) -> dict:
        assert self.proc.stdout is not None
        head = await self.proc.stdout.readexactly(4)
        return json.loads(await self.proc.stdout.readexactly(int.from_bytes(head, "little")))

    async def reply(self, req_id: object) -> dict:
        while True:
            msg = json.loads((await self.recv())["frame"])
            if msg.get("id") == req_id:
                return msg

    async def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await self.proc.wait()


def request(i: object, method: str, params: dict) -> str:
    return json.dumps({"id": i, "method": method, "params": params})


def challenge() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


async def over_wss(url: str, ctx: ssl.SSLContext) -> tuple[list[float], list[float]]:
    lat, opens = [], []
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, headers={"Origin": ORIGIN}, ssl=ctx) as ws:
            await ws.send_str(request("a", "auth.authenticate", {"challenge": challenge()}))
            while (m := json.loads(await ws.receive_str())).get("id") != "a":
                pass
            assert "result" in m, m
            for i in range(20 + N_SEQ):
                t = time.perf_counter()
                await ws.send_str(request(i, "sign.data", {"data": DATA, "format": "raw"}))
                while (m := json.loads(await ws.receive_str())).get("id") != i:
                    pass
                assert "result" in m, m
                if i >= 20:
                    lat.append(time.perf_counter() - t)
        for _ in range(N_OPEN):
            t = time.perf_counter()
            async with http.ws_connect(url, headers={"Origin": ORIGIN}, ssl=ctx):
                opens.append(time.perf_counter() - t)
    return lat, opens


async def through_host(runtime: Path) -> tuple[list[float], list[float], list[float]]:
    lat, opens, cli_opens = [], [], []
    host = await HostProcess.start(runtime)
    await host.send({"open": {"origin": ORIGIN, "protocol": "native"}})
    assert await host.recv() == {"opened": ORIGIN}
    await host.send({"frame": request("a", "auth.authenticate", {"challenge": challenge()})})
    assert "result" in await host.reply("a")
    for i in range(20 + N_SEQ):
        t = time.perf_counter()
        await host.send({"frame": request(i, "sign.data", {"data": DATA, "format": "raw"})})
        m = await host.reply(i)
        assert "result" in m, m
        if i >= 20:
            lat.append(time.perf_counter() - t)
    await host.close()
    for entry, times in ((LAUNCHER, opens), (CLI, cli_opens)):
        for _ in range(N_OPEN):
            t = time.perf_counter()
            host = await HostProcess.start(runtime, entry)
            await host.send({"open": {"origin": ORIGIN, "protocol": "native"}})
            assert await host.recv() == {"opened": ORIGIN}
            times.append(time.perf_counter() - t)
            await host.close()
    return lat, opens, cli_opens


async def run(manifest: dict, tmp: Path) -> dict[str, list[float]]:
    from helper.services import control

    bridge, tokens = await start_bench_bridge(manifest, tmp / "state")
    runtime = tmp / "rt"
    runtime.mkdir(mode=0o700)
    claim = control.claim(runtime / "certhelper")
    assert isinstance(claim, control.Claim)

    def command(message: dict) -> control.Reply:
        assert bridge.extension is not None
        if message.get("cmd") == "extension":
            return control.Stream(lambda r, w: bridge.extension.serve(message, r, w))  # type: ignore[union-attr]
        return {"ok": False, "error": "unknown_command"}

    await claim.serve(command)
    ctx = ssl.create_default_context(cafile=str(bridge.ca_path))
    url = f"https://127.0.0.1:{bridge.port}/v1/ws"
    try:
        wss, wss_open = await over_wss(url, ctx)
        ext, ext_open, cli_open = await through_host(runtime)
        wss2, _ = await over_wss(url, ctx)  # before and after: same-run baseline
    finally:
        claim.close()
        await bridge.stop()
        tokens.close()
    return {
        "wss": wss + wss2,
        "ext": ext,
        "wss_open": wss_open,
        "ext_open": ext_open,
        "cli_open": cli_open,
    }


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        build = str(ROOT / "softhsm-fixtures" / "build.py")
        subprocess.run(
            [sys.executable, build, str(tmp / "fx"), "--profile", "demo"],
            check=True,
            capture_output=True,
        )
        manifest = json.loads((tmp / "fx" / "manifest.json").read_text("utf-8"))
        os.environ["SOFTHSM2_CONF"] = manifest["softhsm2_conf"]
        r = asyncio.run(run(manifest, tmp))
    wss_p50, ext_p50 = statistics.median(r["wss"]), statistics.median(r["ext"])
    print("certhelper extension-transport benchmark (SoftHSM, RSA-2048, sign.data raw)")
    for name, key in (("WSS (baseline)", "wss"), ("native host", "ext")):
        print(
            f"  {name:15}: p50 {statistics.median(r[key]) * 1e3:6.2f} ms  "
            f"p99 {pct(r[key], 99) * 1e3:6.2f} ms  {1 / statistics.mean(r[key]):6.0f} sig/s"
        )
    print(
        f"  relay overhead : p50 {(ext_p50 - wss_p50) * 1e3:+6.2f} ms  "
        f"(ratio {ext_p50 / wss_p50:.2f}x the WSS round trip)"
    )
    wss_open, ext_open = statistics.median(r["wss_open"]), statistics.median(r["ext_open"])
    print(
        f"  open a socket  : WSS handshake {wss_open * 1e3:6.1f} ms, native host start "
        f"{ext_open * 1e3:6.1f} ms (ratio {ext_open / wss_open:.0f}x; once per page socket)"
    )
    cli_open = statistics.median(r["cli_open"])
    print(
        f"  host via CLI   : {cli_open * 1e3:6.1f} ms (the launcher's direct module entry "
        f"saves {(cli_open - ext_open) * 1e3:.0f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
