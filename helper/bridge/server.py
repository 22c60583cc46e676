"""Listening on loopback only: one site per loopback address (127.0.0.1 and ::1;
never 0.0.0.0), for any of the bridge's apps (security.md, requirement 1)."""

from __future__ import annotations

import asyncio
import socket
import ssl

from aiohttp import web

from helper.bridge.guard import ConnectionLimits, Guard, GuardedSites

LOOPBACK = ("127.0.0.1", "::1")


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def raise_fd_limit(wanted: int = 8192) -> int:
    """Raise this process's open-file limit towards ``wanted`` (never above the hard
    limit); the connection caps are sized below it, so a flood meets a cap, not
    EMFILE. Returns the soft limit now in force."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def loopback_hosts() -> list[str]:
    return [h for h in LOOPBACK if h != "::1" or ipv6_loopback_available()]


async def listen(
    runner: web.AppRunner,
    hosts: list[str],
    port: int,
    ssl_ctx: ssl.SSLContext | None,
    limits: ConnectionLimits | None = None,
) -> tuple[int, GuardedSites]:
    """Listen on ``port`` at each host (0: the first picks, the rest follow), every
    connection counted and timed by one :class:`Guard` for the port."""
    server = runner.server
    assert server is not None, "runner.setup() first"
    guard = Guard(server, limits or ConnectionLimits(), ssl_ctx)
    sites = GuardedSites(guard)
    loop = asyncio.get_running_loop()
    bound = port
    try:
        for host in hosts:
            srv = await loop.create_server(guard.protocol, host, bound, reuse_address=True)
            sites.servers.append(srv)
            if bound == 0:
                bound = srv.sockets[0].getsockname()[1]
    except BaseException:
        await sites.close()
        raise
    return bound, sites
