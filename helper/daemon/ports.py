"""Which program holds a TCP port, for a 「端口已被占用」 message that names it (Linux:
``/proc/net/tcp*`` for the listening socket's inode, ``/proc/<pid>/fd`` for its owner;
elsewhere, or without permission, the port alone)."""

from __future__ import annotations

import os
from pathlib import Path

from helper.services.control import DaemonUnavailable

_LISTEN = "0A"


def _listening_inodes(port: int) -> set[str]:
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text("ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN:
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port:
                    found.add(fields[9])
    return found


def who_listens(port: int) -> str | None:
    """``name (pid N)`` of the process listening on ``port``, when it can be found."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    name = Path(f"/proc/{pid}/comm").read_text("utf-8").strip()
                    return f"{name} (pid {pid})"
            except OSError:
                continue
    return None


def port_in_use(exc: OSError, host: str, port: int) -> DaemonUnavailable:
    """The error for a port another program holds, naming the program when possible."""
    who = who_listens(port)
    by = f"「{who}」" if who else "其他程序"
    by_en = who or "another program"
    return DaemonUnavailable(
        detail=(
            f"端口 {host}:{port} 已被{by}占用，请退出该程序后再试 "
            f"(port {host}:{port} is in use by {by_en}: quit it and try again) [{exc.strerror}]"
        )
    )


def busy_port(ports: list[int]) -> int | None:
    """The first of ``ports`` something listens on (which one a bind failed for)."""
    return next((p for p in ports if _listening_inodes(p)), None)
