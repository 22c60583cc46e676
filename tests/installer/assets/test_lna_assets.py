"""The Local Network Access policy in the Windows (.iss) and macOS (.mobileconfig) assets:
parsed here, compared with what Linux's certhelper.json holds for the same origins. Not
run on Windows or macOS (docs/platforms.md)."""

from __future__ import annotations

import plistlib
import re
from pathlib import Path

import pytest

from helper.config import Config
from installer.assets import generate
from installer.assets.lna import DEFAULT_ORIGINS, FIRST_VALUE, WINDOWS_BROWSERS
from installer.policy import ALLOW_KEYS, SECURE_KEY, policy_document

ORIGINS = ["http://111.62.46.105:9010", "https://www.hebca.com", "http://10.1.2.3:8080/"]
REG = re.compile(
    r'^Root: HKLM; Subkey: "(?P<key>[^"]+)"; ValueType: string; ValueName: "(?P<name>\d+)"; '
    r'ValueData: "(?P<data>[^"]+)"; Flags: uninsdeletevalue; Check: IsAdminInstallMode\r?$',
    re.M,
)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("lna-assets")
    generate(d, version="1.2.3", origins=ORIGINS)
    return d


def test_defaults_are_the_configured_origins() -> None:
    assert list(DEFAULT_ORIGINS) == Config().page_origins()


def test_iss_writes_the_policy_lists_under_hklm(out: Path) -> None:
    text = (out / "certhelper.iss").read_text("utf-8-sig")
    assert "PrivilegesRequiredOverridesAllowed=dialog" in text
    found: dict[str, dict[int, str]] = {}
    for m in REG.finditer(text):
        found.setdefault(m["key"], {})[int(m["name"])] = m["data"]
    expected = policy_document(ORIGINS)
    assert set(expected) == {*ALLOW_KEYS, SECURE_KEY}
    assert set(found) == {f"{b}\\{k}" for b in WINDOWS_BROWSERS for k in expected}
    chrome, edge = "Software\\Policies\\Google\\Chrome", "Software\\Policies\\Microsoft\\Edge"
    assert (chrome, edge) == WINDOWS_BROWSERS
    for browser in WINDOWS_BROWSERS:
        for key, values in expected.items():
            got = found[f"{browser}\\{key}"]
            assert sorted(got) == list(range(FIRST_VALUE, FIRST_VALUE + len(values)))
            assert [got[n] for n in sorted(got)] == values
    # the plain-http origins, and only they, are made secure contexts
    assert expected[SECURE_KEY] == ["http://10.1.2.3:8080", "http://111.62.46.105:9010"]
    # every HKLM line is inside [Registry]
    registry = text.split("[Registry]", 1)[1].split("\n[", 1)[0]
    assert len(REG.findall(registry)) == len(REG.findall(text)) == 2 * (2 * 3 + 2)


def test_mobileconfig_for_chrome_and_edge(out: Path) -> None:
    profile = plistlib.loads((out / "certhelper-lna.mobileconfig").read_bytes())
    assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
    assert profile["PayloadScope"] == "System"
    assert re.fullmatch(r"[0-9A-F-]{36}", profile["PayloadUUID"])
    payloads = {p["PayloadType"]: p for p in profile["PayloadContent"]}
    assert set(payloads) == {"com.google.Chrome", "com.microsoft.Edge"}
    expected = policy_document(ORIGINS)
    for payload in payloads.values():
        for key, values in expected.items():
            assert payload[key] == values
        assert payload["PayloadIdentifier"].startswith(profile["PayloadIdentifier"] + ".")
        assert payload["PayloadUUID"] != profile["PayloadUUID"]
    assert len({p["PayloadUUID"] for p in payloads.values()}) == 2


def test_cli_takes_origins(tmp_path: Path) -> None:
    from installer.assets.generate import main

    assert main([str(tmp_path), "--origin", "https://hall.example.cn"]) == 0
    profile = plistlib.loads((tmp_path / "certhelper-lna.mobileconfig").read_bytes())
    assert profile["PayloadContent"][0]["LocalNetworkAccessAllowedForUrls"] == [
        "https://hall.example.cn"
    ]
    assert SECURE_KEY not in profile["PayloadContent"][0]
