"""Debian's Firefox ESR with the certhelper add-on, for the extension transport.

No driver: Playwright drives only its own Firefox build, and no geckodriver is
available here. Firefox runs headless on a probe page of the hall's origin whose own
script does the work and POSTs what it saw back to the hall (``/probe/report``).
The add-on is the one ``certhelper extension build --browser firefox`` makes,
sideloaded unsigned into the profile (ESR honours ``xpinstall.signatures.required``);
the native host is registered by the installer's own code
(``~/.mozilla/native-messaging-hosts``).
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from helper.services.prompts import Prompter
from helper.webext.ids import FIREFOX_ADDON_ID
from tests.support.extension import Hall, install_for_real, serve_hall, wait_hosts
from tests.support.tokens import Fixtures

FIREFOX = "/usr/bin/firefox-esr"
PREFS: dict[str, object] = {
    "xpinstall.signatures.required": False,  # an unsigned add-on (ESR only)
    "extensions.autoDisableScopes": 0,  # sideloaded add-ons start enabled
    "extensions.enabledScopes": 15,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "browser.aboutwelcome.enabled": False,
    "app.update.enabled": False,
    "network.proxy.type": 0,
}


#: a freshly started Firefox may show its first page before the add-on has started
#: (no content script on it): reload, at most 20 times, until the add-on is there
COLD_START = """(() => {
  const tries = Number(sessionStorage.getItem("ch-tries") || 0);
  if (typeof window.certhelperExtension !== "undefined" || tries >= 20) return false;
  sessionStorage.setItem("ch-tries", String(tries + 1));
  setTimeout(() => location.reload(), 500);
  return true;
})()"""


@dataclass
class FirefoxRig:
    hall: Hall
    tmp: Path
    reports: queue.Queue[dict[str, Any]]
    procs: list[subprocess.Popen[bytes]]
    profile: Path

    def open(self, path: str) -> None:
        """Firefox (headless) on ``path`` of the hall's origin (one Firefox at a time:
        they share the profile)."""
        self.close()
        env = {
            "HOME": str(self.hall.home),
            "PATH": "/usr/bin:/bin",
            "XDG_RUNTIME_DIR": str(self.hall.runtime),
            "MOZ_HEADLESS": "1",
        }
        log = (self.tmp / f"firefox-{len(self.procs)}.log").open("wb")
        url = f"{self.hall.origin}{path}"
        self.procs.append(
            subprocess.Popen(
                [FIREFOX, "--headless", "--no-remote", "--profile", str(self.profile), url],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )

    def report(self, timeout: float = 60) -> dict[str, Any]:
        try:
            return self.reports.get(timeout=timeout)
        except queue.Empty:
            logs = "".join(p.read_text()[-1500:] for p in self.tmp.glob("firefox-*.log"))
            raise AssertionError(f"no report from the page\n{logs}") from None

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def probe_routes(scripts: dict[str, str], reports: queue.Queue[dict[str, Any]]) -> list[Any]:
    """``/probe/<name>``: a page loading the hall's certhelper.js and ``<name>.js``."""

    async def page(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        html = (
            '<!doctype html><meta charset="utf-8"><title>probe</title>'
            '<script src="/ish/certhelper.js"></script>'
            f'<script src="/probe/{name}.js"></script>'
        )
        return web.Response(text=html, content_type="text/html")

    async def script(request: web.Request) -> web.Response:
        body = f"if (!{COLD_START}) {{\n{scripts[request.match_info['name']]}\n}}"
        return web.Response(text=body, content_type="application/javascript")

    async def report(request: web.Request) -> web.Response:
        reports.put(json.loads(await request.text()))
        return web.Response(text="ok")

    return [
        web.get("/probe/{name}.js", script),
        web.get("/probe/{name}", page),
        web.post("/probe/report", report),
    ]


@contextlib.contextmanager
def firefox_rig(
    tmp: Path, driver: Any, fixtures: Fixtures, prompter: Prompter, scripts: dict[str, str]
) -> Iterator[FirefoxRig]:
    reports: queue.Queue[dict[str, Any]] = queue.Queue()
    with contextlib.ExitStack() as stack:
        hall = serve_hall(
            stack,
            tmp,
            driver,
            fixtures,
            prompter,
            host="127.0.0.1",  # Firefox gets no host-resolver rules; no LNA to defeat here
            routes=probe_routes(scripts, reports),
        )
        ext = tmp / "firefox-extension"
        install_for_real(hall.home, hall.origin, ext, browser="firefox")
        profile = tmp / "firefox-profile"
        (profile / "extensions").mkdir(parents=True)
        with zipfile.ZipFile(profile / "extensions" / f"{FIREFOX_ADDON_ID}.xpi", "w") as xpi:
            for f in sorted(ext.iterdir()):
                xpi.write(f, f.name)
        (profile / "user.js").write_text(
            "".join(f'user_pref("{k}", {json.dumps(v)});\n' for k, v in PREFS.items())
        )
        stack.callback(wait_hosts, hall.home)
        rig = FirefoxRig(hall, tmp, reports, [], profile)
        stack.callback(rig.close)
        yield rig
