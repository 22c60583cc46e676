"""What 我的证书 decides without Tk: rows, details, redraw signature, export formats,
and the window model (selection after a redraw, empty screens, buttons, probe)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from drivers import errors as E
from drivers.pkcs11.driver import Pkcs11Driver
from drivers.types import PinState, TokenInfo
from helper.domain.expiry import ExpiryState
from helper.services.tokens import ModuleStatus, TokenService
from helper.ui.mycerts.export import certificate_file, export_format, safe_filename
from helper.ui.mycerts.model import NO_DRIVER, NO_KEY, MyCertsModel
from helper.ui.mycerts.poller import Failure, Poller, Snapshot
from helper.ui.mycerts.rows import build_rows, days_text, detail_lines, elide, fit_text, signature
from helper.ui.mycerts.words import ARCHIVED_WORDS
from tests.support.tokens import Fixtures


def token(min_len: int | None = 4, max_len: int | None = 255, **kw: Any) -> TokenInfo:
    fields: dict[str, Any] = {
        "module_path": "/x/libsofthsm2.so",
        "slot_id": 1,
        "label": "测试Key",
        "serial": "0011223344556677",
        "manufacturer": "m",
        "model": "m",
        "flags": 0,
        "pin_state": PinState.OK,
        "pin_min_len": min_len,
        "pin_max_len": max_len,
    }
    fields.update(kw)
    return TokenInfo(**fields)


# --- 我的证书 -----------------------------------------------------------------------


@pytest.fixture
def views(driver: Pkcs11Driver, fixtures: Fixtures) -> list[Any]:
    return TokenService([ModuleStatus(driver.module_path, "config", driver=driver)]).snapshot()


def test_rows_cover_every_object(views: list[Any], fixtures: Fixtures) -> None:
    now = datetime.now(UTC)
    rows = build_rows(views, now)
    certs = fixtures.manifest["certificates"]
    assert len([r for r in rows if r.entry is not None]) == len(certs)
    kinds = {r.kind for r in rows}
    assert kinds == {"cert", "unreadable", "no_certificates"}
    assert len({r.iid for r in rows}) == len(rows)
    by_sha = {r.entry.model.sha256: r for r in rows if r.kind == "cert"}  # type: ignore[union-attr]
    sign, enc = (
        by_sha[fixtures.cert("company_sign")["sha256"]],
        by_sha[fixtures.cert("company_enc")["sha256"]],
    )
    assert sign.values[0].endswith("（签名）") and enc.values[0].endswith("（加密）")
    assert rows.index(sign) < rows.index(enc)  # the signing certificate first
    assert by_sha[fixtures.cert("expired")["sha256"]].tag == "expired"
    assert by_sha[fixtures.cert("expiring")["sha256"]].tag == "urgent"


def test_details_name_every_subject_field(views: list[Any], fixtures: Fixtures) -> None:
    now = datetime.now(UTC)
    rows = {r.iid: r for r in build_rows(views, now)}
    sm2 = next(
        r for r in rows.values() if r.entry and r.entry.obj.label == fixtures.cert("sm2")["label"]
    )
    lines = detail_lines(sm2, now)
    keys = [k for k, _, _ in lines]
    model = sm2.entry.model  # type: ignore[union-attr]
    assert len([k for k in keys if k.startswith("使用者")]) == len(model.subject)
    values = dict((k, v) for k, v, _ in lines)
    assert values["SHA-256 指纹 (Thumbprint)"].replace(" ", "") == model.sha256
    assert "SM2" in values["密钥 (Key)"]
    assert "签名 (Signing)" in values  # the SM2 note
    assert values["密码状态 (PIN)"] == "密码正常 (PIN ok)"
    unreadable = next(r for r in rows.values() if r.kind == "unreadable")
    assert any(k == "错误 (Error)" for k, _, _ in detail_lines(unreadable, now))


def test_an_archived_certificate_is_shown_as_archived(views: list[Any], fixtures) -> None:
    now = datetime.now(UTC)
    view = next(
        v for v in views if any(c.obj.label == "沧州市即将到期测试有限公司" for c in v.certificates)
    )
    entry = next(c for c in view.certificates if c.obj.label == "沧州市即将到期测试有限公司")
    obj = dataclasses.replace(entry.obj, label="archived-20261126:" + entry.obj.label)
    archived = dataclasses.replace(entry, obj=obj)
    changed = dataclasses.replace(view, certificates=[archived])
    (row,) = [r for r in build_rows([changed], now) if r.entry is archived]
    assert row.values[4] == ARCHIVED_WORDS and row.tag == "muted"
    state = dict((k, v) for k, v, _ in detail_lines(row, now))["状态 (State)"]
    assert state.startswith(ARCHIVED_WORDS)


def test_signature_changes_only_with_what_is_shown(views: list[Any]) -> None:
    now = datetime.now(UTC)
    modules: list[ModuleStatus] = []
    sig = signature(views, modules, now)
    assert signature(list(views), modules, now + timedelta(seconds=1)) == sig
    assert signature(views[1:], modules, now) != sig
    locked = dataclasses.replace(views[0].token, pin_state=PinState.LOCKED)
    changed = [dataclasses.replace(views[0], token=locked), *views[1:]]
    assert signature(changed, modules, now) != sig
    fewer = [dataclasses.replace(views[0], certificates=views[0].certificates[1:]), *views[1:]]
    assert signature(fewer, modules, now) != sig


def test_poller_reports_failures_and_snapshots(views: list[Any], driver: Pkcs11Driver) -> None:
    service = TokenService([ModuleStatus(driver.module_path, "config", driver=driver)])
    snap = Poller.take(service)
    assert isinstance(snap, Snapshot) and len(snap.views) == len(views)

    class Broken(TokenService):
        def snapshot(self) -> list[Any]:
            raise RuntimeError("boom")

    failed = Poller.take(Broken([]))
    assert isinstance(failed, Failure) and not failed.fatal


def test_export_helpers(tmp_path: Any) -> None:
    assert export_format("a.der") == "der" and export_format("a.CER") == "der"
    assert export_format("a.pem") == "pem" and export_format("a.crt") == "pem"
    assert certificate_file(b"\x30\x00", "der") == b"\x30\x00"
    assert certificate_file(b"\x30\x00", "pem").startswith(b"-----BEGIN CERTIFICATE-----")
    assert safe_filename("沧州/测试:公司?") == "沧州_测试_公司_"
    assert safe_filename("..") == "certificate"


def test_text_helpers() -> None:
    assert elide("59E23F274FEDEF31185362D0E0A4886D808D84D9") == "59E23F27…84D9"
    assert elide("0B40") == "0B40"
    assert days_text(-3, ExpiryState.EXPIRED).startswith("已过期")
    assert days_text(0, ExpiryState.URGENT).startswith("今天到期")
    assert days_text(12, ExpiryState.WARNING) == "12 天"
    fitted = fit_text("河北CA测试二级证书 HEBCA Test Issuing CA", 100, lambda s: 10 * len(s))
    assert fitted.endswith("…") and len(fitted) <= 10
    assert fit_text("短", 100, lambda s: 10 * len(s)) == "短"


# --- the window model ---------------------------------------------------------------


def _snapshot(views: list[Any], modules: list[ModuleStatus] | None = None) -> Snapshot:
    return Snapshot(views, modules or [ModuleStatus("/m.so", "config", driver=object())], NOW)  # type: ignore[arg-type]


NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_model_redraws_only_on_change_and_keeps_the_selection(views: list[Any]) -> None:
    model = MyCertsModel()
    assert model.apply(_snapshot(views), NOW) is True
    assert model.apply(_snapshot(views), NOW) is False  # the same keys: no redraw
    first, second = model.order[0], model.order[1]
    assert model.selection_after_redraw(None) == first
    assert model.selection_after_redraw(second) == second
    assert model.selection_after_redraw("gone") == first
    assert model.apply(_snapshot(views[:1]), NOW) is True  # a key removed


def test_model_selects_the_key_named_on_the_command_line_once(views: list[Any]) -> None:
    wanted = views[-1].token
    model = MyCertsModel(preferred_token=wanted.label)
    model.apply(_snapshot(views), NOW)
    chosen = model.selection_after_redraw(None)
    assert chosen is not None and model.rows[chosen].token.serial == wanted.serial
    assert model.preferred_token is None  # once: later redraws keep the person's choice
    assert model.selection_after_redraw(model.order[0]) == model.order[0]


def test_model_empty_screens() -> None:
    no_driver = MyCertsModel()
    no_driver.apply(_snapshot([], [ModuleStatus("/m.so", "config")]), NOW)
    assert no_driver.empty_screen() is NO_DRIVER
    no_key = MyCertsModel()
    no_key.apply(_snapshot([]), NOW)
    assert no_key.empty_screen() is NO_KEY and no_key.order == []
    failed = MyCertsModel()
    failed.apply(
        _snapshot([], [ModuleStatus("/bad.so", "config", error=E.ModuleLoadFailed())]), NOW
    )
    assert failed.module_warnings() == ["⚠ 驱动模块加载失败 (module failed): /bad.so"]


def test_model_buttons_pin_token_and_status(views: list[Any]) -> None:
    now = datetime.now(UTC)  # the fixture certificates are dated from the build
    model = MyCertsModel()
    model.apply(_snapshot(views), now)
    rows = [model.rows[i] for i in model.order]
    cert = next(r for r in rows if r.kind == "cert")
    unreadable = next(r for r in rows if r.kind == "unreadable")
    assert model.buttons(cert, now).export and not model.buttons(unreadable, now).export
    assert model.buttons(None, now).change_pin is (len(views) == 1)
    assert model.pin_token(cert) == cert.token
    expiring = next(
        r for r in rows if r.entry and r.entry.model and r.entry.model.days_left(now) < 30
    )
    assert model.buttons(expiring, now).renew_primary
    model.exported_to("/tmp/x.pem", "pem", "x.pem")
    assert model.status().endswith("已导出 (exported) PEM: x.pem")


def test_model_probe_lines_never_carry_more_than_the_window_shows(views: list[Any]) -> None:
    model = MyCertsModel()
    model.apply(_snapshot(views), NOW)
    lines = model.probe_lines(model.order[0], "status text", NOW)
    assert [line["type"] for line in lines] == ["row"] * len(model.order) + ["status"]
    assert lines[0]["selected"] and not any(line.get("selected") for line in lines[1:-1])
    assert lines[-1] == {
        "type": "status",
        "keys": len(views),
        "certificates": sum(len(v.certificates) for v in views),
        "empty": False,
        "refreshed": NOW.isoformat(),
        "status": "status text",
        "exported": None,
    }
