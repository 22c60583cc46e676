"""The tray menu model: order, labels, actions, the 应用 submenu, the default item."""

from __future__ import annotations

from helper.apps import App, Category
from helper.tray.menu import (
    SEPARATOR,
    WINDOWS,
    MenuEntry,
    build_menu,
    open_action,
    parse_action,
)
from helper.tray.state import Status, TrayState

APPS = [
    Category("公积金", (App("沧州公积金", "http://111.62.46.105:9010/ish/"),)),
    Category("工商", (App("国家企业信用信息公示系统", "https://www.gsxt.gov.cn/"),)),
    Category("空的", ()),
]
NORMAL = TrayState(Status.NORMAL)


def labels(entries: list[MenuEntry]) -> list[str]:
    return [e.label for e in entries]


def test_order_labels_and_actions() -> None:
    menu = build_menu(NORMAL, APPS)
    assert labels(menu) == [
        "我的证书",
        "修改密码",
        "应用",
        "证书延期",
        "检测修复",
        "技术支持",
        "-",
        "关于",
        "退出",
    ]
    assert [e.action for e in menu] == [
        "show:mycerts",
        "show:changepin",
        None,
        "renew",
        "show:doctor",
        "show:support",
        None,
        "show:about",
        "quit",
    ]
    assert menu[6] is SEPARATOR and menu[6].is_separator
    assert not any(e.is_separator for i, e in enumerate(menu) if i != 6)
    assert all(e.enabled for e in menu)


def test_default_item_is_my_certificates() -> None:
    menu = build_menu(NORMAL, APPS)
    assert [e.label for e in menu if e.default] == ["我的证书"]


def test_apps_submenu() -> None:
    apps = build_menu(NORMAL, APPS)[2]
    assert apps.action is None and apps.enabled
    assert labels(list(apps.children)) == ["公积金", "工商"]  # empty categories are left out
    fund = apps.children[0]
    assert fund.children == (MenuEntry("沧州公积金", "open:http://111.62.46.105:9010/ish/"),)
    assert apps.children[1].children[0].action == "open:https://www.gsxt.gov.cn/"


def test_no_apps_disables_the_submenu() -> None:
    apps = build_menu(NORMAL, [])[2]
    assert apps.label == "应用" and not apps.enabled and apps.children == ()


def test_change_pin_needs_a_key() -> None:
    menu = build_menu(TrayState(Status.NO_KEY), APPS)
    assert not menu[1].enabled and menu[1].label == "修改密码"
    assert menu[0].enabled  # 我的证书 still opens (it says there is no key)
    attention = build_menu(TrayState(Status.ATTENTION, ("证书「甲」3 天后到期",)), APPS)
    assert attention[1].enabled


def test_status_line_for_backends_without_tooltips() -> None:
    state = TrayState(Status.ATTENTION, ("证书「甲」3 天后到期",))
    menu = build_menu(state, APPS, status_line=True)
    assert menu[0] == MenuEntry("证书「甲」3 天后到期", None, enabled=False)
    assert menu[1].is_separator
    assert labels(menu[2:]) == labels(build_menu(state, APPS))


def test_actions_parse() -> None:
    assert parse_action("show:mycerts") == ("show", "mycerts")
    assert parse_action("quit") == ("quit", "")
    url = "http://111.62.46.105:9010/ish/"
    assert parse_action(open_action(url)) == ("open", url)
    shows = {parse_action(e.action)[1] for e in build_menu(NORMAL, APPS) if e.action}
    assert shows - {"", "mycerts", "changepin", "doctor", "support", "about"} == set()
    assert set(WINDOWS) == {"mycerts", "changepin", "doctor", "support", "about"}
