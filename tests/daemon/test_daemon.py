"""The daemon in-process: real bridge, control socket and state refresher, with
a tray double, window double and keys the tests plug and unplug."""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from drivers.types import PinState
from helper import __version__
from helper.cli.commands import ALREADY_RUNNING
from helper.cli.main import main as cli_main
from helper.services import control
from helper.services.control import DaemonUnavailable
from helper.ui.launch import Window
from tests.support.daemon import Harness, make_config
from tests.support.tray import token, view


def wait_for(cond: Any, timeout: float = 5) -> None:
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.05)


KEY1 = token(serial="2b07c12d5f9ceab8", label="河北CA测试Key1")


def expiring_key() -> Any:
    return view(KEY1, [("沧州市测试科技有限公司", 200), ("沧州市即将到期测试有限公司", 4.5)])


def healthy_key() -> Any:
    return view(KEY1, [("沧州市测试科技有限公司", 200)])


def test_state_follows_the_keys(start_daemon: Any) -> None:
    h: Harness = start_daemon([expiring_key()])
    reply = h.call({"cmd": "state"})
    assert reply == {
        "ok": True,
        "state": "attention",
        "tooltip": "证书助手 — 证书「沧州市即将到期测试有限公司」4 天后到期",
        "reasons": ["证书「沧州市即将到期测试有限公司」4 天后到期"],
    }
    assert h.tray.states[-1].status.value == "attention"
    h.tokens.views = []  # unplugged
    h.wait_state("no_key")
    assert h.tray.states[-1].tooltip == "证书助手 — 未检测到 USB Key"
    h.tokens.views = [healthy_key()]
    h.wait_state("normal")
    assert h.tray.apps[0].name == "公积金"
    assert h.stop() == 0


def test_bridge_answers(start_daemon: Any) -> None:
    h: Harness = start_daemon([healthy_key()])
    bridge = h.daemon.bridge
    ctx = ssl.create_default_context(cafile=str(bridge.ca_path))
    with urllib.request.urlopen(
        f"https://127.0.0.1:{bridge.port}/v1/ping", context=ctx, timeout=10
    ) as r:
        assert json.load(r)["app"] == "certhelper"
    assert bridge.hebca_port
    with socket.create_connection(("127.0.0.1", bridge.hebca_port), timeout=5):
        pass
    assert h.call({"cmd": "ping"})["version"] == __version__
    assert h.stop() == 0
    assert h.tokens.closed and h.windows.closed_all and h.tray.stopped.is_set()
    assert not (h.cdir / control.SOCKET_NAME).exists()


def test_menu_actions(start_daemon: Any, home: Path) -> None:
    cfg_path = home / "config.toml"
    cfg_path.write_text('renewal_url = "https://renew.example.cn/"\n', "utf-8")
    cfg = make_config(path=cfg_path, renewal_url="https://renew.example.cn/")
    h: Harness = start_daemon([healthy_key()], config=cfg)
    act = h.tray.on_action
    act("renew")
    act("open:http://111.62.46.105:9010/ish/")
    act("show:mycerts")
    act("show:changepin")
    act("show:support")
    act("show:about")
    act("show:doctor")
    opened = h.wait_opened(5)
    wait_for(lambda: len(h.urls) == 2)  # the browser opens on a thread of its own
    assert sorted(h.urls) == ["http://111.62.46.105:9010/ish/", "https://renew.example.cn/"]
    assert [(o.name, o.request, o.args) for o in opened[:4]] == [
        ("mycerts", None, ()),
        ("changepin", None, ()),
        ("notice", {"kind": "support"}, ()),
        ("notice", {"kind": "about", "version": __version__}, ()),
    ]
    assert all(o.env == {"CERTHELPER_CONFIG": str(cfg_path)} for o in opened)
    doctor = opened[4]
    assert doctor.name == "notice" and doctor.request["kind"] == "doctor"
    findings = doctor.request["findings"]
    keys = {"level", "code", "message", "fix", "detail", "fix_id", "check", "needs_root"}
    assert findings and all(set(f) == keys for f in findings)
    assert any(f["code"] == "token" for f in findings)
    act("quit")
    h.thread.join(20)
    assert h.result["code"] == 0


