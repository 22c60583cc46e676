"""End to end through the browser extension (issue 15), on a hall that Chromium
treats as a *public* address, with no LNA policy and the local CA not trusted
(tests/support/extension.py has the set-up). Prompter double, except in the test
that types the PIN into the real Tk dialog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.test_browser_login_tk import TkPinPrompter
from tests.support.browser import COMPANY, PrompterDouble, company_cert_id
from tests.support.extension import ExtensionRig, extension_rig
from tests.support.tokens import USER_PIN, Fixtures

#: a WebSocket's fate within a few seconds: "open", "error" or "timeout"
SOCKET_FATE = """(url) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  const t = setTimeout(() => resolve("timeout"), 5000);
  ws.onopen = () => { clearTimeout(t); ws.close(); resolve("open"); };
  ws.onerror = () => { clearTimeout(t); resolve("error"); };
})"""


def _native_login(rig: ExtensionRig, page: Any) -> None:
    page.goto(f"{rig.origin}/ish/")
    assert page.get_attribute("html", "data-certhelper-extension") == "1"
    page.wait_for_function("() => window.CertHelper !== undefined", timeout=10_000)
    page.click("#ca-login")
    page.wait_for_selector("#ca-hebca", state="visible")
    page.click("#ca-hebca")


def _logged_in(rig: ExtensionRig, page: Any) -> None:
    try:
        page.wait_for_url("**/ish/home", timeout=30_000)
    except Exception:
        status = page.text_content("#status") if page.url.endswith("/ish/") else page.url
        raise AssertionError((status, rig.host_log(), page.errors)) from None
    assert page.text_content("#company") == COMPANY


def test_legacy_page_logs_in_through_the_extension_on_a_public_page(
    tmp_path: Path, driver: Any, fixtures: Fixtures
) -> None:
    """Nothing listens on 17212: the legacy page's ``new WebSocket("ws://localhost:
    17212/test")`` is the shim's, relayed to the bridge through the native host."""
    prompter = PrompterDouble(company_cert_id(fixtures))
    with extension_rig(tmp_path, driver, fixtures, prompter) as rig:
        page = rig.page()
        page.goto(f"{rig.origin}/ish/legacy")
        assert page.get_attribute("html", "data-certhelper-extension") == "1"
        try:
            page.wait_for_selector("#cert-select:not([disabled])", timeout=15_000)
        except Exception:
            raise AssertionError((page.content()[-1500:], rig.host_log(), page.errors)) from None
        options = page.eval_on_selector_all(
            "#cert-select option", "os => os.map(o => ({value: o.value, cn: o.dataset.cn || ''}))"
        )
        mine = [o for o in options if o["cn"] == COMPANY]
        assert len(mine) == 1, options
        page.select_option("#cert-select", value=mine[0]["value"])
        page.fill("#cert-pin", USER_PIN)
        page.click("#legacy-login")
        _logged_in(rig, page)
        assert (rig.origin, "hebca:Login", "ok") in rig.audit()
        assert page.errors == []
        # a page forging an origin in its own messages: the browser's is used
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
        counts = [o for o, op, _ in rig.audit() if op == "hebca:GetCertCount"]
        assert counts and set(counts) == {rig.origin}
        assert not any("evil" in o for o, _, _ in rig.audit())
        # the same server under a name not in the manifest: no shim, real WebSocket
        other = rig.page()
        other.goto(f"http://other.test:{rig.port}/ish/legacy")
        assert other.get_attribute("html", "data-certhelper-extension") is None
        assert other.evaluate("typeof window.certhelperExtension") == "undefined"
        assert other.evaluate("WebSocket.toString().includes('[native code]')")
        # and no access: the relay's own messages get no answer there
        answered = other.evaluate(
            """() => new Promise((resolve) => {
              const tag = "certhelper-ext";
              addEventListener("message", (e) => {
                if (e.data && e.data[tag] === "to-page") resolve(true);
              });
              postMessage({[tag]: "to-ext", id: 1, op: "open", protocol: "hebca"}, "*");
              setTimeout(() => resolve(false), 3000);
            })"""
        )
        assert answered is False
        assert page.evaluate("!WebSocket.toString().includes('[native code]')")


def test_native_login_through_the_extension(
    tmp_path: Path, driver: Any, fixtures: Fixtures
) -> None:
    """certhelper.js finds the extension and uses it instead of wss://127.0.0.1:17213:
    the login token is bound to the origin the browser reported. Set up as a user's
    machine is: the host registered by the installer, the extension built for the hall
    from the configuration."""
    prompter = PrompterDouble(company_cert_id(fixtures))
    with extension_rig(tmp_path, driver, fixtures, prompter, installed=True) as rig:
        manifest = json.loads((tmp_path / "built-extension" / "manifest.json").read_text())
        assert manifest["host_permissions"] == [f"{rig.origin}/*"]
        page = rig.page()
        _native_login(rig, page)
        _logged_in(rig, page)
        assert (rig.origin, "auth.authenticate", "ok") in rig.audit()
        assert [p.origin for p in prompter.pins] == [rig.origin]
        assert page.errors == []
        # the next page asks how it is connected
        page.goto(f"{rig.origin}/ish/")
        info = page.evaluate("CertHelper.diagnose()")
        assert info["ok"] is True and info["info"]["transport"] == "extension", info


