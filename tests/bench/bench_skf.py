"""SKF benchmark: SM2 signatures per second through the SKF driver (worker thread,
ctypes, host-side Z and e, DER encoding) against a plain C loop of SKF_ECCSignData
over the same soft library and key (tests/bench/bench_skf_raw.c), and the cost of
the host-side Z/e computation per signature.

Run: `make bench` (or `.venv/bin/python tests/bench/bench_skf.py`).
Target (issue 国密 SM2 I): driver/raw >= 0.8.
Rounds are interleaved (raw, driver, raw, driver …) so both see the same machine;
the best round of each is reported, with the median beside it.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PIN = "123456"
N_SIGN = 600
ROUNDS = 5
TARGET = 0.8


def build(tmp: Path) -> dict:
    out = tmp / "fx"
    subprocess.run(
        [sys.executable, str(ROOT / "softhsm-fixtures" / "build.py"), str(out)],
        check=True,
        capture_output=True,
    )
    return json.loads((out / "manifest.json").read_text("utf-8"))["skf"]


def compile_raw(tmp: Path) -> Path:
    exe = tmp / "bench_skf_raw"
    src = ROOT / "tests" / "bench" / "bench_skf_raw.c"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(src), "-ldl"], check=True)
    return exe


def raw_rate(exe: Path, library: str, cert: dict) -> float:
    done = subprocess.run(
        [str(exe), library, "-n", str(N_SIGN), "-d", cert["device_name"],
         "-a", cert["application"], "-c", cert["container"]],
        input=PIN + "\n", capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"([0-9.]+) signatures/s", done.stdout)
    if found is None:
        raise SystemExit(f"bench_skf_raw said: {done.stdout} {done.stderr}")
    return float(found.group(1))


def driver_rate(drv, serial: str, key_id: bytes) -> float:
    from drivers.types import SignAlgorithm

    t0 = time.perf_counter()
    for i in range(N_SIGN):
        drv.sign(serial, key_id, b"bench %d" % i, SignAlgorithm.SM2_SM3)
    return N_SIGN / (time.perf_counter() - t0)


def on_worker_rate(drv, serial: str, key_id: bytes) -> float:
    """The same calls made from the worker thread itself (no hand-off per call): what the
    binding, Z/e and DER cost without the thread hop."""
    return drv.worker.call(lambda: driver_rate(drv, serial, key_id), timeout=600)


def host_e_cost(point: tuple[int, int]) -> float:
    """Seconds per signature spent computing Z and e on the host."""
    from drivers import sm2

    t0 = time.perf_counter()
    for i in range(N_SIGN):
        sm2.e_value(b"bench %d" % i, point)
    return (time.perf_counter() - t0) / N_SIGN


def main() -> int:
    from drivers.skf.driver import SkfDriver, key_id
    from drivers.types import Pin

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        section = build(tmp)
        os.environ["SOFTSKF_DIR"] = section["dir"]
        library = str(ROOT / "softhsm-fixtures" / "softskf" / "libsoftskf.so")
        cert = next(c for c in section["certificates"] if c["name"] == "gm_company_sign")
        exe = compile_raw(tmp)
        drv = SkfDriver(library)
        serial = cert["device_serial"]
        kid = key_id(cert["container"], sign=True)
        drv.login(serial, Pin(PIN))
        public = next(p for p in drv.public_keys(serial) if p.key_id == kid)
        from asn1crypto import keys

        raw_point = bytes(keys.PublicKeyInfo.load(public.spki)["public_key"].native)
        from drivers import sm2

        point = sm2.public_point(raw_point)
        driver_rate(drv, serial, kid)  # warm-up: containers opened, key cached
        raws, drvs, inside, costs = [], [], [], []
        for _ in range(ROUNDS):
            raws.append(raw_rate(exe, library, cert))
            drvs.append(driver_rate(drv, serial, kid))
            inside.append(on_worker_rate(drv, serial, kid))
            costs.append(host_e_cost(point))
        drv.close()
    best_raw, best_drv, best_in = max(raws), max(drvs), max(inside)
    ratio = best_drv / best_raw
    cost = min(costs)
    for name, values in (
        ("C loop over SKF_ECCSignData", raws),
        ("SkfDriver.sign from the caller (hand-off to the worker per call)", drvs),
        ("SkfDriver.sign on the worker thread (no hand-off)", inside),
    ):
        print(f"SM2 sign, {name}: {max(values):,.0f}/s (median {statistics.median(values):,.0f})")
    print(f"driver/raw = {ratio:.2f} (target >= {TARGET}); without the hand-off "
          f"{best_in / best_raw:.2f}")  # fmt: skip
    hop = 1 / best_drv - 1 / best_in
    print(f"the worker hand-off costs {hop * 1e6:.0f} µs per call here")
    print(
        f"host Z+e per signature: {cost * 1e6:.1f} µs "
        f"= {cost * best_drv:.1%} of one driver signature"
    )
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
