"""USB keys plugged in (sysfs) matched against the driver catalog's usb_ids."""

from __future__ import annotations

from helper.config import Config
from helper.doctor.checks.base import DoctorEnv, Finding
from helper.services.usb import list_usb_devices


def usb_findings(config: Config, env: DoctorEnv) -> list[Finding]:
    if not env.is_linux:
        return []
    from drivers.catalog import entry_for_usb_id

    entries = env.entries()
    out = []
    for dev in list_usb_devices(env.sysfs_root):
        matches = entry_for_usb_id(entries, dev.vid_pid)
        if not matches:
            continue  # not a key we know (a mouse, a hub, ...)
        present = [(e, p) for e in matches for p in e.paths if env.file_exists(p)]
        if present:
            e, p = present[0]
            out.append(
                Finding(
                    "ok",
                    "usb_key_driver_ok",
                    f"已插入 {dev.display_name}，驱动已安装 (driver {e.name}: {p})",
                )
            )
            continue
        e = matches[0]
        vendor = f"{e.vendor_zh} " if e.vendor_zh else ""
        out.append(
            Finding(
                "error",
                "usb_key_no_driver",
                f"已插入 {dev.display_name}，但未安装其驱动「{vendor}{e.name}」"
                f"(a {e.name} key is plugged in but its PKCS#11 module is not installed)",
                f"{e.install_hint_zh} ({e.install_hint_en})",
            )
        )
    return out
