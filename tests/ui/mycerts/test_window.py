"""我的证书, as a person uses it: a real window on the session's Xvfb reading a
private copy of the SoftHSM tokens; keys unplugged and plugged while it is open."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.support.cli import Cli
from tests.support.desktop import Desktop
from tests.support.tokens import Fixtures
from tests.support.windows import TokenDirs, WindowApp

SELECT_RGB = bytes.fromhex("1f5fbf")  # helper.ui.style.SELECT_BG: the selected row


def rows(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["type"] == "row"]


def status(lines: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((line for line in lines if line["type"] == "status"), None)


def wait_keys(app: WindowApp, n: int, timeout: float = 15) -> list[dict[str, Any]]:
    """The rows once the window shows exactly ``n`` keys."""

    def shown(lines: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        st = status(lines)
        return lines if st and st["keys"] == n else None

    return rows(app.wait_for(f"{n} keys", shown, timeout))


def close(desk: Desktop, app: WindowApp) -> None:
    desk.wait_window()
    desk.key("Escape")
    assert app.wait_exit() == 0


def test_lists_every_certificate_on_every_key(
    desk: Desktop, open_window, fresh_tokens: Fixtures
) -> None:
    app = open_window("mycerts")
    desk.wait_window()
    shown = wait_keys(app, len(fresh_tokens.manifest["tokens"]))
    certs = fresh_tokens.manifest["certificates"]

    readable = {r["sha256"]: r for r in shown if r["kind"] == "cert"}
    assert set(readable) == {c["sha256"] for c in certs if c["valid_der"]}
    for c in certs:
        if not c["valid_der"]:
            continue
        r = readable[c["sha256"]]
        assert (r["subject"], r["token_serial"]) == (c["subject_cn"], c["token_serial"])
        assert r["serial_hex"] == c["serial_hex"]
        assert r["not_after"] == c["not_after"]
        assert r["has_private_key"] == c["has_private_key"]
        assert r["values"][5] == c["token_label"]
    # colours by expiry: the fixtures hold one certificate within 7 days and one expired
    assert readable[fresh_tokens.cert("expiring")["sha256"]]["tag"] == "urgent"
    assert readable[fresh_tokens.cert("expired")["sha256"]]["tag"] == "expired"
    assert readable[fresh_tokens.cert("expired")["sha256"]]["values"][4].startswith("已过期")
    assert readable[fresh_tokens.cert("company_sign")["sha256"]]["tag"] == ""
    # what cannot be a certificate row still shows
    unreadable = [r for r in shown if r["kind"] == "unreadable"]
    assert [r["token_serial"] for r in unreadable] == [fresh_tokens.token("edge")["serial"]]
    assert "无法读取" in unreadable[0]["values"][0]
    empty = [r for r in shown if r["kind"] == "no_certificates"]
    assert [r["token_label"] for r in empty] == ["空Key"]
    # one row selected, the status bar counts
    assert sum(r["selected"] for r in shown) == 1
    st = status(app.lines())
    assert st is not None and st["certificates"] == len(certs)
    assert "4 个 USB Key" in st["status"] and f"{len(certs)} 张证书" in st["status"]
    # the selected row is on screen (ttk scrolls one row too far when asked to
    # show a row before the table has its size)
    time.sleep(0.3)
    _, _, px = desk.pixels()
    selected_px = sum(1 for i in range(0, len(px), 3) if px[i : i + 3] == SELECT_RGB)
    assert selected_px > 10_000, selected_px
    desk.screenshot("mycerts")
    close(desk, app)


def test_token_option_selects_that_keys_first_row(
    desk: Desktop, open_window, fresh_tokens: Fixtures
) -> None:
    key2 = fresh_tokens.token("key2")["serial"]
    app = open_window("mycerts", "--token", key2)
    desk.wait_window()
    shown = wait_keys(app, len(fresh_tokens.manifest["tokens"]))
    (selected,) = [r for r in shown if r["selected"]]
    assert selected == next(r for r in shown if r["token_serial"] == key2)
    close(desk, app)


def test_keys_unplugged_and_plugged_show_within_two_seconds(
    desk: Desktop, open_window, fresh_tokens: Fixtures, token_dirs: TokenDirs
) -> None:
    app = open_window("mycerts")
    desk.wait_window()
    n = len(fresh_tokens.manifest["tokens"])
    before = wait_keys(app, n)
    key2 = fresh_tokens.token("key2")["serial"]
    assert any(r["token_serial"] == key2 for r in before)

    token_dirs.unplug(key2)
    start = time.monotonic()
    after = wait_keys(app, n - 1, timeout=5)
    took = time.monotonic() - start
    assert took < 2.0, f"the removal showed after {took:.2f} s"
    assert not any(r["token_serial"] == key2 for r in after)
    assert {r["iid"] for r in after} == {r["iid"] for r in before if r["token_serial"] != key2}
    desk.screenshot("mycerts-key2-removed")

    token_dirs.plug(key2)
    start = time.monotonic()
    again = wait_keys(app, n, timeout=5)
    took = time.monotonic() - start
    assert took < 2.0, f"the insertion showed after {took:.2f} s"
    assert [r["iid"] for r in again] == [r["iid"] for r in before]
    close(desk, app)


def test_selection_is_kept_across_a_redraw(
    desk: Desktop, open_window, fresh_tokens: Fixtures, token_dirs: TokenDirs
) -> None:
    app = open_window("mycerts")
    desk.wait_window()
    n = len(fresh_tokens.manifest["tokens"])
    wait_keys(app, n)
    desk.key("Down", "Down")  # the table has the focus: the third row

    def third_selected(lines: list[dict[str, Any]]) -> dict[str, Any] | None:
        shown = rows(lines)
        return shown[2] if len(shown) > 2 and shown[2]["selected"] else None

    chosen = app.wait_for("the third row selected", third_selected)
    other = next(
        t["serial"]
        for t in fresh_tokens.manifest["tokens"]
        if t["serial"] != chosen["token_serial"]
    )
    token_dirs.unplug(other)
    after = wait_keys(app, n - 1, timeout=5)
    assert [r["iid"] for r in after if r["selected"]] == [chosen["iid"]]
    close(desk, app)


def test_no_key_shows_the_insert_panel_then_the_key(
    desk: Desktop, open_window, fresh_tokens: Fixtures, token_dirs: TokenDirs
) -> None:
    serials = token_dirs.unplug_all()
    app = open_window("mycerts")
    desk.wait_window()
    lines = app.wait_for(
        "the empty state", lambda ls: ls if (status(ls) or {}).get("empty") else None
    )
    assert rows(lines) == []
    assert "0 个 USB Key" in status(lines)["status"]  # type: ignore[index]
    desk.screenshot("mycerts-no-key")

    key1 = fresh_tokens.token("key1")["serial"]
    assert key1 in serials
    token_dirs.plug(key1)
    shown = wait_keys(app, 1, timeout=5)
    assert {r["token_serial"] for r in shown} == {key1}
    assert len(shown) == len(
        [c for c in fresh_tokens.manifest["certificates"] if c["token"] == "key1"]
    )
    close(desk, app)


@pytest.mark.parametrize("fmt", ["pem", "der"])
def test_export_writes_the_selected_certificate(
    desk: Desktop, open_window, fresh_tokens: Fixtures, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / "exported"
    out.mkdir()
    app = open_window(
        "mycerts", env={"CERTHELPER_EXPORT_DIR": str(out), "CERTHELPER_EXPORT_FORMAT": fmt}
    )
    desk.wait_window()
    shown = wait_keys(app, len(fresh_tokens.manifest["tokens"]))
    (selected,) = [r for r in shown if r["selected"]]
    assert selected["kind"] == "cert"
    sha = selected["sha256"]

    desk.key("Tab", "Return")  # table → 导出证书
    target = out / f"{sha[:16]}.{fmt}"
    app.wait_for("the export", lambda ls: (status(ls) or {}).get("exported"))
    assert status(app.lines())["exported"] == str(target)  # type: ignore[index]
    data = target.read_bytes()
    if fmt == "pem":
        cert = x509.load_pem_x509_certificate(data)
        assert data.startswith(b"-----BEGIN CERTIFICATE-----\n")
    else:
        cert = x509.load_der_x509_certificate(data)
    der = cert.public_bytes(Encoding.DER)
    assert hashlib.sha256(der).hexdigest() == sha
    if fmt == "pem":
        desk.screenshot("mycerts-exported")
    close(desk, app)


def test_change_pin_button_opens_the_change_pin_window_for_that_key(
    desk: Desktop, open_window, fresh_tokens: Fixtures
) -> None:
    app = open_window("mycerts")
    main = desk.wait_window()
    shown = wait_keys(app, len(fresh_tokens.manifest["tokens"]))
    (selected,) = [r for r in shown if r["selected"]]

    desk.key("Tab", "Tab", "Return")  # table → 导出证书 → 修改密码
    child_probe = Path(f"{app.probe}.changepin")  # the child's own probe file
    ready = wait_until("the change-PIN window", lambda: event(child_probe, "ready"))
    assert ready["token_serial"] == selected["token_serial"] and ready["fields"]
    assert not ready["chooser"]
    child = wait_until("its window", lambda: [w for w in desk.windows() if w != main])[0]
    desk.xdo("windowfocus", "--sync", child)
    time.sleep(0.2)
    desk.key("Escape")  # closes the change-PIN window only
    assert wait_until("the child's exit", lambda: event(child_probe, "exit"))["code"] == 1
    wait_until("only 我的证书 left", lambda: desk.windows() == [main])
    assert app.proc.poll() is None
    desk.xdo("windowfocus", "--sync", main)
    time.sleep(0.15)
    desk.key("Escape")
    assert app.wait_exit() == 0


def event(path: Path, name: str) -> dict[str, Any] | None:
    try:
        lines = [json.loads(x) for x in path.read_text("utf-8").splitlines() if x.strip()]
    except FileNotFoundError:
        return None
    return next((x for x in lines if x["event"] == name), None)


def wait_until(what: str, probe: Callable[[], Any], timeout: float = 15) -> Any:
    end = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > end:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.05)


def test_renew_opens_the_renewal_page(
    desk: Desktop, open_window, fresh_tokens: Fixtures, home_cli: Cli
) -> None:
    seen = home_cli.home / "browser-url"
    browser = home_cli.home / "record-url"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{seen}"\n')
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    app = open_window("mycerts", env={"BROWSER": f"{browser} %s"})
    desk.wait_window()
    wait_keys(app, len(fresh_tokens.manifest["tokens"]))
    desk.key("Tab", "Tab", "Tab", "Return")  # table → 导出证书 → 修改密码 → 证书延期
    end = time.monotonic() + 10
    while not (seen.exists() and seen.read_text()) and time.monotonic() < end:
        time.sleep(0.05)
    assert seen.read_text() == "https://www.hebca.com"
    assert os.environ.get("BROWSER") != str(browser)  # only the window's environment
    close(desk, app)
