"""USB devices as the system sees them, read from sysfs (Linux only; read-only).

``/sys/bus/usb/devices/<name>/`` holds ``idVendor`` and ``idProduct`` (4 hex
digits each) and, when the device reports them, ``manufacturer`` and
``product``. Interfaces (``1-1:1.0``) and hubs without ids are skipped. The
sysfs root is a parameter so tests can build a fake tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_HEX4 = re.compile(r"^[0-9a-fA-F]{4}$")


@dataclass(frozen=True)
class UsbDevice:
    #: "vvvv:pppp", lowercase hex
    vid_pid: str
    manufacturer: str = ""
    product: str = ""
    #: the sysfs device name (e.g. "1-2")
    name: str = ""

    @property
    def display_name(self) -> str:
        names = " ".join(n for n in (self.manufacturer, self.product) if n)
        return f"{names} ({self.vid_pid})" if names else self.vid_pid


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8", errors="replace").strip()
    except OSError:
        return ""


def list_usb_devices(sysfs_root: Path = Path("/sys")) -> list[UsbDevice]:
    """Every USB device with a vendor and product id, sorted by sysfs name.

    A missing ``bus/usb/devices`` directory (no sysfs, not Linux) gives ``[]``.
    """
    base = Path(sysfs_root) / "bus" / "usb" / "devices"
    try:
        entries = sorted(base.iterdir(), key=lambda p: p.name)
    except OSError:
        return []
    out = []
    seen: set[str] = set()
    for entry in entries:
        if ":" in entry.name:  # an interface, not a device
            continue
        vid, pid = _read(entry / "idVendor"), _read(entry / "idProduct")
        if not (_HEX4.match(vid) and _HEX4.match(pid)):
            continue
        key = entry.name
        if key in seen:
            continue
        seen.add(key)
        out.append(
            UsbDevice(
                vid_pid=f"{vid.lower()}:{pid.lower()}",
                manufacturer=_read(entry / "manufacturer"),
                product=_read(entry / "product"),
                name=entry.name,
            )
        )
    return out
