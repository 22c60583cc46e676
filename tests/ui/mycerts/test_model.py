"""What the two windows decide, without driving them: rows, redraw signature,
export formats, the PIN policy as typed, outcome texts, the test hook; and the
change-PIN window's one-C_SetPIN-per-click rule with a driver double."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from drivers.pkcs11.driver import Pkcs11Driver
from drivers.types import PinState, TokenInfo
from helper.domain.expiry import ExpiryState
from helper.services.tokens import ModuleStatus, TokenService
from helper.ui.mycerts.export import certificate_file, export_format, safe_filename
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