def test_direct_path_is_blocked_where_the_extension_works(
    tmp_path: Path, driver: Any, fixtures: Fixtures
) -> None:
    """The control: the HEBCA endpoint *is* listening and admits this origin (a client
    outside the browser connects with it), yet the public page's own WebSocket to it
    fails (Local Network Access, no policy); through the extension it logs in."""
    prompter = PrompterDouble(company_cert_id(fixtures))
    with extension_rig(tmp_path, driver, fixtures, prompter, hebca_port=0) as rig:
        assert rig.bridge.hebca_port
        direct = f"ws://127.0.0.1:{rig.bridge.hebca_port}/test"

        async def outside() -> str:
            async with (
                aiohttp.ClientSession() as s,
                s.ws_connect(direct, headers={"Origin": rig.origin}) as ws,
            ):
                await ws.send_str("1|GetCertCount")
                return (await ws.receive(timeout=10)).data

        assert rig.loop.run(outside()).startswith("1|")
        page = rig.page()
        page.goto(f"{rig.origin}/ish/")
        assert page.evaluate(SOCKET_FATE, direct) == "error"
        assert not [e for e in rig.audit() if e[1] == "hebca:connect" and e[2] != "ok"]
        _native_login(rig, page)
        _logged_in(rig, page)


def test_extension_without_a_registered_host_says_so(
    tmp_path: Path, driver: Any, fixtures: Fixtures
) -> None:
    prompter = PrompterDouble(company_cert_id(fixtures))
    with extension_rig(tmp_path, driver, fixtures, prompter, register_host=False) as rig:
        page = rig.page()
        page.goto(f"{rig.origin}/ish/")
        got = page.evaluate("CertHelper.diagnose()")
        assert got["ok"] is False and got["code"] == "extension_host_missing", got
        assert "检测修复" in got["message"]
        page.click("#ca-login")
        page.click("#ca-hebca")
        page.wait_for_selector("#status[data-code='extension_host_missing']", timeout=15_000)
        assert page.get_attribute("#status-action", "href") == "certhelper://doctor"
        legacy = rig.page()  # the unchanged legacy page says the same
        legacy.goto(f"{rig.origin}/ish/legacy")
        legacy.wait_for_selector("#status[data-code='extension_host_missing']", timeout=15_000)
        assert legacy.get_attribute("#status-action", "href") == "certhelper://doctor"
        assert prompter.pins == []


def test_native_login_through_the_extension_with_the_real_pin_dialog(
    tmp_path: Path, driver: Any, fixtures: Fixtures, desk: Any
) -> None:
    prompter = TkPinPrompter(company_cert_id(fixtures), desk.prompter(timeout=60))
    with extension_rig(tmp_path, driver, fixtures, prompter) as rig:
        page = rig.page()
        _native_login(rig, page)
        desk.wait_window(timeout=30)  # the helper's window asks, not the page
        desk.screenshot("extension-pin-dialog")
        desk.type(USER_PIN)
        desk.key("Return")
        desk.wait_gone()
        _logged_in(rig, page)
        assert [p.origin for p in prompter.pins] == [rig.origin]
        raw = (rig.state_dir / "audit.jsonl").read_text("utf-8")
        assert '"auth.authenticate"' in raw and USER_PIN not in raw


#: what a page sees of the shim's socket, step by step (compare a real WebSocket)
FACADE = """async () => {
  const log = [];
  const ws = new WebSocket("ws://localhost:17212/test");
  log.push(["new", ws.readyState, ws.url, ws.OPEN, WebSocket.OPEN, ws instanceof WebSocket]);
  try { ws.send("x"); log.push("sent while connecting"); } catch (e) { log.push(["send", e.name]); }
  await new Promise((r) => {
    ws.onopen = () => log.push("onopen");
    ws.addEventListener("open", () => { log.push("open listener"); r(); });
  });
  log.push(["open", ws.readyState]);
  const reply = await new Promise((r) => {
    ws.addEventListener("message", (e) => r([e.data, e instanceof MessageEvent]));
    ws.send("0|1591600000000");
  });
  log.push(["message", ...reply]);
  try { ws.close(1001); } catch (e) { log.push(["close(1001)", e.name]); }
  const closed = new Promise((r) => { ws.onclose = (e) => r([e.code, e.wasClean]); });
  ws.close();
  log.push(["closing", ws.readyState]);
  log.push(["close", ...(await closed), ws.readyState]);
  const early = new WebSocket("ws://127.0.0.1:17212/test");
  const failed = new Promise((r) => {
    early.onerror = () => log.push("error");
    early.onclose = (e) => r([e.code, e.wasClean]);
  });
  early.close();
  log.push(["closed while connecting", ...(await failed)]);
  const real = new WebSocket("ws://127.0.0.1:9/other");
  const proto = Object.getPrototypeOf(real) === WebSocket.prototype;
  log.push(["other url", proto, real instanceof WebSocket]);
  real.close();
  return log;
}"""


def test_the_shim_behaves_like_a_websocket(tmp_path: Path, driver: Any, fixtures: Fixtures) -> None:
    prompter = PrompterDouble(company_cert_id(fixtures))
    with extension_rig(tmp_path, driver, fixtures, prompter) as rig:
        page = rig.page()
        page.goto(f"{rig.origin}/ish/legacy")
        log = page.evaluate(FACADE)
        assert log == [
            ["new", 0, "ws://localhost:17212/test", 1, 1, True],
            ["send", "InvalidStateError"],
            "onopen",
            "open listener",
            ["open", 1],
            ["message", "0|Welcome", True],
            ["close(1001)", "InvalidAccessError"],
            ["closing", 2],
            ["close", 1005, True, 3],
            "error",
            ["closed while connecting", 1006, False],
            ["other url", True, True],
        ], log
        assert page.errors == []
