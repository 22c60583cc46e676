"""The applications catalog: the packaged file, the user's file, merging, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from helper.apps import App, Category, load_apps, merge, packaged_apps, parse_apps
from helper.errors import ConfigInvalid


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "apps.toml"
    path.write_text(text, "utf-8")
    return path


def test_packaged_catalog() -> None:
    cats = packaged_apps()
    assert [c.name for c in cats][:1] == ["公积金"]
    fund = cats[0].apps[0]
    assert (fund.name, fund.url) == ("沧州公积金", "http://111.62.46.105:9010/ish/")
    for cat in cats:
        assert cat.apps, cat.name
        for app in cat.apps:
            assert app.url.startswith(("http://", "https://"))
            assert app.source.strip(), f"{cat.name}/{app.name} has no source"


def test_no_user_file(tmp_path: Path) -> None:
    catalog = load_apps(tmp_path / "missing.toml")
    assert catalog.categories == packaged_apps() and catalog.problems == []


def test_default_user_file_is_in_the_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "certhelper").mkdir()
    write(
        tmp_path / "certhelper",
        '[[category]]\nname = "税务"\n'
        '[[category.app]]\nname = "电子税务局"\nurl = "https://example.cn/etax"\n',
    )
    names = [c.name for c in load_apps().categories]
    assert names[-1] == "税务"


def test_user_file_merges_by_category(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[category]]
name = "公积金"
[[category.app]]
name = "石家庄公积金"
url = "https://example.cn/sjz/"

[[category]]
name = "税务"
[[category.app]]
name = "电子税务局"
url = "https://example.cn/etax"
source = "管理员"
""",
    )
    catalog = load_apps(path)
    assert catalog.problems == []
    by_name = {c.name: c for c in catalog.categories}
    assert [a.name for a in by_name["公积金"].apps] == ["沧州公积金", "石家庄公积金"]
    assert [c.name for c in catalog.categories][-1] == "税务"  # new categories come last
    assert by_name["税务"].apps == (App("电子税务局", "https://example.cn/etax", "管理员"),)


def test_user_entry_replaces_a_packaged_one(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[category]]\nname = "公积金"\n[[category.app]]\nname = "沧州公积金"\n'
        'url = "https://example.cn/new-hall/"\n',
    )
    fund = load_apps(path).categories[0]
    assert fund.apps == (App("沧州公积金", "https://example.cn/new-hall/"),)


def test_merge_drops_empty_categories() -> None:
    merged = merge([Category("甲", (App("a", "https://a.cn/"),))], [Category("乙", ())])
    assert [c.name for c in merged] == ["甲"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[[category]\nname = 1", "apps.toml"),  # not TOML
        ('[[categroy]]\nname = "x"', "unknown key(s) categroy"),
        ("[[category]]\nname = 7", "category 1: 'name' must be a non-empty string"),
        ('[[category]]\nname = "  "', "'name' must be a non-empty string"),
        (
            '[[category]]\nname = "工商"\n[[category.app]]\nname = "x"\n'
            'url = "javascript:alert(1)"',
            "category「工商」 entry「x」: 'url' must be an http:// or https:// address",
        ),
        (
            '[[category]]\nname = "工商"\n[[category.app]]\nname = "x"\nurl = "file:///etc/passwd"',
            "must be an http:// or https:// address",
        ),
        (
            '[[category]]\nname = "工商"\n[[category.app]]\nname = "x"\nurl = "https://"',
            "must be an http:// or https:// address",
        ),
        ('[[category]]\nname = "工商"\n[[category.app]]\nname = "x"', "'url' must be a non-empty"),
        (
            '[[category]]\nname = "工商"\n[[category.app]]\nname = "x"\nurl = "https://a.cn"\n'
            "icon = 1",
            "entry「x」: unknown key(s) icon",
        ),
        (
            '[[category]]\nname = "工商"\n[[category.app]]\nname = "x"\nurl = "https://a.cn"\n'
            '[[category.app]]\nname = "x"\nurl = "https://b.cn"',
            "entry「x」 appears twice",
        ),
        ('[[category]]\nname = "甲"\n[[category]]\nname = "甲"', "category「甲」 appears twice"),
        ('category = "x"', "write categories as [[category]] tables"),
        ('[[category]]\nname = "甲"\napp = "x"', "write entries as [[category.app]] tables"),
        (
            '[[category]]\nname = "工商"\n[[category.app]]\nname = "x"\nurl = "https://a.cn"\n'
            "source = 3",
            "'source' must be a string",
        ),
    ],
)
def test_invalid_user_file_is_reported_and_skipped(tmp_path: Path, text: str, says: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigInvalid) as err:
        parse_apps(text, str(path))
    assert says in str(err.value) and str(path) in str(err.value)
    catalog = load_apps(path)
    assert catalog.categories == packaged_apps()  # the packaged entries stay
    assert len(catalog.problems) == 1 and says in catalog.problems[0]


def test_undecodable_user_file(tmp_path: Path) -> None:
    path = tmp_path / "apps.toml"
    path.write_bytes(b"\xff\xfe[[category]]")
    catalog = load_apps(path)
    assert catalog.categories == packaged_apps() and len(catalog.problems) == 1
