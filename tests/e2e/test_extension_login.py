"""End to end through the browser extension (issue 15): Debian's Chromium with the
unpacked extension (persistent context, headless), the demo hall served as a
*public* address (``--ip-address-space-overrides``), no LNA policy, the local CA
not trusted, nothing listening on 17212: the legacy page's
``new WebSocket("ws://localhost:17212/test")`` is replaced by the extension's
shim, which relays through ``certhelper native-host`` (a real subprocess started
by Chromium from the host manifest in the test HOME) to a real bridge's
extension transport behind a real control listener. Prompter double."""

from __future__ import annotations

import functools
import json
import socket
import stat
import sys
from pathlib import Path
from typing import Any

import keyring.backends.fail
from aiohttp import web
from playwright import sync_api

from helper.config import Config
from helper.daemon.compose import start_bridge
from helper.demo.hall import create_hall_app, split_ca_certificates
from helper.services import control
from helper.services.tls import ensure_identity, ssl_context
from helper.services.tokens import ModuleStatus
from tests.support.browser import (
    ARGS,
    CHROMIUM,
    COMPANY,
    LoopThread,
    PrompterDouble,
    company_cert_id,
)
from tests.support.doubles import SharedTokens
from tests.support.tokens import USER_PIN, Fixtures

ROOT = Path(__file__).resolve().parents[2]
EXT = ROOT / "extension"
EXT_ID = (EXT / "EXTENSION_ID").read_text().strip()


def host_manifest(home: Path, runtime: Path, profile: Path) -> None:
    """Chromium looks in ``<user-data-dir>/NativeMessagingHosts`` (which is
    ``~/.config/chromium`` unless ``--user-data-dir`` moves it, as here)."""
    launcher = home / "certhelper-native-host"
    launcher.write_text(
        "#!/bin/sh\n"
        f"export XDG_RUNTIME_DIR='{runtime}' PYTHONPATH='{ROOT}'\n"
        f"exec '{sys.executable}' -c 'from helper.cli.main import main; "
        f"raise SystemExit(main())' native-host \"$@\" 2>>'{home}/host.log'\n"
    )
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    d = profile / "NativeMessagingHosts"
    d.mkdir(parents=True)
    (d / "org.certhelper.host.json").write_text(
        json.dumps(
            {
                "name": "org.certhelper.host",
                "description": "certhelper",
                "path": str(launcher),
                "type": "stdio",
                "allowed_origins": [f"chrome-extension://{EXT_ID}/"],
            }
        )
    )


