"""The extension transport in Firefox (issue 15): Debian's Firefox ESR, headless, the
add-on built by `certhelper extension build --browser firefox` and the native host
registered by the installer's code (tests/support/firefox.py). Both protocols log in
through it, under the origin Firefox reports to the add-on. Prompter double."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import COMPANY, PrompterDouble, company_cert_id
from tests.support.firefox import FIREFOX, firefox_rig
from tests.support.tokens import Fixtures

#: the unchanged legacy client's first steps, then a page-PIN Login, as hall JS would
LEGACY = """(() => {
  const out = {ext: typeof window.certhelperExtension,
               native: WebSocket.toString().includes("[native code]"), frames: []};
  const done = () => fetch("/probe/report", {method: "POST", body: JSON.stringify(out)})
    .then(() => location.assign("/probe/native"));  // the same Firefox goes on
  const steps = ["0|1591600000000", "1|GetCertCount"];
  const ws = new WebSocket("ws://localhost:17212/test");
  ws.onopen = () => ws.send(steps.shift());
  ws.onmessage = (e) => {
    out.frames.push(e.data);
    if (steps.length) ws.send(steps.shift()); else { ws.close(); done(); }
  };
  ws.onclose = (e) => { out.closed = [e.code, e.reason]; if (steps.length) done(); };
})();"""

#: the hall's native login, as the demo hall's page does it
NATIVE = """(async () => {
  const out = {ext: typeof window.certhelperExtension};
  try {
    const d = await CertHelper.diagnose();
    out.transport = d.ok ? d.info.transport : d.code;
    const c = await (await fetch("/ish/api/challenge", {credentials: "same-origin"})).json();
    const token = await CertHelper.authenticate(c.challenge);
    const r = await fetch("/ish/api/login", {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({token})});
    out.login = r.status;
    const home = await (await fetch("/ish/home", {credentials: "same-origin"})).text();
    out.company = home.includes(COMPANY);
  } catch (e) { out.error = e.code || String(e); }
  fetch("/probe/report", {method: "POST", body: JSON.stringify(out)});
})();""".replace("COMPANY", json.dumps(COMPANY))


@pytest.fixture(autouse=True)
def _firefox() -> None:
    if not Path(FIREFOX).exists():
        pytest.fail("missing firefox-esr: run `make test`, which installs it")


def test_firefox_legacy_and_native_through_the_extension(
    tmp_path: Path, driver: Any, fixtures: Fixtures
) -> None:
    prompter = PrompterDouble(company_cert_id(fixtures))
    scripts = {"legacy": LEGACY, "native": NATIVE}
    with firefox_rig(tmp_path, driver, fixtures, prompter, scripts) as rig:
        rig.open("/probe/legacy")
        got = rig.report()
        assert got["ext"] == "object" and got["native"] is False, got
        assert got["frames"][0] == "0|Welcome", got
        count = json.loads(got["frames"][1].split("|", 2)[2])
        assert count["ret"] == 0 and count["count"] >= 1, got
        audit = _audit(rig.hall.home.parent / "state" / "audit.jsonl")
        assert (rig.hall.origin, "hebca:GetCertCount", "ok") in audit

        got = rig.report()  # the legacy page went on to the native one
        assert got == {"ext": "object", "transport": "extension", "login": 200, "company": True}
        assert [p.origin for p in prompter.pins] == [rig.hall.origin]
        audit = _audit(rig.hall.home.parent / "state" / "audit.jsonl")
        assert (rig.hall.origin, "auth.authenticate", "ok") in audit


def _audit(path: Path) -> list[tuple[str, str, str]]:
    entries = [json.loads(x) for x in path.read_text("utf-8").splitlines()]
    return [(e["origin"], e["operation"], e["outcome"]) for e in entries]
