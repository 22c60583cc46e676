"""AlertScheduler with a clock the test moves (no display, no token)."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from helper.services.alerts import (
    FORGET_AFTER,
    Alert,
    AlertScheduler,
    default_state_path,
    notification_text,
    threshold_for,
    unique_alerts,
)
from tests.support.alerts import COMPANY, OTHER_TOKEN, T0, Clock, entry, unreadable

DAY = timedelta(days=1)
NOT_AFTER = T0 + 40 * DAY


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "data" / "alerts.json"


def thresholds(alerts: list[Alert]) -> list[str]:
    return [a.threshold for a in alerts]


def test_each_threshold_is_announced_once_as_time_passes(state: Path) -> None:
    clock = Clock()
    certs = [entry(NOT_AFTER)]
    alerts = AlertScheduler(state, clock)

    assert alerts.check(certs) == []  # 40 days left
    assert alerts.check(certs) == []
    clock.at(NOT_AFTER - 31 * DAY)
    assert alerts.check(certs) == []  # 31 days left

    clock.at(NOT_AFTER - 30 * DAY)
    (first,) = alerts.check(certs)
    assert (first.threshold, first.days_left) == ("30", 30)
    assert first.sha256 == certs[0].model.sha256  # type: ignore[union-attr]
    assert (first.subject_cn, first.token_label) == (COMPANY, "HEBCA USB Key")
    assert first.not_after == NOT_AFTER
    assert alerts.check(certs) == []  # again: nothing
    clock.at(NOT_AFTER - 20 * DAY)
    assert alerts.check(certs) == []  # still inside the 30-day band

    clock.at(NOT_AFTER - 7 * DAY)
    assert thresholds(alerts.check(certs)) == ["7"]
    clock.at(NOT_AFTER - 3 * DAY)
    assert alerts.check(certs) == []

    clock.at(NOT_AFTER - 1 * DAY)
    assert thresholds(alerts.check(certs)) == ["1"]
    clock.at(NOT_AFTER - timedelta(hours=2))  # 0 days left: still the "1" band
    assert alerts.check(certs) == []

    clock.at(NOT_AFTER)  # at notAfter the certificate is expired
    (expired,) = alerts.check(certs)
    assert (expired.threshold, expired.days_left) == ("expired", 0)
    clock.at(NOT_AFTER + 30 * DAY)
    assert alerts.check(certs) == []
    assert alerts.announced(first.sha256) == ("30", "7", "1", "expired")


def test_thresholds_follow_days_left() -> None:
    assert threshold_for(NOT_AFTER, NOT_AFTER - 31 * DAY) is None
    assert threshold_for(NOT_AFTER, NOT_AFTER - 31 * DAY + timedelta(seconds=1)) == "30"
    assert threshold_for(NOT_AFTER, NOT_AFTER - 8 * DAY) == "30"
    assert threshold_for(NOT_AFTER, NOT_AFTER - 8 * DAY + timedelta(seconds=1)) == "7"
    assert threshold_for(NOT_AFTER, NOT_AFTER - 2 * DAY + timedelta(seconds=1)) == "1"
    assert threshold_for(NOT_AFTER, NOT_AFTER - timedelta(seconds=1)) == "1"
    assert threshold_for(NOT_AFTER, NOT_AFTER) == "expired"


def test_a_fresh_scheduler_on_the_same_file_remembers(state: Path) -> None:
    clock = Clock(NOT_AFTER - 30 * DAY)
    certs = [entry(NOT_AFTER)]
    assert thresholds(AlertScheduler(state, clock).check(certs)) == ["30"]

    again = AlertScheduler(state, clock)
    assert again.due(certs) == []
    clock.at(NOT_AFTER - 7 * DAY)
    assert thresholds(again.check(certs)) == ["7"]
    assert AlertScheduler(state, clock).due(certs) == []


def test_first_seen_at_five_days_gets_only_the_seven_day_alert(state: Path) -> None:
    clock = Clock(NOT_AFTER - 5 * DAY)
    certs = [entry(NOT_AFTER)]
    alerts = AlertScheduler(state, clock)
    (alert,) = alerts.check(certs)
    assert (alert.threshold, alert.days_left) == ("7", 5)
    assert alerts.announced(alert.sha256) == ("7",)
    assert alerts.check(certs) == []
    clock.at(NOT_AFTER - DAY)
    assert thresholds(alerts.check(certs)) == ["1"]


def test_first_seen_expired_gets_only_expired(state: Path) -> None:
    clock = Clock(NOT_AFTER + 10 * DAY)
    alerts = AlertScheduler(state, clock)
    (alert,) = alerts.check([entry(NOT_AFTER)])
    assert (alert.threshold, alert.days_left) == ("expired", -10)


def test_a_clock_set_back_does_not_repeat_a_milder_alert(state: Path) -> None:
    clock = Clock(NOT_AFTER - 7 * DAY)
    certs = [entry(NOT_AFTER)]
    alerts = AlertScheduler(state, clock)
    assert thresholds(alerts.check(certs)) == ["7"]
    clock.at(NOT_AFTER - 25 * DAY)
    assert alerts.check(certs) == []


def test_a_renewed_certificate_starts_fresh(state: Path) -> None:
    clock = Clock(NOT_AFTER - 5 * DAY)
    old = entry(NOT_AFTER)
    alerts = AlertScheduler(state, clock)
    assert thresholds(alerts.check([old])) == ["7"]

    # renewed at the CA office: the key now holds the new certificate only
    renewed = entry(NOT_AFTER + 20 * DAY)
    assert renewed.model.sha256 != old.model.sha256  # type: ignore[union-attr]
    (alert,) = alerts.check([renewed])
    assert (alert.threshold, alert.sha256) == ("30", renewed.model.sha256)  # type: ignore[union-attr]


def test_an_old_certificate_left_beside_its_renewal_is_not_announced(state: Path) -> None:
    clock = Clock(NOT_AFTER - 5 * DAY)
    old, renewed = entry(NOT_AFTER), entry(NOT_AFTER + 365 * DAY, key_id=b"\x02")
    alerts = AlertScheduler(state, clock)
    assert alerts.check([old, renewed]) == []
    clock.at(NOT_AFTER + DAY)
    assert alerts.check([old, renewed]) == []
    # the same subject on another key is not a renewal of this one
    other_key = entry(NOT_AFTER + 365 * DAY, token=OTHER_TOKEN)
    assert thresholds(alerts.due([old, other_key])) == ["expired"]


def test_an_archived_certificate_is_never_announced(state: Path) -> None:
    from dataclasses import replace

    clock = Clock(NOT_AFTER - 5 * DAY)
    old = entry(NOT_AFTER)
    archived = replace(old, obj=replace(old.obj, label="archived-20261126:" + old.obj.label))
    alerts = AlertScheduler(state, clock)
    assert alerts.check([archived]) == []
    assert thresholds(alerts.check([old])) == ["7"]  # the same certificate, unarchived


def test_reset_forgets_what_was_announced(state: Path) -> None:
    clock = Clock(NOT_AFTER - 5 * DAY)
    old = entry(NOT_AFTER)
    alerts = AlertScheduler(state, clock)
    assert thresholds(alerts.check([old])) == ["7"]
    assert alerts.check([old]) == []
    sha = old.model.sha256  # type: ignore[union-attr]
    alerts.reset(sha, "0" * 64)
    assert alerts.announced(sha) == ()
    assert AlertScheduler(state, clock).announced(sha) == ()  # written to the file
    assert thresholds(alerts.check([old])) == ["7"]


def test_only_readable_certificates_with_a_private_key(state: Path) -> None:
    clock = Clock(NOT_AFTER - 5 * DAY)
    no_key = entry(NOT_AFTER, "沧州市无私钥测试有限公司", key=False)
    alerts = AlertScheduler(state, clock)
    assert alerts.check([no_key, unreadable()]) == []


def test_due_records_nothing(state: Path) -> None:
    clock = Clock(NOT_AFTER - 5 * DAY)
    certs = [entry(NOT_AFTER)]
    alerts = AlertScheduler(state, clock)
    assert thresholds(alerts.due(certs)) == ["7"]
    assert thresholds(alerts.due(certs)) == ["7"]
    assert not state.exists()
    assert AlertScheduler(state, clock).due(certs) != []
    alerts.mark(alerts.due(certs))
    assert alerts.due(certs) == []
    assert state.exists()


def test_several_certificates_most_severe_first(state: Path) -> None:
    clock = Clock(T0)
    certs = [
        entry(T0 + 20 * DAY, "沧州市甲公司", key_id=b"\x01"),
        entry(T0 - 3 * DAY, "沧州市乙公司", key_id=b"\x02"),
        entry(T0 + 4 * DAY, "沧州市丙公司", key_id=b"\x03"),
        entry(T0 + 100 * DAY, "沧州市丁公司", key_id=b"\x04"),
    ]
    alerts = AlertScheduler(state, clock).check(certs)
    assert [(a.subject_cn, a.threshold) for a in alerts] == [
        ("沧州市乙公司", "expired"),
        ("沧州市丙公司", "7"),
        ("沧州市甲公司", "30"),
    ]


def test_state_file_is_user_only_json(state: Path) -> None:
    clock = Clock(NOT_AFTER - 30 * DAY)
    certs = [entry(NOT_AFTER)]
    AlertScheduler(state, clock).check(certs)
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    data = json.loads(state.read_text("utf-8"))
    sha = certs[0].model.sha256  # type: ignore[union-attr]
    assert data == {
        "version": 1,
        "certificates": {sha: {"announced": ["30"], "last_seen": "2026-06-11T12:00:00Z"}},
    }
    assert sorted(p.name for p in state.parent.iterdir()) == ["alerts.json"]  # no temp files


def test_a_world_readable_state_file_becomes_user_only(state: Path) -> None:
    state.parent.mkdir(parents=True)
    state.write_text('{"version": 1, "certificates": {}}')
    state.chmod(0o644)
    AlertScheduler(state, Clock(NOT_AFTER - 30 * DAY)).check([entry(NOT_AFTER)])
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'{"version": 1, "certificates": []}',
        b'{"version": 1, "certificates": {"ab": "30", "cd": {"announced": "30"}}}',
        b"",
    ],
    ids=["broken", "binary", "list", "wrong-shape", "wrong-entries", "empty"],
)
def test_a_corrupt_state_file_is_empty_and_rewritten(state: Path, content: bytes) -> None:
    state.parent.mkdir(parents=True)
    state.write_bytes(content)
    clock = Clock(NOT_AFTER - 30 * DAY)
    certs = [entry(NOT_AFTER)]
    alerts = AlertScheduler(state, clock)
    assert thresholds(alerts.check(certs)) == ["30"]
    data = json.loads(state.read_text("utf-8"))
    (recorded,) = data["certificates"].values()
    assert recorded["announced"] == ["30"]
    assert AlertScheduler(state, clock).due(certs) == []


def test_unknown_thresholds_in_the_file_are_ignored(state: Path) -> None:
    certs = [entry(NOT_AFTER)]
    sha = certs[0].model.sha256  # type: ignore[union-attr]
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"certificates": {sha: {"announced": ["90", 7, "30"]}}}))
    alerts = AlertScheduler(state, Clock(NOT_AFTER - 20 * DAY))
    assert alerts.announced(sha) == ("30",)
    assert alerts.due(certs) == []


def test_an_unusable_state_path_never_crashes(tmp_path: Path) -> None:
    """The path is a folder: it cannot be read or replaced; alerts still work and
    are remembered for the life of the scheduler."""
    state = tmp_path / "alerts.json"
    state.mkdir()
    clock = Clock(NOT_AFTER - 30 * DAY)
    certs = [entry(NOT_AFTER)]
    alerts = AlertScheduler(state, clock)
    assert thresholds(alerts.check(certs)) == ["30"]
    assert alerts.check(certs) == []
    assert state.is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["alerts.json"]  # no temp file left


def test_an_unreadable_state_file_is_empty(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state.parent.mkdir(parents=True)
    state.write_text('{"version": 1, "certificates": {}}')
    real = Path.read_text

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        if self == state:
            raise PermissionError(13, "Permission denied")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", denied)
    alerts = AlertScheduler(state, Clock(NOT_AFTER - 30 * DAY))
    assert thresholds(alerts.check([entry(NOT_AFTER)])) == ["30"]


def test_forget_missing_prunes_long_absent_certificates(state: Path) -> None:
    clock = Clock(NOT_AFTER - 5 * DAY)
    kept, gone = entry(NOT_AFTER), entry(NOT_AFTER, "沧州市旧公司", key_id=b"\x02")
    sha_kept, sha_gone = kept.model.sha256, gone.model.sha256  # type: ignore[union-attr]
    alerts = AlertScheduler(state, clock)
    assert len(alerts.check([kept, gone])) == 2

    clock.at(clock.now + FORGET_AFTER)
    alerts.forget_missing({sha_kept})  # exactly 400 days: still remembered
    assert alerts.announced(sha_gone) == ("7",)
    clock.at(clock.now + DAY)
    alerts.forget_missing({sha_kept})
    assert alerts.announced(sha_gone) == ()
    assert alerts.announced(sha_kept) == ("7",)
    data = json.loads(state.read_text("utf-8"))
    assert list(data["certificates"]) == [sha_kept]
    assert data["certificates"][sha_kept]["last_seen"].startswith(clock.now.date().isoformat())

    # seen again and again: it stays, whatever the time
    clock.at(clock.now + 2 * FORGET_AFTER)
    alerts.forget_missing({sha_kept})
    assert alerts.announced(sha_kept) == ("7",)


def test_forget_missing_writes_only_when_something_changed(state: Path) -> None:
    clock = Clock(NOT_AFTER - 5 * DAY)
    kept = entry(NOT_AFTER)
    alerts = AlertScheduler(state, clock)
    alerts.check([kept])
    inode = state.stat().st_ino  # every write replaces the file: a new inode
    clock.at(clock.now + timedelta(hours=6))
    alerts.forget_missing({kept.model.sha256})  # type: ignore[union-attr]
    assert state.stat().st_ino == inode  # seen within the day: nothing to write
    clock.at(clock.now + 2 * DAY)
    alerts.forget_missing({kept.model.sha256})  # type: ignore[union-attr]
    assert state.stat().st_ino != inode


def test_default_state_path_is_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_state_path() == tmp_path / "certhelper" / "alerts.json"


# --- the text of an alert --------------------------------------------------------


def _alert(threshold: str, days: int, cn: str = COMPANY) -> Alert:
    return Alert("ab" * 32, cn, "HEBCA USB Key", NOT_AFTER, days, threshold)  # type: ignore[arg-type]


def test_titles_are_chinese_first_with_english_beside() -> None:
    assert _alert("30", 30).title() == "证书 30 天内到期 (certificate expires within 30 days)"
    assert _alert("7", 4).title() == "证书 7 天内到期 (certificate expires within 7 days)"
    assert _alert("1", 0).title() == "证书 1 天内到期 (certificate expires within 1 day)"
    assert _alert("expired", -3).title() == "证书已过期 (certificate has expired)"


def test_messages() -> None:
    date = NOT_AFTER.astimezone().strftime("%Y-%m-%d")
    assert _alert("7", 4).message() == (
        f"「{COMPANY}」的证书将于 {date} 到期，剩余 4 天。请及时办理证书延期。 "
        f"(The certificate of {COMPANY} expires on {date}, in 4 days. Please renew it in time.)"
    )
    one = _alert("1", 1).message()
    assert "剩余 1 天" in one and "in 1 day." in one
    assert "剩余不足 1 天" in _alert("1", 0).message()
    assert "in less than a day" in _alert("1", 0).message()
    expired = _alert("expired", -3)
    assert expired.message().startswith(f"「{COMPANY}」的证书已于 {date} 过期")
    assert expired.days_text() == "已过期 3 天"
    assert _alert("expired", 0).days_text() == "已过期"
    assert _alert("30", 12).days_text() == "剩余 12 天"
    assert "未命名证书" in _alert("30", 12, cn="").message()


def test_to_dict_is_json_ready() -> None:
    data = _alert("7", 4).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["not_after"] == "2026-07-11T12:00:00Z"
    assert data["title"] == _alert("7", 4).title()
    assert data["threshold"] == "7" and data["days_left"] == 4


def test_signing_and_encryption_halves_are_told_once(state: Path) -> None:
    """A HEBCA key holds a signing and an encryption certificate for the same holder."""
    clock = Clock(NOT_AFTER - 5 * DAY)
    sign = entry(NOT_AFTER, key_id=b"\x01")
    enc = entry(NOT_AFTER, usage="encrypt", key_id=b"\x02")
    alerts = AlertScheduler(state, clock).check([sign, enc])
    assert len(alerts) == 2  # each certificate is remembered on its own
    assert len(unique_alerts(alerts)) == 1
    title, message = notification_text(alerts)
    assert title == alerts[0].title() and message == alerts[0].message()


def test_notification_text_for_several() -> None:
    title, message = notification_text([_alert("30", 20, "沧州市甲公司"), _alert("7", 3)])
    assert title == "2 张证书需要延期 (2 certificates need renewal)"
    assert message.startswith(f"「{COMPANY}」")  # the most severe first
    assert "另有 1 张" in message
    with pytest.raises(ValueError):
        notification_text([])