def test_legacy_page_logs_in_through_the_extension_on_a_public_page(
    tmp_path: Path, driver: Any, fixtures: Fixtures
) -> None:
    loop = LoopThread()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    origin = f"http://hall.test:{port}"
    identity = ensure_identity(
        tmp_path / "state" / "tls", keyring_backend=keyring.backends.fail.Keyring()
    )
    prompter = PrompterDouble(company_cert_id(fixtures))
    config = Config(origins=[origin], hebca_origins={origin: {"page_pin": True}})
    tokens = SharedTokens([ModuleStatus(driver.module_path, "config", driver=driver)])
    bridge = loop.run(
        start_bridge(
            config,
            tokens=tokens,
            prompter=prompter,
            state_dir=tmp_path / "state",
            ssl_ctx=ssl_context(identity),
            port=0,
            hebca_port=None,  # nothing on 17212: the only way in is the extension
        )
    )
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    claim = control.claim(runtime / "certhelper")
    assert isinstance(claim, control.Claim)

    def command(message: dict[str, Any]) -> control.Reply:
        assert bridge.extension is not None
        if message.get("cmd") == "extension":
            return control.Stream(functools.partial(bridge.extension.serve, message))
        return {"ok": False, "error": "unknown_command"}

    loop.run(claim.serve(command))
    ca = fixtures.manifest["ca"]
    anchors, intermediates = split_ca_certificates(
        [Path(ca["root"]).read_bytes(), Path(ca["issuing"]).read_bytes()]
    )
    hall = create_hall_app(
        anchors,
        intermediates=intermediates,
        origin=origin,
        helper_base="https://127.0.0.1:17213",
        hebca_port=17212,
    )

    async def serve() -> web.AppRunner:
        runner = web.AppRunner(hall, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        return runner

    hall_runner = loop.run(serve())
    home = tmp_path / "home"
    home.mkdir()
    host_manifest(home, runtime, tmp_path / "profile")
    pw = sync_api.sync_playwright().start()
    ctx = pw.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=CHROMIUM,
        headless=True,
        locale="zh-CN",
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(home / ".config")},
        args=[
            *ARGS,
            f"--disable-extensions-except={EXT}",
            f"--load-extension={EXT}",
            "--host-resolver-rules=MAP hall.test 127.0.0.1,MAP other.test 127.0.0.1",
            f"--ip-address-space-overrides=127.0.0.1:{port}=public",
        ],
    )
    try:
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{origin}/ish/legacy")
        assert page.get_attribute("html", "data-certhelper-extension") == "1"
        try:
            page.wait_for_selector("#cert-select:not([disabled])", timeout=15_000)
        except Exception:
            log = home / "host.log"
            sw = ctx.service_workers[0] if ctx.service_workers else None
            probe = (
                sw.evaluate(
                    "() => new Promise(r => { const p = chrome.runtime.connectNative("
                    "'org.certhelper.host'); p.onDisconnect.addListener(() => r('disc:' + "
                    "String(chrome.runtime.lastError && chrome.runtime.lastError.message))); "
                    "p.onMessage.addListener(m => r(JSON.stringify(m))); "
                    "p.postMessage({open: {origin: 'http://x.test', protocol: 'hebca'}}); })"
                )
                if sw
                else "no service worker"
            )
            errors.append(str(probe))
            raise AssertionError(
                (page.content()[-1500:], log.read_text() if log.exists() else "no host log", errors)
            ) from None
        options = page.eval_on_selector_all(
            "#cert-select option", "os => os.map(o => ({value: o.value, cn: o.dataset.cn || ''}))"
        )
        mine = [o for o in options if o["cn"] == COMPANY]
        assert len(mine) == 1, options
        page.select_option("#cert-select", value=mine[0]["value"])
        page.fill("#cert-pin", USER_PIN)
        page.click("#legacy-login")
        page.wait_for_url("**/ish/home", timeout=30_000)
        assert page.text_content("#company") == COMPANY
        audit = [
            json.loads(line)
            for line in (tmp_path / "state" / "audit.jsonl").read_text("utf-8").splitlines()
        ]
        assert (origin, "hebca:Login", "ok") in [
            (e["origin"], e["operation"], e["outcome"]) for e in audit
        ]
        assert errors == []
        # (e) a page forging an origin in its own messages: the browser's is used
        page.evaluate(
            """() => new Promise((resolve) => {
              const tag = "certhelper-ext";
              addEventListener("message", (e) => {
                const m = e.data;
                if (m && m[tag] === "to-page" && m.id === 9999 && m.op === "opened")
                  postMessage({[tag]: "to-ext", id: 9999, op: "send", data: "1|GetCertCount",
                               origin: "https://evil.example"}, "*");
                if (m && m[tag] === "to-page" && m.id === 9999 && m.op === "frame") resolve(m.data);
              });
              postMessage({[tag]: "to-ext", id: 9999, op: "open", protocol: "hebca",
                           origin: "https://evil.example"}, "*");
            })"""
        )
        audit = [
            json.loads(line)
            for line in (tmp_path / "state" / "audit.jsonl").read_text("utf-8").splitlines()
        ]
        counts = [e["origin"] for e in audit if e["operation"] == "hebca:GetCertCount"]
        assert counts and set(counts) == {origin}
        assert not any("evil" in e["origin"] for e in audit)
        # (d) the same server under a name not in the manifest: no shim, real WebSocket
        other = ctx.new_page()
        other.goto(f"http://other.test:{port}/ish/legacy")
        assert other.get_attribute("html", "data-certhelper-extension") is None
        assert other.evaluate("WebSocket.toString().includes('[native code]')")
        assert page.evaluate("!WebSocket.toString().includes('[native code]')")
    finally:
        ctx.close()
        pw.stop()
        claim.close()
        loop.run(hall_runner.cleanup())
        loop.run(bridge.stop())
        loop.stop()
        driver.logout(fixtures.cert("company_sign")["token_serial"])
