"""How far a native-API request travels before it reaches the key (issue 11).

One ``sign.data`` (raw) request over a real WSS connection, after a login, with
a profiler on every thread that records calls into the project's own code
(``helper/`` and ``drivers/``):

* **chain**: the project frames on the event loop's stack from the message
  handler down to the call that hands work to a driver's worker thread;
* **calls**: every project function call the request caused, on all threads;
* **thread hops**: how many times the work changed threads before the key signed.

Figures, not pass/fail: run `make bench` and compare with the previous round.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import ssl
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_bridge import ORIGIN, InstantPrompter  # noqa: E402

PROJECT = (str(ROOT / "helper"), str(ROOT / "drivers"))


class Recorder:
    """Profiles every thread; keeps project calls and the loop-thread chain at submit."""

    def __init__(self) -> None:
        self.on = False
        self.calls: Counter[str] = Counter()
        self.threads: set[str] = set()
        self.handoffs: list[list[str]] = []  # project chain at each hand-off to a thread

    @staticmethod
    def _name(frame) -> str:  # type: ignore[no-untyped-def]
        code = frame.f_code
        rel = Path(code.co_filename).resolve().relative_to(ROOT)
        return f"{rel}:{code.co_qualname}"

    def profile(self, frame, event, arg):  # type: ignore[no-untyped-def]
        if not self.on or event != "call":
            return
        code = frame.f_code
        if code.co_name == "submit" and code.co_filename.endswith("concurrent/futures/thread.py"):
            stack = []
            f = frame
            while f is not None:
                if f.f_code.co_filename.startswith(PROJECT):
                    stack.append(self._name(f))
                f = f.f_back
            self.handoffs.append(list(reversed(stack)))
            return
        if not code.co_filename.startswith(PROJECT):
            return
        self.calls[self._name(frame)] += 1
        self.threads.add(threading.current_thread().name.split("_")[0])


def build(tmp: Path) -> dict:
    """The demo profile's tokens, built afresh (SOFTHSM2_CONF set for this process)."""
    out = tmp / "fx"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "softhsm-fixtures" / "build.py"),
            str(out),
            "--profile",
            "demo",
        ],
        check=True,
        capture_output=True,
    )
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    os.environ["SOFTHSM2_CONF"] = manifest["softhsm2_conf"]
    return manifest


async def measure(manifest: dict, tmp: str) -> dict[str, Recorder]:
    recs = {"sign.data (logged in)": Recorder(), "auth.authenticate (fresh login)": Recorder()}
    from helper.config import Config

    config = Config(modules=[manifest["module"]], use_catalog=False, origins=[ORIGIN])
    import keyring.backends.fail

    try:
        from helper.daemon.compose import start_bridge  # after issue 11
    except ImportError:
        from helper.daemon.compose import start_bridge  # type: ignore[no-redef]
    from helper.services.tokens import TokenService

    tokens = TokenService.from_config(config)
    if True:
        bridge = await start_bridge(
            config,
            tokens=tokens,
            prompter=InstantPrompter(),
            keyring_backend=keyring.backends.fail.Keyring(),
            state_dir=Path(tmp) / "state",
            port=0,
        )
        ctx = ssl.create_default_context(cafile=str(bridge.ca_path))
        url = f"https://127.0.0.1:{bridge.port}/v1/ws"
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(url, headers={"Origin": ORIGIN}, ssl=ctx) as ws,
            ):

                async def call(i: int, method: str, params: dict) -> dict:
                    await ws.send_str(json.dumps({"id": i, "method": method, "params": params}))
                    while (m := json.loads(await ws.receive_str())).get("id") != i:
                        pass
                    assert "result" in m, m
                    return m

                chal = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
                await call(1, "auth.authenticate", {"challenge": chal})
                params = {"data": base64.b64encode(b"hops").decode(), "format": "raw"}
                await call(2, "sign.data", params)  # warm: certificate cache filled

                async def profiled(rec: Recorder, i: int, method: str, p: dict) -> None:
                    # every thread profiled: new ones by threading.setprofile, the
                    # drivers' workers from inside, the loop's executor made anew
                    threading.setprofile(rec.profile)
                    sys.setprofile(rec.profile)
                    for d in tokens.drivers:
                        d.worker.submit(sys.setprofile, rec.profile).result()
                    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(4))
                    rec.on = True
                    await call(i, method, p)
                    rec.on = False
                    sys.setprofile(None)
                    threading.setprofile(None)  # type: ignore[arg-type]
                    for d in tokens.drivers:
                        d.worker.submit(sys.setprofile, None).result()

                sign_rec, auth_rec = recs.values()
                await profiled(sign_rec, 3, "sign.data", params)
                await call(4, "auth.logout", {})
                chal = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
                await profiled(auth_rec, 5, "auth.authenticate", {"challenge": chal})
        finally:
            await bridge.stop()
            tokens.close()
    return recs


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        recs = asyncio.run(measure(build(Path(tmp)), tmp))
    print("certhelper native-API path: handler -> key, per request")
    for title, rec in recs.items():
        report(title, rec)


def report(title: str, rec: Recorder) -> None:
    print(f"{title}")
    print(f"  hand-offs to another thread        : {len(rec.handoffs)}")
    longest = max(rec.handoffs, key=len, default=[])
    print(f"  longest handler -> hand-off chain  : {len(longest)} project frames")
    for chain in rec.handoffs:
        print(f"    {len(chain):2d}: " + " > ".join(n.split(":")[-1] for n in chain))
    print(f"  project calls (all threads)        : {sum(rec.calls.values())}")
    print(f"  threads that ran project code      : {sorted(rec.threads)}")
    if os.environ.get("BENCH_HOPS_VERBOSE"):
        for name, n in rec.calls.most_common():
            print(f"      {n:4d} {name}")


if __name__ == "__main__":
    main()
