"""TrayState from token and certificate situations (real certificates)."""

from __future__ import annotations

from drivers.types import PinState
from helper.tray.state import TOOLTIP_MAX, Status, TrayState, compute_state
from tests.support.tray import NOW, token, view


def test_no_key() -> None:
    state = compute_state([], NOW)
    assert state.status is Status.NO_KEY
    assert state.tooltip == "证书助手 — 未检测到 USB Key"


def test_all_well() -> None:
    state = compute_state([view(certs=[("沧州市测试科技有限公司", 200)])], NOW)
    assert state == TrayState(Status.NORMAL)
    assert state.tooltip == "证书助手 — 一切正常"


def test_an_empty_key_is_still_a_key() -> None:
    assert compute_state([view()], NOW).status is Status.NORMAL


def test_expiring_within_30_days() -> None:
    state = compute_state([view(certs=[("沧州市测试科技有限公司", 4.5)])], NOW)
    assert state.status is Status.ATTENTION
    assert state.tooltip == "证书助手 — 证书「沧州市测试科技有限公司」4 天后到期"


def test_thirty_days_is_attention_thirty_one_is_not() -> None:
    assert compute_state([view(certs=[("甲", 30.5)])], NOW).status is Status.ATTENTION
    assert compute_state([view(certs=[("甲", 31.5)])], NOW).status is Status.NORMAL


def test_last_day_and_expired() -> None:
    today = compute_state([view(certs=[("甲", 0.25)])], NOW)
    assert today.reasons == ("证书「甲」今天到期",)
    gone = compute_state([view(certs=[("乙", -3)])], NOW)
    assert gone.status is Status.ATTENTION
    assert gone.reasons == ("证书「乙」已过期",)


def test_certificates_without_their_key_do_not_count() -> None:
    """CA certificates and leftovers on the key are not the person's to renew."""
    v = view(certs=[("甲", 300)], without_key=[("某CA", -10), ("旧证书", 3)])
    assert compute_state([v], NOW).status is Status.NORMAL


def test_unreadable_objects_are_ignored() -> None:
    assert compute_state([view(certs=[("甲", 300)], unreadable=True)], NOW).status is Status.NORMAL


def test_pin_to_be_changed_flag() -> None:
    info = token(label="河北CA测试Key1", pin_state=PinState.TO_BE_CHANGED)
    state = compute_state([view(info, [("甲", 300)])], NOW)
    assert state.status is Status.ATTENTION
    assert state.reasons == ("USB Key「河北CA测试Key1」仍在使用初始密码，请修改",)


def test_login_with_the_initial_pin() -> None:
    v = view(token(serial="AB12", label="Key1"), [("甲", 300)])
    assert compute_state([v], NOW).status is Status.NORMAL
    state = compute_state([v], NOW, initial_pin={"AB12"})
    assert state.status is Status.ATTENTION
    assert "初始密码" in state.tooltip
    assert compute_state([v], NOW, initial_pin={"OTHER"}).status is Status.NORMAL


def test_reasons_most_pressing_first() -> None:
    one = view(token(serial="S1", label="Key1"), [("晚到期", 20), ("早到期", 3), ("过期了", -1)])
    two = view(token(serial="S2", label="Key2", pin_state=PinState.TO_BE_CHANGED), [])
    state = compute_state([one, two], NOW)
    assert state.reasons == (
        "证书「过期了」已过期",
        "USB Key「Key2」仍在使用初始密码，请修改",
        "证书「早到期」3 天后到期",
        "证书「晚到期」20 天后到期",
    )
    assert state.tooltip == "证书助手 — 证书「过期了」已过期（另有 3 项需要注意）"
    assert state.summary == "证书「过期了」已过期（另有 3 项需要注意）"


def test_a_certificate_on_two_keys_counts_on_each() -> None:
    a = view(token(serial="S1"), [("甲", 3)])
    b = view(token(serial="S2"), [("甲", 3)])
    assert len(compute_state([a, b], NOW).reasons) == 2


def test_long_names_keep_the_tooltip_short() -> None:
    long_cn = "沧州市" + "x" * 55  # a CN holds at most 64 bytes
    v = view(certs=[(long_cn, -1)] + [(f"证书{i}", 5) for i in range(40)])
    state = compute_state([v], NOW)
    assert len(state.tooltip) <= TOOLTIP_MAX
    assert state.tooltip.startswith("证书助手 — 证书「沧州市xxx")
    assert "…" in state.reasons[0] and state.tooltip.endswith("（另有 40 项需要注意）")
    huge = TrayState(Status.ATTENTION, ("很长的原因" * 40,))
    assert len(huge.tooltip) == TOOLTIP_MAX and huge.tooltip.endswith("…")


def test_an_archived_certificate_never_needs_attention() -> None:
    """After a renewal the old certificate stays on the key, archived (its label says
    so): the tray speaks of the renewed one only (issue: the tooltip kept announcing the
    archived certificate's expiry, also after a restart)."""
    import dataclasses

    v = view(token(), [("沧州市即将到期测试有限公司", 4.5), ("沧州市即将到期测试有限公司", 369)])
    old = v.certificates[0]
    label = "archived-20261205:" + old.obj.label
    v.certificates[0] = dataclasses.replace(old, obj=dataclasses.replace(old.obj, label=label))
    assert v.certificates[0].archived
    assert compute_state([v], NOW) == TrayState(Status.NORMAL, ())
