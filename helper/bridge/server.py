"""Listening on loopback only: one site per loopback address (127.0.0.1 and ::1;
never 0.0.0.0), for any of the bridge's apps (security.md, requirement 1)."""

from __future__ import annotations

import socket
import ssl

from aiohttp import web

LOOPBACK = ("127.0.0.1", "::1")


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def loopback_hosts() -> list[str]:
    return [h for h in LOOPBACK if h != "::1" or ipv6_loopback_available()]


async def listen(
    runner: web.AppRunner, hosts: list[str], port: int, ssl_ctx: ssl.SSLContext | None
) -> int:
    """Start one site per host on ``port`` (0: the first site picks, the rest follow)."""
    bound = port
    for host in hosts:
        site = web.TCPSite(runner, host, bound, ssl_context=ssl_ctx, reuse_address=True)
        await site.start()
        if bound == 0:
            server = site._server  # aiohttp exposes no public getter
            assert server is not None and hasattr(server, "sockets")
            bound = server.sockets[0].getsockname()[1]
    return bound