def test_control_show_and_errors(start_daemon: Any) -> None:
    h: Harness = start_daemon([healthy_key()])
    assert h.call({"cmd": "show", "window": "changepin"}) == {"ok": True}
    assert h.call({"cmd": "show", "window": "../../evil"}) == {"ok": False, "error": "bad_window"}
    assert h.call({"cmd": "launch"}) == {"ok": False, "error": "unknown_command"}
    assert [o.name for o in h.wait_opened(1)] == ["changepin"]


def test_second_run_reaches_the_first(
    start_daemon: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`certhelper run` while one runs: no second daemon, 我的证书 opens in the first."""
    h: Harness = start_daemon([healthy_key()])
    assert cli_main(["run"]) == 0
    assert ALREADY_RUNNING in capsys.readouterr().out
    assert [(o.name, o.request) for o in h.wait_opened(1)] == [("mycerts", None)]
    assert h.thread.is_alive()
    assert h.stop() == 0


def test_background_run_while_one_runs_exits_quietly(
    start_daemon: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`certhelper run --background` (what the browser's native host starts): no second
    daemon and no window on the user's desk."""
    h: Harness = start_daemon([healthy_key()])
    assert cli_main(["run", "--background"]) == 0
    assert ALREADY_RUNNING not in capsys.readouterr().out
    time.sleep(0.5)
    assert h.windows.opened == []
    assert h.stop() == 0


def test_initial_pin_login(start_daemon: Any) -> None:
    h: Harness = start_daemon([healthy_key()])
    h.wait_state("normal")
    hook = h.daemon.bridge.gate.on_initial_pin
    h.on_loop(lambda: hook(KEY1))
    reply = h.wait_state("attention")
    assert reply["reasons"] == ["USB Key「河北CA测试Key1」仍在使用初始密码，请修改"]
    h.on_loop(lambda: hook(KEY1))  # a second login: no second notice this run
    notice = h.wait_opened(1)
    assert [(o.name, o.request) for o in notice] == [
        (
            "notice",
            {"kind": "initial_pin", "token_label": "河北CA测试Key1", "token_serial": KEY1.serial},
        )
    ]
    # 立即修改 → the change-PIN window for that key; a change there clears the flag
    h.daemon._on_window_exit(Window("notice", notice[0].request, ()), [{"result": "changepin"}], 0)
    assert (h.windows.opened[-1].name, h.windows.opened[-1].args) == (
        "changepin",
        ("--token", KEY1.serial),
    )
    h.daemon._on_window_exit(Window("changepin", None, ("--token", KEY1.serial)), [], 1)
    assert h.call({"cmd": "state"})["state"] == "attention"  # closed without a change
    h.daemon._on_window_exit(Window("changepin", None, ("--token", KEY1.serial)), [], 0)
    h.wait_state("normal")
    assert len([o for o in h.windows.opened if o.name == "notice"]) == 1


def test_a_pin_changed_in_any_window_clears_that_key_only(start_daemon: Any) -> None:
    """Two keys on the initial PIN; a change-PIN window (from 我的证书 or from the tray,
    with both keys inserted) tells the daemon which key it changed: that one clears at
    once, the other stays."""
    key2 = token(serial="77aa00bb11cc22dd", label="河北CA测试Key2")
    h: Harness = start_daemon([healthy_key(), view(key2, [("沧州市测试贸易有限公司", 200)])])
    h.wait_state("normal")
    hook = h.daemon.bridge.gate.on_initial_pin
    h.on_loop(lambda: hook(KEY1))
    h.on_loop(lambda: hook(key2))
    wait_for(lambda: len(h.call({"cmd": "state"})["reasons"]) == 2)
    assert h.call({"cmd": "pin_changed", "serial": KEY1.serial}) == {"ok": True}
    wait_for(lambda: len(h.call({"cmd": "state"})["reasons"]) == 1)
    assert h.call({"cmd": "state"})["reasons"] == [
        "USB Key「河北CA测试Key2」仍在使用初始密码，请修改"
    ]
    assert h.call({"cmd": "pin_changed", "serial": ""})["error"] == "bad_serial"
    assert h.stop() == 0


class BusyPrompter:
    """A prompter whose dialogs the test opens and closes (``idle_for`` as TkPrompter)."""

    def __init__(self) -> None:
        self.idle = 0.0

    def idle_for(self) -> float:
        return self.idle


def test_notices_wait_until_the_dialogs_are_over(start_daemon: Any) -> None:
    """The initial-PIN notice of a login inside a flow of dialogs (e.g. a renewal's PIN,
    then its write confirmation) waits until no dialog has been open for a while: it
    never covers a pending confirmation or the CA's receipt."""
    prompter = BusyPrompter()
    h: Harness = start_daemon([healthy_key()], prompter=prompter)
    h.wait_state("normal")
    hook = h.daemon.bridge.gate.on_initial_pin
    h.on_loop(lambda: hook(KEY1))  # during the flow: a dialog was open just now
    h.wait_state("attention")
    time.sleep(1.5)
    assert [o for o in h.windows.opened if o.name == "notice"] == []
    prompter.idle = 60.0  # the flow is over
    notice = h.wait_opened(1)
    assert notice[0].request == {
        "kind": "initial_pin",
        "token_label": "河北CA测试Key1",
        "token_serial": KEY1.serial,
    }
    # what the person asks for (检测修复, 技术支持) opens at once, dialogs or not
    prompter.idle = 0.0
    h.daemon.open_window("notice", {"kind": "support"})
    assert h.windows.opened[-1].request == {"kind": "support"}
    assert h.stop() == 0


def test_key_asking_for_a_new_pin(start_daemon: Any) -> None:
    info = token(serial="77", label="新Key", pin_state=PinState.TO_BE_CHANGED)
    h: Harness = start_daemon([view(info, [("甲", 200)])])
    assert h.call({"cmd": "state"})["state"] == "attention"
    opened = h.wait_opened(1)
    assert opened[0].request == {
        "kind": "initial_pin",
        "token_label": "新Key",
        "token_serial": "77",
    }


def test_notice_answers(start_daemon: Any) -> None:
    h: Harness = start_daemon([healthy_key()])
    d = h.daemon
    d._on_window_exit(Window("notice", {"kind": "expiry"}, ()), [{"result": "renew"}], 0)
    d._on_window_exit(Window("notice", {"kind": "support"}, ()), [{"result": "close"}], 0)
    d._on_window_exit(
        Window("notice", {"kind": "doctor", "findings": []}, ()), [{"result": "rerun"}], 0
    )
    opened = h.wait_opened(1)
    assert opened[0].request["kind"] == "doctor"
    wait_for(lambda: bool(h.urls))
    assert h.urls == [d.config.renewal_url] == ["https://www.hebca.com"]


def test_no_tray_possible_keeps_serving(start_daemon: Any) -> None:
    def no_tray(**_kw: Any) -> Any:
        raise RuntimeError("no display")

    h: Harness = start_daemon([healthy_key()], tray_factory=no_tray, wait=False)
    h.wait_state("normal", timeout=30)
    assert h.daemon.tray is None
    assert h.stop() == 0


def test_port_in_use_is_a_clear_error(start_daemon: Any) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        h: Harness = start_daemon([healthy_key()], config=make_config(bridge_port=port), wait=False)
        h.thread.join(30)
    err = h.result["error"]
    assert isinstance(err, DaemonUnavailable) and str(port) in str(err)
    assert h.tokens.closed
    again = control.claim()  # the endpoint was given back
    assert isinstance(again, control.Claim)
    again.close()


def _expiry_notices(h: Harness) -> list[Any]:
    return [
        o
        for o in h.windows.opened
        if o.name == "notice" and (o.request or {}).get("kind") == "expiry"
    ]


def test_expiry_alerts_once_per_threshold(start_daemon: Any, home: Path) -> None:
    """At start the 4-day certificate is announced (threshold 7, once); a restart
    with the same state file says nothing new; a key inserted later is checked."""
    state = home / "alerts.json"
    h: Harness = start_daemon([healthy_key()], alerts_path=state)
    h.wait_state("normal")
    assert _expiry_notices(h) == []
    h.tokens.views = [expiring_key()]  # a key with an expiring certificate is inserted
    h.tokens.views[0] = view(
        token(serial="feedfacecafe0001", label="河北CA测试Key9"),
        [("沧州市即将到期测试有限公司", 4.5)],
    )
    h.wait_state("attention")
    wait_for(lambda: _expiry_notices(h))
    (notice,) = _expiry_notices(h)
    assert notice.request["renewal_url"] == "https://www.hebca.com"
    (alert,) = notice.request["alerts"]
    assert alert["threshold"] == "7" and "沧州市即将到期测试有限公司" in alert["message"]
    assert h.stop() == 0
    h2: Harness = start_daemon(list(h.tokens.views), alerts_path=state)
    h2.wait_state("attention")
    time.sleep(0.6)  # a few refreshes
    assert _expiry_notices(h2) == []  # announced once, remembered across runs
    assert h2.stop() == 0


def test_a_renewal_resets_the_alerts_of_both_certificates(start_daemon: Any) -> None:
    """The renewal hook is wired to the daemon: the old and the new certificate's
    alert state is forgotten (written to alerts.json), and the tray looks again."""
    h: Harness = start_daemon([healthy_key()])
    h.wait_state("normal")
    renewal = h.daemon.bridge.renewal
    assert renewal is not None and renewal.on_renewed == h.daemon._on_renewed
    alerts = h.daemon._alerts
    old, new, other = "a" * 64, "b" * 64, "c" * 64
    with alerts._lock:
        for sha in (old, new, other):
            alerts._state[sha] = {"announced": ["30", "7"]}
        alerts._save()
    h.on_loop(lambda: renewal.on_renewed(old, new))
    assert (alerts.announced(old), alerts.announced(new)) == ((), ())
    assert alerts.announced(other) == ("30", "7")
    reread = type(alerts)(alerts.state_path, alerts.clock)
    assert reread.announced(old) == () and reread.announced(other) == ("30", "7")


HANGING_TRAY = """
import sys, threading
from helper.daemon.run import run_daemon
from tests.support.daemon import APPS, FakeTokens, FakeTray, FakeWindows, make_config
from tests.support.tray import token, view
import keyring.backends.fail

class StuckTray(FakeTray):
    def stop(self):  # like pystray's Xorg loop missing its stop: run() never returns
        pass

tokens = FakeTokens([view(token(serial="2b07c12d5f9ceab8"), [("公司", 200)])])
print("starting", flush=True)
code = run_daemon(
    make_config(), tray_factory=StuckTray, prompter=object(),
    service_factory=lambda _c: tokens, apps=APPS, windows=FakeWindows(),
    bridge_options={"keyring_backend": keyring.backends.fail.Keyring()},
)
"""


def test_sigterm_ends_the_daemon_even_if_the_tray_never_leaves(home: Path) -> None:
    """Everything stops and the process exits within the grace period after SIGTERM,
    though the tray's event loop never returns (seen with pystray's Xorg backend)."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", HANGING_TRAY],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # until the daemon announced itself
        seen.append(line)
        if "证书助手已启动" in line:
            break
    assert any("证书助手已启动" in s for s in seen), seen
    started = time.monotonic()
    proc.terminate()
    try:
        code = proc.wait(30)
    finally:
        proc.kill()
    assert code == 0 and time.monotonic() - started < 15
