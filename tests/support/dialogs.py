"""Requests used by the UI tests."""

from __future__ import annotations

import os
from pathlib import Path

from drivers.types import PinState
from helper.services.prompts import CertChoice, ConsentRequest, PinRequest

HALL = "http://111.62.46.105:9010"
HTTPS_HALL = "https://hall.example.gov.cn"


def pin_request(
    state: PinState = PinState.OK,
    *,
    origin: str = HALL,
    lo: int | None = 6,
    hi: int | None = 16,
    operation: str = "auth.authenticate",
) -> PinRequest:
    return PinRequest(
        origin=origin,
        insecure_origin=origin.startswith("http:"),
        operation=operation,
        token_label="HEBCA USB Key",
        token_serial="8f2a11c04e5d",
        cert_subject="张三 (个人证书) 130902199001011234",
        pin_state=state,
        pin_min_len=lo,
        pin_max_len=hi,
    )


def consent_request(**kw: object) -> ConsentRequest:
    fields: dict[str, object] = {
        "origin": HTTPS_HALL,
        "insecure_origin": False,
        "operation": "auth.authenticate",
        "cert_subject": "张三 (个人证书)",
        "cert_issuer": "河北CA测试二级证书 HEBCA Test Issuing CA",
    }
    fields.update(kw)
    return ConsentRequest(**fields)  # type: ignore[arg-type]


def choices() -> list[CertChoice]:
    rows = [
        ("cert-a", "张三 (个人证书)", "HEBCA Test Issuing CA", "2027-03-01", 460, "HEBCA USB Key"),
        (
            "cert-b",
            "沧州市某某有限公司",
            "HEBCA Test Issuing CA",
            "2026-12-20",
            24,
            "HEBCA USB Key",
        ),
        ("cert-c", "张三 (旧证书)", "HEBCA Old CA", "2025-01-01", -330, "Backup Key"),
    ]
    return [
        CertChoice(id, subject, issuer, f"{i + 1:02x}a1b2c3", f"{day}T00:00:00Z", left, key)
        for i, (id, subject, issuer, day, left, key) in enumerate(rows)
    ]


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def dialog_children() -> list[int]:
    out = []
    for pid in children_of(os.getpid()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"helper.ui" in cmdline:
            out.append(pid)
    return out


def close_like_a_window_manager(display: str, wid: int) -> None:
    """Send WM_DELETE_WINDOW to ``wid``, as a window manager's close button does
    (Xvfb has no window manager, and xdotool of Debian 12 cannot send it)."""
    import ctypes
    import ctypes.util

    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [
        ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p
    ]  # fmt: skip
    x11.XFlush.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]

    class ClientMessage(ctypes.Structure):
        _fields_ = [
            ("type", ctypes.c_int),
            ("serial", ctypes.c_ulong),
            ("send_event", ctypes.c_int),
            ("display", ctypes.c_void_p),
            ("window", ctypes.c_ulong),
            ("message_type", ctypes.c_ulong),
            ("format", ctypes.c_int),
            ("data", ctypes.c_long * 5),
        ]

    class XEvent(ctypes.Union):
        _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

    dpy = x11.XOpenDisplay(display.encode())
    assert dpy, f"cannot open {display}"
    try:
        event = XEvent()
        event.xclient.type = 33  # ClientMessage
        event.xclient.window = wid
        event.xclient.message_type = x11.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
        event.xclient.format = 32
        event.xclient.data[0] = x11.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        event.xclient.data[1] = 0  # CurrentTime
        assert x11.XSendEvent(dpy, wid, 0, 0, ctypes.byref(event))
        x11.XFlush(dpy)
    finally:
        x11.XCloseDisplay(dpy)
