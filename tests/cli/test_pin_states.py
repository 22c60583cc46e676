"""PIN states SoftHSM cannot produce (locked, final try, to be changed), through
the flag double, seen by the CLI run in-process on the session's driver."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pkcs11 import TokenFlag

from drivers.pkcs11.driver import Pkcs11Driver
from helper.cli.main import main
from helper.services.tokens import ModuleStatus, TokenService
from tests.support.flags import token_flags
from tests.support.tokens import USER_PIN, Fixtures


class _SharedService(TokenService):
    def close(self) -> None:  # the session driver outlives each command
        pass


@pytest.fixture
def run(driver: Pkcs11Driver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CERTHELPER_CONFIG", raising=False)

    def factory(config):
        return _SharedService([ModuleStatus(driver.module_path, "config", driver=driver)])

    def go(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv), service_factory=factory)
        out = capsys.readouterr()
        return code, out.out, out.err

    return go


def _slot(driver: Pkcs11Driver, serial: str) -> int:
    return next(t.slot_id for t in driver.list_tokens() if t.serial == serial)


def test_locked_token(run, driver: Pkcs11Driver, fixtures: Fixtures, tmp_path: Path) -> None:
    key1 = fixtures.token("key1")
    with token_flags(driver, TokenFlag.USER_PIN_LOCKED, {_slot(driver, key1["serial"])}):
        code, out, _ = run("list", "--json")
        states = {t["label"]: t["pin_state"] for t in json.loads(out)["tokens"]}
        assert states["河北CA测试Key1"] == "locked" and states["河北CA测试Key2"] == "ok"

        code, out, err = run(
            "change-pin", "--token", key1["label"], "--stdin", stdin="000000\n582937\n582937\n"
        )
        assert code == 4 and "pin_locked" in err and "CA 办事处" in err
        assert "密码已锁定" in out  # the state is shown before anything is asked

        data = tmp_path / "d"
        data.write_bytes(b"d")
        code, _, err = run(
            "sign",
            "--cert",
            fixtures.cert("company_sign")["serial_hex"],
            "--in",
            str(data),
            "--out",
            str(tmp_path / "o"),
            "--pin-stdin",
            stdin=USER_PIN + "\n",
        )
        assert code == 4 and "pin_locked" in err
        code, out, _ = run("doctor", "--json")
        assert "pin_locked" in {f["code"] for f in json.loads(out)}
    assert not driver.is_logged_in(key1["serial"])


def test_final_try_warns_before_the_pin(run, driver, fixtures: Fixtures, tmp_path: Path) -> None:
    key1 = fixtures.token("key1")
    flags = TokenFlag.USER_PIN_FINAL_TRY | TokenFlag.USER_PIN_COUNT_LOW
    with token_flags(driver, flags, {_slot(driver, key1["serial"])}):
        data = tmp_path / "d"
        data.write_bytes(b"d")
        code, _, err = run(
            "sign",
            "--cert",
            fixtures.cert("company_sign")["serial_hex"],
            "--in",
            str(data),
            "--out",
            str(tmp_path / "o"),
            "--pin-stdin",
            stdin=USER_PIN + "\n",
        )
        assert code == 0
        assert "最后一次机会" in err
        code, out, _ = run("doctor", "--json")
        assert "pin_final_try" in {f["code"] for f in json.loads(out)}


def test_to_be_changed(run, driver, fixtures: Fixtures) -> None:
    key2 = fixtures.token("key2")
    with token_flags(driver, TokenFlag.USER_PIN_TO_BE_CHANGED, {_slot(driver, key2["serial"])}):
        code, out, _ = run("list")
        assert code == 0 and "请修改初始密码" in out
        code, out, _ = run("doctor", "--json")
        finding = next(f for f in json.loads(out) if f["code"] == "pin_to_be_changed")
        assert "change-pin" in finding["fix"]
