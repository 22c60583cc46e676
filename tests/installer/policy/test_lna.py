"""Measures what Chrome's Local Network Access (LNA) lets a page reach on loopback.

Debian's Chromium runs headless through Playwright. A page is served over plain http and
placed in the public address space with ``--ip-address-space-overrides``; it tries
``fetch("http://127.0.0.1:B/ping")`` and ``new WebSocket("ws://127.0.0.1:B/ws")`` and
records in JS whether each worked, while the loopback server records what arrived.

Two kinds of public page are measured, because Chromium treats them differently:

* ``http://127.0.0.1:A`` overridden to public: still a *secure context* (127.0.0.1 is
  potentially trustworthy), so it stands for an https hall;
* ``http://hall.test:A`` (``--host-resolver-rules`` maps the name to 127.0.0.1) overridden
  to public: *not* a secure context, like the Cangzhou hall at http://111.62.46.105:9010.

ROOT: the policy situations write a managed-policy file into the real
/etc/chromium/policies/managed/ (Chromium reads policy from nowhere else), under a unique
name, and remove it in a ``finally``. The test therefore fails, with a message, when not
run as root; it is never skipped. docs/lna.md records the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from playwright import sync_api

from installer.policy import ALLOW_KEYS, POLICY_DIRS, policy_document

CHROMIUM = "/usr/bin/chromium"
MANAGED = Path(str(POLICY_DIRS[0]))  # /etc/chromium/policies/managed
HALL_NAME = "hall.test"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

PAGE = """<!doctype html><meta charset="utf-8"><title>lna</title><script>
const B = %(port)d, TAG = "%(tag)s";
async function tryFetch() {
  try {
    const r = await fetch(`http://127.0.0.1:${B}/ping?s=${TAG}`);
    return r.ok && (await r.text()) === "pong";
  } catch (e) { return false; }
}
function tryWebSocket() {
  return new Promise((resolve) => {
    let ws;
    try { ws = new WebSocket(`ws://127.0.0.1:${B}/ws?s=${TAG}`); }
    catch (e) { resolve(false); return; }
    const timer = setTimeout(() => resolve(false), 8000);
    ws.onopen = () => ws.send("hi");
    ws.onmessage = (m) => { clearTimeout(timer); ws.close(); resolve(m.data === "echo hi"); };
    ws.onerror = () => { clearTimeout(timer); resolve(false); };
  });
}
(async () => {
  window.lna = {fetch: await tryFetch(), websocket: await tryWebSocket(),
                secure: window.isSecureContext};
})();
</script>"""

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Private-Network": "true",
    "Access-Control-Allow-Methods": "GET",
    "Access-Control-Allow-Headers": "*",
}


@dataclass
class Servers:
    page_port: int
    loopback_port: int
    seen: list[tuple[str, str]] = field(default_factory=list)  # (situation tag, path)
    tag: str = ""

    def arrived(self, tag: str) -> list[str]:
        return [path for t, path in self.seen if t == tag]


@dataclass
class Row:
    situation: str
    secure_context: bool
    fetch: bool
    websocket: bool
    server_saw: list[str]


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"missing {CHROMIUM}: run `make test`, which installs Debian's chromium")
    if os.geteuid() != 0:
        pytest.fail(
            "the LNA measurement must run as root: Chromium reads managed policy only from "
            f"{MANAGED}, where this test writes (and removes) a policy file"
        )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    socks = []
    for _ in range(2):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    st = Servers(socks[0].getsockname()[1], socks[1].getsockname()[1])

    async def page(request: web.Request) -> web.Response:
        body = PAGE % {"port": st.loopback_port, "tag": st.tag}
        return web.Response(text=body, content_type="text/html")

    async def ping(request: web.Request) -> web.Response:
        st.seen.append((request.query.get("s", ""), f"{request.method} /ping"))
        return web.Response(text="pong", headers=CORS)

    async def ws(request: web.Request) -> web.WebSocketResponse:
        st.seen.append((request.query.get("s", ""), "GET /ws"))
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            if msg.type is WSMsgType.TEXT:
                await sock.send_str(f"echo {msg.data}")
        return sock

    page_app = web.Application()
    page_app.router.add_get("/", page)
    loop_app = web.Application()
    loop_app.router.add_get("/ping", ping)
    loop_app.router.add_route("OPTIONS", "/ping", ping)
    loop_app.router.add_get("/ws", ws)
    runners: list[web.AppRunner] = []

    async def start() -> None:
        for app, s in ((page_app, socks[0]), (loop_app, socks[1])):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.SockSite(runner, s).start()
            runners.append(runner)

    async def stop() -> None:
        for runner in runners:
            await runner.cleanup()

    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield st
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def measure(
    st: Servers, situation: str, host: str, *, public: bool, policy: dict[str, Any] | None
) -> Row:
    st.tag = uuid.uuid4().hex
    args = list(ARGS)
    if host != "127.0.0.1":
        args.append(f"--host-resolver-rules=MAP {host} 127.0.0.1")
    if public:
        args.append(f"--ip-address-space-overrides=127.0.0.1:{st.page_port}=public")
    policy_file = MANAGED / f"certhelper-lna-test-{uuid.uuid4().hex}.json"
    created: list[Path] = []
    try:
        if policy is not None:
            for d in (MANAGED.parent.parent, MANAGED.parent, MANAGED):
                if not d.exists():
                    d.mkdir(mode=0o755)
                    created.append(d)
            policy_file.write_text(json.dumps(policy), "utf-8")
            policy_file.chmod(0o644)
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
            try:
                page = browser.new_page()
                page.goto(f"http://{host}:{st.page_port}/")
                page.wait_for_function("window.lna !== undefined", timeout=30_000)
                result = page.evaluate("window.lna")
            finally:
                browser.close()
    finally:
        policy_file.unlink(missing_ok=True)
        for d in reversed(created):
            # something else may have put a file there meanwhile: then leave it
            with contextlib.suppress(OSError):
                d.rmdir()
    return Row(
        situation, result["secure"], result["fetch"], result["websocket"], st.arrived(st.tag)
    )


def allow_lists(origin: str) -> dict[str, list[str]]:
    return {key: [origin] for key in ALLOW_KEYS}


def test_local_network_access_measurement(servers: Servers) -> None:
    version = subprocess.run(
        [CHROMIUM, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    a = servers.page_port
    loop_origin, hall_origin = f"http://127.0.0.1:{a}", f"http://{HALL_NAME}:{a}"
    rows = [
        measure(servers, "page on loopback, no override", "127.0.0.1", public=False, policy=None),
        measure(
            servers, "127.0.0.1 page as public, no policy", "127.0.0.1", public=True, policy=None
        ),
        measure(
            servers,
            "127.0.0.1 page as public, allow-lists",
            "127.0.0.1",
            public=True,
            policy=allow_lists(loop_origin),
        ),
        measure(
            servers, "http hostname page as public, no policy", HALL_NAME, public=True, policy=None
        ),
        measure(
            servers,
            "http hostname page as public, allow-lists only",
            HALL_NAME,
            public=True,
            policy=allow_lists(hall_origin),
        ),
        measure(
            servers,
            "http hostname page as public, certhelper.json",
            HALL_NAME,
            public=True,
            policy=policy_document([hall_origin]),
        ),
    ]
    print(f"\n{version}")
    print("| situation | secure context | fetch | WebSocket | loopback server saw |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.situation} | {r.secure_context} | {'ok' if r.fetch else 'blocked'} | "
            f"{'ok' if r.websocket else 'blocked'} | {', '.join(r.server_saw) or 'nothing'} |"
        )

    ok = ["GET /ping", "GET /ws"]
    got = [(r.situation, r.secure_context, r.fetch, r.websocket, r.server_saw) for r in rows]
    assert got == [
        ("page on loopback, no override", True, True, True, ok),
        ("127.0.0.1 page as public, no policy", True, False, False, []),
        ("127.0.0.1 page as public, allow-lists", True, True, True, ok),
        ("http hostname page as public, no policy", False, False, False, []),
        # the two allow-lists alone do not help a page that is not a secure context
        ("http hostname page as public, allow-lists only", False, False, False, []),
        # certhelper.json adds OverrideSecurityRestrictionsOnInsecureOrigin: now it works
        ("http hostname page as public, certhelper.json", True, True, True, ok),
    ]
    assert not MANAGED.exists() or not list(MANAGED.glob("certhelper-lna-test-*.json"))
