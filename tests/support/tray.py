"""A desktop with a system tray (Xvfb + trayer) for the real-tray tests, and token
views built from real certificates for the tray's state model."""

from __future__ import annotations

import datetime as dt
import functools
import os
import random
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from drivers.types import CertObject, KeyObject, PinState, TokenInfo
from helper.services.tokens import TokenView, pair_objects
from helper.tray.tray import PRGNAME

NOW = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)


TOOLS = {
    "Xvfb": "xvfb",
    "xdotool": "xdotool",
    "xdpyinfo": "x11-utils",
    "xwininfo": "x11-utils",
    "import": "imagemagick",
    "trayer": "trayer",
    "dbus-run-session": "dbus",
}


SHOTS: list[Path] = []


def require_tools() -> None:
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        pytest.fail("tray tests need " + " ".join(missing) + " (and fonts-noto-cjk)")
    try:
        import gi

        gi.require_version("Gtk", "3.0")
    except (ImportError, ValueError) as exc:
        pytest.fail(
            f"tray tests need PyGObject with GTK 3 ({exc}): apt install libgirepository1.0-dev "
            "libcairo2-dev pkg-config gir1.2-gtk-3.0, then pip install 'PyGObject<3.51'"
        )


@dataclass
class TrayDesktop:
    display: str
    shots: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.display}

    def app_env(self, **extra: str) -> dict[str, str]:
        """For a program that shows the tray icon (run it under dbus-run-session)."""
        env = {k: v for k, v in self.env.items() if not k.startswith("DBUS_")}
        env.update({"PYSTRAY_BACKEND": "gtk", "NO_AT_BRIDGE": "1", **extra})
        return env

    def run(self, *argv: str, timeout: float = 10, check: bool = True) -> str:
        proc = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{argv} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def icon_windows(self, wm_class: str = PRGNAME) -> list[str]:
        """Visible windows of the tray program (the docked icon, open menus)."""
        out = self.run("xdotool", "search", "--onlyvisible", "--class", wm_class, check=False)
        return out.split()

    def geometry(self, wid: str) -> tuple[int, int, int, int]:
        out = self.run("xdotool", "getwindowgeometry", "--shell", wid)
        v = dict(line.split("=", 1) for line in out.split())
        return int(v["X"]), int(v["Y"]), int(v["WIDTH"]), int(v["HEIGHT"])

    def wait_icon(self, timeout: float = 20, wm_class: str = PRGNAME) -> tuple[int, int, int, int]:
        """The docked icon's geometry once it sits still in the tray host's panel."""
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            found = None
            for wid in self.icon_windows(wm_class):
                x, y, w, h = self.geometry(wid)
                if y < 30 and w <= 40 and h <= 40 and x + w <= 800:  # in trayer's panel
                    found = (x, y, w, h)
            if found is not None and found == last:
                return found
            last = found
            time.sleep(0.3)
        tree = self.run("xwininfo", "-root", "-tree", check=False)
        raise AssertionError(f"no tray icon docked within {timeout} s:\n{tree[-3000:]}")

    def wait_windows(self, count: int, timeout: float = 10) -> list[str]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            wins = self.icon_windows()
            if len(wins) == count:
                return wins
            time.sleep(0.1)
        raise AssertionError(f"expected {count} visible tray windows, have {self.icon_windows()}")

    def park_pointer(self) -> None:
        """Away from the tray: a pointer resting on a new icon shows its tooltip."""
        self.run("xdotool", "mousemove", "20", "400")

    def click(self, x: int, y: int, button: int = 1) -> None:
        self.run("xdotool", "mousemove", str(x), str(y), "click", str(button))

    def key(self, *keys: str) -> None:
        for k in keys:
            self.run("xdotool", "key", k)
            time.sleep(0.15)

    def screenshot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.run("import", "-window", "root", str(path), timeout=20)
        SHOTS.append(path)
        return path

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        out = subprocess.run(
            ["import", "-window", "root", "-crop", f"1x1+{x}+{y}", "-depth", "8", "rgb:-"],
            env=self.env,
            capture_output=True,
            timeout=20,
            check=True,
        ).stdout
        return out[0], out[1], out[2]

    def crop(self, src: Path, name: str, box: tuple[int, int, int, int]) -> Path:
        x, y, w, h = box
        path = self.shots / f"{name}.png"
        self.run("convert", str(src), "-crop", f"{w}x{h}+{x}+{y}", "+repage", str(path))
        SHOTS.append(path)
        return path


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    """Xvfb on a random high display number: ``-displayfd`` starts its search at
    :0, where other suites' servers come and go (and take their socket files
    with them)."""
    rng = random.Random()
    for _ in range(20):
        number = rng.randrange(300, 900)
        if Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists():
            continue
        display = f":{number}"
        proc = subprocess.Popen(
            ["Xvfb", display, "-screen", "0", "800x600x24", "-nolisten", "tcp", "-noreset"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        env = {**os.environ, "DISPLAY": display}
        for _ in range(100):
            if proc.poll() is not None:
                break  # lost the number to someone else: try another
            if subprocess.run(["xdpyinfo"], env=env, capture_output=True).returncode == 0:
                return proc, display
            time.sleep(0.1)
        stop_process(proc)
    pytest.fail("Xvfb did not start")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_trayer(desk: TrayDesktop, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        host = subprocess.Popen(
            [
                "trayer",
                "--edge",
                "top",
                "--align",
                "right",
                "--width",
                "10",
                "--height",
                "24",
                "--SetDockType",
                "true",
                "--transparent",
                "false",
                "--tint",
                "0xdddddd",
            ],
            env=desk.env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    end = time.monotonic() + 30
    while time.monotonic() < end and host.poll() is None:
        if desk.run("xdotool", "search", "--class", "trayer", check=False).split():
            time.sleep(0.5)  # let it claim the _NET_SYSTEM_TRAY selection
            return host
        time.sleep(0.1)
    stop_process(host)
    pytest.fail(f"trayer did not start ({host.returncode}): {log.read_text(errors='replace')}")


@functools.cache
def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def cert_der(cn: str, days_left: float, *, now: dt.datetime = NOW) -> bytes:
    """A self-signed certificate for ``cn`` that expires ``days_left`` days after ``now``."""
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=300))
        .not_valid_after(now + dt.timedelta(days=days_left))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def token(
    serial: str = "SER1", label: str = "测试Key", pin_state: PinState = PinState.OK
) -> TokenInfo:
    return TokenInfo(
        "/usr/lib/softhsm/libsofthsm2.so", 1, label, serial, "m", "model", 0, pin_state
    )


def view(
    info: TokenInfo | None = None,
    certs: list[tuple[str, float]] | None = None,
    *,
    without_key: list[tuple[str, float]] | None = None,
    unreadable: bool = False,
) -> TokenView:
    """A key with certificates (cn, days left) that have their private key,
    ``without_key`` ones that do not, and optionally an unreadable object."""
    info = info or token()
    objs, keys = [], []
    for i, (cn, days) in enumerate(certs or [], 1):
        kid = bytes([i])
        objs.append(CertObject(kid, cn, cert_der(cn, days)))
        keys.append(KeyObject(kid, cn, "EC", 256))
    for i, (cn, days) in enumerate(without_key or [], 100):
        objs.append(CertObject(bytes([i]), cn, cert_der(cn, days)))
    if unreadable:
        objs.append(CertObject(b"\xee", "bad", b"\x30\x03\x02"))
        keys.append(KeyObject(b"\xee", "bad", "EC", 256))
    return pair_objects(info, objs, keys)
