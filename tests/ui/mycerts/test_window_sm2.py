"""我的证书 with 国密 SKF keys beside the SoftHSM ones: a real window on the session's
Xvfb reading a private copy of the soft SKF devices (libsoftskf) whose PIN counters
this test spends for real, through its own SkfDriver on the same copy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from drivers.errors import PinIncorrect, PinLocked
from drivers.skf.driver import SkfDriver
from drivers.types import Pin
from tests.support.cli import Cli
from tests.support.desktop import Desktop
from tests.support.skf import GmKeys
from tests.support.windows import WindowApp

WRONG = "000000"


def rows(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["type"] == "row"]


def details(row: dict[str, Any]) -> dict[str, str]:
    return {key: value for key, value, _style in row["details"]}


def spend(driver: SkfDriver, serial: str, tries: int) -> None:
    """Wrong PINs typed at the key itself (the counters move for real)."""
    for _ in range(tries):
        with pytest.raises((PinIncorrect, PinLocked)):
            driver.login(serial, Pin(WRONG))


@pytest.fixture
def open_mycerts(desk: Desktop, gm_cli: Cli) -> Iterator[Any]:
    """``open_mycerts(serial)``: 我的证书 with that key's first row selected."""
    apps: list[WindowApp] = []

    def start(serial: str) -> WindowApp:
        apps.append(WindowApp(desk, gm_cli, "mycerts", ("--token", serial), {}))
        return apps[-1]

    yield start
    for app in apps:
        app.stop()


def key_rows(app: WindowApp, serial: str, test: Any = None, timeout: float = 15) -> Any:
    """The certificate rows of one key once ``test(rows)`` holds for them."""

    def found(lines: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        mine = [r for r in rows(lines) if r["token_serial"] == serial and r["kind"] == "cert"]
        return mine if mine and (test is None or test(mine)) else None

    return app.wait_for(f"the rows of {serial}", found, timeout)


def test_sm2_keys_show_driver_usage_and_pin_tries(
    desk: Desktop, open_mycerts: Any, gm_keys: GmKeys, skf_driver: SkfDriver
) -> None:
    gm1 = gm_keys.serial("gm1")
    mycerts = open_mycerts(gm1)
    desk.wait_window()
    shown = {r["sha256"]: r for r in key_rows(mycerts, gm1)}
    sign = shown[gm_keys.cert("gm_company_sign")["sha256"]]
    enc = shown[gm_keys.cert("gm_company_enc")["sha256"]]
    assert (sign["key_type"], sign["usage"], sign["driver"]) == ("SM2", "sign", "skf")
    assert (enc["key_type"], enc["usage"]) == ("SM2", "enc")
    assert sign["values"][0].endswith("（签名）") and enc["values"][0].endswith("（加密）")
    assert sign["values"][5] == "河北CA测试国密Key1"
    d = details(sign)
    assert d["驱动 (Driver)"] == "国密 SKF (GM/T 0016)"
    assert d["用途 (Usage)"] == "签名 (signing)" and details(enc)["用途 (Usage)"].startswith("加密")
    assert d["密钥 (Key)"].startswith("SM2")
    assert "密码剩余 6/6 次尝试" in d["密码状态 (PIN)"] and "仍是初始密码" in d["密码状态 (PIN)"]
    assert "解锁 (Unlock)" not in d
    # a PKCS#11 key in the same window says its driver and no counters
    p11 = next(r for r in rows(mycerts.lines()) if r["driver"] == "pkcs11" and r["kind"] == "cert")
    assert details(p11)["驱动 (Driver)"] == "PKCS#11" and p11["pin_retries_left"] is None
    assert "次尝试" not in details(p11)["密码状态 (PIN)"]

    # two wrong PINs at the key: the open window follows within a couple of seconds
    spend(skf_driver, gm1, 2)
    after = key_rows(mycerts, gm1, lambda rs: rs[0]["pin_retries_left"] == 4, timeout=5)
    pin = details(after[0])["密码状态 (PIN)"]
    assert "密码剩余 4/6 次尝试 (4/6 PIN tries left)" in pin and "剩余次数不多" in pin
    assert any(r["selected"] for r in after)
    desk.screenshot("mycerts-sm2-tries")


def test_a_locked_key_says_to_call_the_ca(
    desk: Desktop, open_mycerts: Any, gm_keys: GmKeys, skf_driver: SkfDriver
) -> None:
    gm2 = gm_keys.serial("gm2")
    spend(skf_driver, gm2, 6)
    assert skf_driver.token_info(gm2).pin_retries_left == 0
    mycerts = open_mycerts(gm2)
    desk.wait_window()
    locked = key_rows(mycerts, gm2, lambda rs: all(r["pin_state"] == "locked" for r in rs))
    for r in locked:
        assert r["values"][5].startswith("河北CA测试国密Key2") and "密码已锁定" in r["values"][5]
        d = details(r)
        assert d["密码状态 (PIN)"].startswith("密码已锁定 (PIN locked)")
        help_text = d["解锁 (Unlock)"]
        # what to do, Chinese first, English beside, with the CA office's contacts
        assert help_text.startswith("密码已锁定") and "请联系 CA 解锁" in help_text
        assert "河北CA沧州办事处" in help_text and "13315703324" in help_text
        assert "(The PIN is locked" in help_text and "Hebei CA, Cangzhou office" in help_text
    # the other SKF key is untouched
    gm1 = key_rows(mycerts, gm_keys.serial("gm1"))
    assert "解锁 (Unlock)" not in details(gm1[0]) and "密码已锁定" not in gm1[0]["values"][5]
    assert any(r["selected"] for r in locked)
    desk.screenshot("mycerts-sm2-locked")
