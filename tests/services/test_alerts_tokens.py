"""The scheduler over the session's SoftHSM tokens (softhsm-fixtures): key2 holds a
certificate 5 days from expiry and an expired one; key1 a HEBCA signing and
encryption pair valid for 335 days; the edge token a certificate without a key,
an unreadable object and an SM2 certificate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from helper.services.alerts import AlertScheduler, unique_alerts
from helper.services.tokens import CertEntry, ModuleStatus, TokenService
from tests.support.alerts import Clock
from tests.support.tokens import Fixtures


class SharedTokens(TokenService):
    """The session driver outlives this service."""

    def close(self) -> None:
        pass


def _entries(driver) -> list[CertEntry]:  # type: ignore[no-untyped-def]
    tokens = SharedTokens([ModuleStatus(driver.module_path, "config", driver=driver)])
    return [c for v in tokens.snapshot() for c in v.certificates]


def test_fixture_certificates(driver, fixtures: Fixtures, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    entries = _entries(driver)
    by_cn = {e.model.subject_cn: e for e in entries if e.model is not None}
    assert any(e.model is None for e in entries)  # the corrupt object is there, and ignored
    clock = Clock(datetime.now(UTC))
    alerts = AlertScheduler(tmp_path / "alerts.json", clock)

    found = alerts.check(entries)
    assert [(a.subject_cn, a.threshold) for a in found] == [
        ("沧州市已过期测试有限公司", "expired"),
        ("沧州市即将到期测试有限公司", "7"),
    ]
    assert found[1].days_left in (4, 5)
    assert found[0].token_label == fixtures.token("key2")["label"]
    assert alerts.check(entries) == []

    # 320 days on: the company pair is inside 30 days, the 5-day one has expired
    clock.at(clock.now + timedelta(days=320))
    found = alerts.check(entries)
    assert [(a.subject_cn, a.threshold) for a in found] == [
        ("沧州市即将到期测试有限公司", "expired"),
        ("沧州市测试科技有限公司", "30"),
        ("沧州市测试科技有限公司", "30"),
    ]
    assert len(unique_alerts(found)) == 2  # signing + encryption pair: told once
    assert "沧州市无私钥测试有限公司" in by_cn

    # a fresh scheduler (the daemon restarted) on the same state: nothing new
    assert AlertScheduler(tmp_path / "alerts.json", clock).due(entries) == []
    # two years on, everything else with a key has expired; the keyless certificates
    # (沧州市无私钥测试有限公司, the SM2 one) are never told
    clock.at(clock.now + timedelta(days=730))
    expired = AlertScheduler(tmp_path / "alerts.json", clock).check(entries)
    assert {a.threshold for a in expired} == {"expired"}
    assert sorted(a.subject_cn for a in expired) == [
        "沧州市测试科技有限公司",
        "沧州市测试科技有限公司",
        "沧州市测试贸易有限公司",
    ]
    assert "沧州市国密测试有限公司" in by_cn
