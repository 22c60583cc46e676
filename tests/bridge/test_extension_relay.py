"""The daemon's end of the extension transport (helper/bridge/extension/relay.py)
over a real stream pair: the reported origin meets the same policy as the
WebSocket transports — configured halls pass, an unknown https origin gets the
consent dialog (once / always / deny, persisted like the WebSocket's), plain http
and garbage are refused without a dialog — and oversized frames are refused."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

from helper.bridge.extension.relay import ExtensionTransport
from helper.bridge.native.api import NativeApi, NativeSocket
from helper.bridge.origins import OriginPolicy
from helper.bridge.ws import Hub
from helper.services.control import STREAM_LINE
from helper.services.prompts import ConsentChoice
from tests.support.bridge import HALL, Bridge, running_bridge
from tests.support.doubles import ScriptedPrompter

SITE = "https://hall.example.cn"


class Peer:
    """The native host's side of one ``extension`` stream."""

    def __init__(self, transport: ExtensionTransport, origin: str) -> None:
        self.transport = transport
        self.origin = origin

    async def __aenter__(self) -> Peer:
        a, b = socket.socketpair()
        sr, sw = await asyncio.open_connection(sock=a, limit=STREAM_LINE)  # the daemon's
        self.reader, self.writer = await asyncio.open_connection(sock=b)
        message = {"cmd": "extension", "origin": self.origin, "protocol": "native"}
        self.task = asyncio.create_task(self.transport.serve(message, sr, sw))
        self._server_writer = sw
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.writer.close()
        await asyncio.wait_for(self.task, 5)
        self._server_writer.close()

    async def recv(self) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), 5)
        return json.loads(line) if line else {}

    async def call(self, frame: str) -> dict[str, Any]:
        """The reply (an error line, or the frame's answer); server events skipped."""
        self.writer.write(json.dumps({"frame": frame}).encode() + b"\n")
        await self.writer.drain()
        while True:
            got = await self.recv()
            if "frame" not in got or "event" not in json.loads(got["frame"]):
                return got


def transport(b: Bridge, hub: Hub | None = None) -> ExtensionTransport:
    policy = OriginPolicy([HALL], b.consent)
    handlers = {"native": lambda: NativeSocket(NativeApi(b.gate), None)}
    return ExtensionTransport(b.gate, policy, b.consent, handlers, {"native": hub or Hub()})


def test_unknown_https_origin_gets_the_consent_dialog(driver, fixtures, state: Path) -> None:
    async def go() -> None:
        prompter = ScriptedPrompter(
            consents=[ConsentChoice.ONCE, ConsentChoice.ALWAYS, ConsentChoice.DENY]
        )
        async with running_bridge(driver, fixtures, state, prompter) as b:
            t = transport(b)
            async with Peer(t, SITE) as p:  # once
                assert await p.recv() == {"opened": SITE}
            assert b.consent.get(SITE) is None
            async with Peer(t, SITE) as p:  # asked again: always
                assert await p.recv() == {"opened": SITE}
            async with Peer(t, SITE) as p:  # no dialog any more
                assert await p.recv() == {"opened": SITE}
            calls = [(k, r.operation, r.origin) for k, r in prompter.calls]
            assert calls == [("consent", "connect", SITE)] * 2
            assert b.consent.revoke(SITE)
            async with Peer(t, SITE) as p:  # asked, denied, persisted
                assert (await p.recv())["error"]["code"] == "consent_denied"
            async with Peer(t, SITE) as p:  # the persisted deny: refused without asking
                assert (await p.recv())["error"]["code"] == "origin_denied"
            assert len(prompter.calls) == 3
            async with Peer(t, HALL) as p:  # a configured hall: no dialog
                assert await p.recv() == {"opened": HALL}
            assert len(prompter.calls) == 3

    asyncio.run(go())


def test_plain_http_and_garbage_origins_are_refused_without_a_dialog(
    driver, fixtures, state: Path
) -> None:
    async def go() -> None:
        prompter = ScriptedPrompter()
        async with running_bridge(driver, fixtures, state, prompter) as b:
            t = transport(b)
            for origin in ["http://evil.example", "null", "", "https://a.b/path", "file://"]:
                async with Peer(t, origin) as p:
                    assert (await p.recv())["error"]["code"] == "origin_denied", origin
            assert prompter.calls == []

    asyncio.run(go())


def test_frames_over_64_kib_are_refused_and_the_stream_goes_on(
    driver, fixtures, state: Path
) -> None:
    async def go() -> None:
        async with running_bridge(driver, fixtures, state) as b:
            hub = Hub()
            async with Peer(transport(b, hub), HALL) as p:
                assert await p.recv() == {"opened": HALL}
                assert len(hub.connections) == 1
                big = json.dumps({"id": 1, "method": "x", "params": {"p": "a" * 64 * 1024}})
                assert (await p.call(big))["error"]["code"] == "frame_too_large"
                ok = json.loads(
                    (await p.call('{"id": 2, "method": "certificates.list", "params": {}}'))[
                        "frame"
                    ]
                )
                assert ok["id"] == 2 and "certificates" in ok["result"]
            assert hub.connections == set()

    asyncio.run(go())
