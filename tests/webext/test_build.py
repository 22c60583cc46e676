"""``certhelper extension build`` / build_extension: the generated manifests for both
browsers from a config with a hall and a CA origin, and the errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from helper.config import Config
from helper.errors import ConfigInvalid
from helper.webext.build import build_extension, source_dir
from helper.webext.ids import CHROMIUM_EXTENSION_ID, FIREFOX_ADDON_ID, chromium_id_from_key
from helper.webext.patterns import match_pattern
from tests.support.installer import CERTHELPER, ROOT

SOURCE = ROOT / "extension"
HALL = "http://111.62.46.105:9010"
CA = "https://ca.example.cn"
CONFIG = Config(origins=[HALL], renewal_ca_origins=[CA])
SCRIPTS = ("background.js", "relay.js", "shim.js")


def load(out: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((out / "manifest.json").read_text("utf-8"))


def test_source_dir_is_the_repository_extension() -> None:
    assert source_dir() == SOURCE


def test_chromium(tmp_path: Path) -> None:
    out = build_extension(SOURCE, tmp_path / "chromium", CONFIG.page_origins(), "chromium")
    m = load(out)
    patterns = ["http://111.62.46.105:9010/*", "https://ca.example.cn/*"]
    assert m["host_permissions"] == patterns
    assert len(m["content_scripts"]) == 2
    assert all(cs["matches"] == patterns for cs in m["content_scripts"])
    assert chromium_id_from_key(m["key"]) == CHROMIUM_EXTENSION_ID  # the fixed ID stays
    assert m["background"] == {"service_worker": "background.js"}
    assert m["permissions"] == ["nativeMessaging"]
    assert "browser_specific_settings" not in m
    for name in SCRIPTS:
        assert (out / name).read_bytes() == (SOURCE / name).read_bytes()
    assert sorted(p.name for p in out.iterdir()) == sorted([*SCRIPTS, "manifest.json"])
    # the source's own (test) origins are gone
    assert "hall.test" not in (out / "manifest.json").read_text("utf-8")


def test_firefox(tmp_path: Path) -> None:
    out = build_extension(SOURCE, tmp_path / "ff", CONFIG.page_origins(), "firefox")
    m = load(out)
    patterns = ["http://111.62.46.105/*", "https://ca.example.cn/*"]  # Firefox: no ports
    assert m["host_permissions"] == patterns
    assert all(cs["matches"] == patterns for cs in m["content_scripts"])
    assert m["manifest_version"] == 3
    assert "key" not in m
    assert m["background"] == {"scripts": ["background.js"]}
    assert m["browser_specific_settings"] == {
        "gecko": {"id": FIREFOX_ADDON_ID, "strict_min_version": "128.0"}
    }
    main_world = [cs for cs in m["content_scripts"] if cs.get("world") == "MAIN"]
    assert [cs["js"] for cs in main_world] == [["shim.js"]]
    for name in SCRIPTS:
        assert (out / name).read_bytes() == (SOURCE / name).read_bytes()


@pytest.mark.parametrize(
    ("origin", "chromium", "firefox"),
    [
        ("http://111.62.46.105:9010", "http://111.62.46.105:9010/*", "http://111.62.46.105/*"),
        ("https://Hall.Example.CN/", "https://hall.example.cn/*", "https://hall.example.cn/*"),
        ("https://hall.example.cn:443", "https://hall.example.cn/*", "https://hall.example.cn/*"),
        ("http://[::1]:8080", "http://[::1]:8080/*", "http://[::1]/*"),
    ],
)
def test_match_patterns(origin: str, chromium: str, firefox: str) -> None:
    assert match_pattern(origin, "chromium") == chromium
    assert match_pattern(origin, "firefox") == firefox


@pytest.mark.parametrize(
    "bad",
    [
        "ftp://files.example.cn",
        "111.62.46.105:9010",
        "http://hall.example.cn/ish/",
        "http://user@hall.example.cn",
        "http://*.example.cn",
        "http://hall.example.cn:99999",
        "https://hall.example.cn?x=1",
    ],
)
def test_bad_origins_are_refused_by_name(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigInvalid) as info:
        build_extension(SOURCE, tmp_path / "out", [HALL, bad], "chromium")
    assert bad.strip() in info.value.message() and "无效" in info.value.message()
    assert not (tmp_path / "out").exists()


def test_no_origins(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid, match="no origins"):
        build_extension(SOURCE, tmp_path / "out", [], "firefox")


def test_missing_source_says_where(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid) as info:
        build_extension(tmp_path / "nowhere", tmp_path / "out", [HALL], "chromium")
    text = info.value.message()
    assert "extension source not found" in text and str(tmp_path / "nowhere") in text


def test_a_source_with_another_key_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(SOURCE, src)
    m = json.loads((src / "manifest.json").read_text("utf-8"))
    m["key"] = "bm90IG91ciBrZXk="
    (src / "manifest.json").write_text(json.dumps(m), "utf-8")
    with pytest.raises(ConfigInvalid, match=CHROMIUM_EXTENSION_ID):
        build_extension(src, tmp_path / "out", [HALL], "chromium")


def test_out_cannot_be_the_source(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(SOURCE, src)
    with pytest.raises(ConfigInvalid):
        build_extension(src, src, [HALL], "chromium")
    assert (src / "manifest.json").read_bytes() == (SOURCE / "manifest.json").read_bytes()


def run_cli(tmp_path: Path, config: str, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[logging]\nfile = false\n" + config, "utf-8")
    return subprocess.run(
        [*CERTHELPER, "--config", str(cfg), "extension", "build", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_builds_from_the_config(tmp_path: Path) -> None:
    config = f'[bridge]\norigins = ["{HALL}"]\n[renewal]\nca_origins = ["{CA}"]\n'
    out = tmp_path / "ext"
    result = run_cli(tmp_path, config, "--browser", "firefox", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    assert load(out)["host_permissions"] == ["http://111.62.46.105/*", "https://ca.example.cn/*"]


def test_cli_bad_origin_is_a_config_error(tmp_path: Path) -> None:
    config = '[bridge]\norigins = ["http://111.62.46.105:9010/ish/"]\n'
    result = run_cli(tmp_path, config, "--out", str(tmp_path / "ext"))
    assert result.returncode == 2
    assert "config_invalid" in result.stderr and "/ish/" in result.stderr
    assert not (tmp_path / "ext").exists()
