"""The browser's trust in the helper's local TLS CA, seen from the running daemon.

- :func:`auto_trust`: the first ``certhelper run`` (and ``make demo``) adds the CA to the
  user's NSS databases with the installer's own NSS step, once, and says so; a CA made
  anew replaces the old one where it was trusted.
- :func:`trust_watch_job`: Chromium caches a failed certificate verification per
  certificate, so a page that failed before the CA was trusted keeps failing until the
  server shows a *new* certificate (measured in docs/reachability.md). The job watches
  the NSS databases and, when one changes, issues a new leaf under the same CA and swaps
  it into the listening context: open pages then connect without a reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

AUTO_TRUST_MARK = "browser-trust-added"  # in the TLS dir: the first run's trust was done


@dataclass(frozen=True)
class TrustWatch:
    """What to watch: the TLS identity's directory and the NSS databases (a function,
    re-read on every poll: a Firefox profile may appear later)."""

    tls_dir: Path
    databases: Callable[[], list[Path]]
    interval: float = 2.0


def _stamps(dbs: list[Path]) -> dict[str, tuple[int, int]]:
    out = {}
    for db in dbs:
        try:
            st = (db / "cert9.db").stat()
        except OSError:
            continue
        out[str(db)] = (st.st_mtime_ns, st.st_size)
    return out


def trust_watch_job(
    watch: TrustWatch, ctx: ssl.SSLContext, keyring_backend: Any = None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def job(_app: web.Application) -> AsyncIterator[None]:
        from helper.services.tls import ensure_identity, reload_ssl_context

        async def loop() -> None:
            seen = await asyncio.to_thread(lambda: _stamps(watch.databases()))
            while True:
                await asyncio.sleep(watch.interval)
                now = await asyncio.to_thread(lambda: _stamps(watch.databases()))
                if now == seen:
                    continue
                seen = now
                try:
                    identity = await asyncio.to_thread(
                        ensure_identity,
                        watch.tls_dir,
                        keyring_backend=keyring_backend,
                        new_leaf=True,
                    )
                except Exception:
                    log.exception("new TLS leaf after a trust change failed")
                    continue
                reload_ssl_context(ctx, identity)
                log.info("browser trust store changed: new TLS leaf, open pages re-verify")

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return job


def default_watch(tls_dir: Path) -> TrustWatch:
    from installer import nss, paths

    def dbs() -> list[Path]:
        found = nss.databases()
        return found if paths.nssdb_dir() in found else [paths.nssdb_dir(), *found]

    return TrustWatch(tls_dir, dbs)


def auto_trust(ca_pem: Path, *, created: bool, add: bool = True) -> list[str]:
    """Re-trust a new CA where the old one was trusted; with ``add`` (the first
    ``certhelper run``, the demo), also make the user's browsers trust the CA once (a
    mark in the TLS dir remembers it, so a later uninstall is not undone). Returns what
    to tell the person (may be empty)."""
    from helper.daemon.installation import install_context
    from installer import manifest as manifest_mod
    from installer import nss

    mark = ca_pem.parent / AUTO_TRUST_MARK
    try:
        where = install_context().manifest_file
        manifest = manifest_mod.load(where)
        if not created and (mark.exists() or not add or manifest.nss):
            if add and manifest.nss:
                mark.touch()
            return []
        if created and not add and not manifest.nss:
            return []
        steps = nss.retrust(ca_pem, manifest) if manifest.nss else nss.install(ca_pem, manifest)
        manifest_mod.save(manifest, where)
        mark.touch()
    except Exception:
        log.exception("trusting the local CA failed; run `certhelper install`")
        return []
    done = [s for s in steps if s.status == "done"]
    for s in steps:
        log.info("browser trust: %s", s)
    if not done:
        return []
    return [
        "已让本机浏览器信任证书助手的本机证书，网页无需额外设置即可连接证书助手 "
        "(the browsers of this user now trust the helper's local certificate)"
    ]
