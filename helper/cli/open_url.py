"""``certhelper open-url URL``: what the browser runs for ``P11://`` and ``certhelper://``.

No daemon running: start ``certhelper run`` detached (the legacy client navigates to
``P11://`` exactly when it cannot reach its local service). Daemon running: ask it to
show a window — 我的证书, or the one a ``certhelper://<window>`` link names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit

from drivers.errors import BadInput
from installer import paths
from installer.desktop import certhelper_command

WINDOWS = ("mycerts", "changepin", "doctor", "support", "about")


def window_for(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in paths.SCHEMES:
        raise BadInput(detail=f"not a P11:// or certhelper:// link: {url!r}")
    if parts.scheme.lower() == "certhelper":
        name = (parts.netloc or parts.path.strip("/")).lower()
        if name in WINDOWS:
            return name
    return "mycerts"


def spawn_daemon() -> None:
    kwargs: dict[str, object] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True
    subprocess.Popen(
        [*certhelper_command(), "run"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        cwd=os.path.expanduser("~"),
        **kwargs,  # type: ignore[call-overload]
    )


def open_url(url: str) -> str:
    """Start or wake the daemon; returns what to tell the person."""
    from helper.services import control

    window = window_for(url)
    claim = control.claim()
    if isinstance(claim, control.Running):
        reply = control.request({"cmd": "show", "window": window}, claim.dir)
        if not reply.get("ok"):
            raise control.DaemonUnavailable(detail=str(reply.get("error")))
        return f"证书助手已在运行，已打开窗口 (already running: opened {window})"
    claim.close()  # not ours to keep: `certhelper run` claims it for itself
    spawn_daemon()
    return "正在启动证书助手 (starting certhelper)"
