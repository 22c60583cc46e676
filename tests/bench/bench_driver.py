"""Driver benchmark: signatures/s through the worker thread vs a raw in-process
python-pkcs11 loop (same key, same mechanism, same hashing), and the wall time
of a cold `certhelper list --json` against the bare interpreter's start-up.

Run: `make bench` (or `.venv/bin/python tests/bench/bench_driver.py`).
Targets (issue 2): driver/raw >= 0.9; cold list <= 0.6 s.
Figures are measured in one run, rounds interleaved, best round reported.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PIN = "123456"
N_SIGN = 400
ROUNDS = 5
N_COLD = 7
DIGEST_INFO_SHA256 = bytes.fromhex("3031300d060960864801650304020105000420")


def build_tokens(tmp: Path) -> dict:
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
    return json.loads((out / "manifest.json").read_text("utf-8"))


def raw_rate(module: str, serial: str, key_id: bytes) -> float:
    import pkcs11
    from pkcs11 import Mechanism, ObjectClass

    token = pkcs11.lib(module).get_token(token_serial=serial.encode())
    with token.open(rw=True, user_pin=PIN) as session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id)
        t0 = time.perf_counter()
        for i in range(N_SIGN):
            data = b"bench %d" % i
            key.sign(
                DIGEST_INFO_SHA256 + hashlib.sha256(data).digest(), mechanism=Mechanism.RSA_PKCS
            )
        return N_SIGN / (time.perf_counter() - t0)


def driver_rate(driver, serial: str, key_id: bytes) -> float:
    from drivers.types import Pin, SignAlgorithm

    driver.login(serial, Pin(PIN))
    try:
        t0 = time.perf_counter()
        for i in range(N_SIGN):
            driver.sign(serial, key_id, b"bench %d" % i, SignAlgorithm.RSA_PKCS1_SHA256)
        return N_SIGN / (time.perf_counter() - t0)
    finally:
        driver.logout(serial)


def cold_times(cmd: list[str], env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(N_COLD):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t0)
    return times


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        manifest = build_tokens(tmp)
        os.environ["SOFTHSM2_CONF"] = manifest["softhsm2_conf"]
        module = manifest["module"]
        cert = next(c for c in manifest["certificates"] if c["name"] == "company_sign")
        serial, key_id = cert["token_serial"], bytes.fromhex(cert["key_id"])

        from drivers.registry import get_driver

        driver = get_driver(module)
        raw, drv = [], []
        for _ in range(ROUNDS):  # interleaved so machine noise hits both alike
            raw.append(raw_rate(module, serial, key_id))
            drv.append(driver_rate(driver, serial, key_id))
        driver.close()
        best_raw, best_drv = max(raw), max(drv)

        config = tmp / "config.toml"
        config.write_text(f'modules = ["{module}"]\n')  # plus the catalog, as a user has it
        env = {**os.environ, "CERTHELPER_CONFIG": str(config), "XDG_STATE_HOME": str(tmp)}
        baseline = cold_times([sys.executable, "-c", "pass"], env)
        cold = cold_times([sys.executable, "-m", "helper.cli.main", "list", "--json"], env)

    med_base, med_cold = statistics.median(baseline), statistics.median(cold)
    print("certhelper driver benchmark (SoftHSM, RSA-2048, PKCS#1 v1.5 SHA-256)")
    print(
        f"  raw python-pkcs11 loop : {best_raw:8.1f} sig/s  (rounds: "
        + ", ".join(f"{r:.0f}" for r in raw)
        + ")"
    )
    print(
        f"  driver worker thread   : {best_drv:8.1f} sig/s  (rounds: "
        + ", ".join(f"{r:.0f}" for r in drv)
        + ")"
    )
    ratio = best_drv / best_raw
    print(
        f"  ratio driver/raw       : {ratio:8.3f}   target >= 0.90  "
        f"{'OK' if ratio >= 0.9 else 'MISSED'}"
    )
    med_ratio = statistics.median(d / r for d, r in zip(drv, raw, strict=True))
    print(f"  ratio, median of rounds: {med_ratio:8.3f}")
    print(f"  per-call overhead      : {(1 / best_drv - 1 / best_raw) * 1e6:8.1f} us")
    print(
        f"  cold `certhelper list --json` median of {N_COLD}: {med_cold:.3f} s  "
        f"target <= 0.6 s  {'OK' if med_cold <= 0.6 else 'MISSED'}"
    )
    print(
        f"  bare `python -c pass` median of {N_COLD}:        {med_base:.3f} s  "
        f"ratio list/bare {med_cold / med_base:.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
