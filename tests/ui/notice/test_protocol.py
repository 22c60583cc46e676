"""The notice process's protocol and text layout, and show_notice's handling of its
child (with stand-in interpreters): no display needed."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
import unicodedata
from datetime import timedelta
from pathlib import Path

import pytest

from helper.services.alerts import Alert
from helper.ui.notice.client import show_notice
from helper.ui.notice.content import (
    doctor_summary,
    expiry_request,
    parse_alerts,
    parse_findings,
    split_bilingual,
)
from helper.ui.notice.protocol import main
from helper.ui.notice.wrap import wrap_text
from tests.support.alerts import COMPANY, T0
from tests.support.dialogs import children_of


def width(text: str) -> int:
    """A stand-in font: Chinese characters 2 units, everything else 1."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def alert(threshold: str = "7", days: int = 4, cn: str = COMPANY, label: str = "Key") -> Alert:
    return Alert("ab" * 32, cn, label, T0 + timedelta(days=days), days, threshold)  # type: ignore[arg-type]


# --- text ---------------------------------------------------------------------------


def test_split_bilingual() -> None:
    assert split_bilingual("证书已过期 (certificate has expired)") == (
        "证书已过期",
        "certificate has expired",
    )
    assert split_bilingual("甲 (a (b) c)") == ("甲", "a (b) c")
    assert split_bilingual("只有中文") == ("只有中文", "")
    assert split_bilingual("（全角括号）") == ("（全角括号）", "")
    assert split_bilingual("x(y)") == ("x(y)", "")


def test_wrap_keeps_numbers_with_their_units_and_punctuation_off_line_starts() -> None:
    text = alert().message_zh()
    for room in range(24, 90):
        lines = wrap_text(text, width, room).split("\n")
        assert "".join(lines) == text, (room, lines)  # no space was a break
        assert all(width(line) <= room for line in lines), (room, lines)
        assert not any(line[:1] in "，。、）」" for line in lines), (room, lines)
        assert not any(line[-1:] in "（「" for line in lines), (room, lines)
        assert any("余 4 天" in line for line in lines), (room, lines)
        assert any("于 2026-" in line for line in lines), (room, lines)


def test_wrap_breaks_english_only_at_spaces() -> None:
    text = "The certificate of example expires on 2026-12-01, in 4 days. Please renew it."
    lines = wrap_text(text, width, 30).split("\n")
    assert all(width(line) <= 30 for line in lines)
    assert " ".join(lines) == text
    assert wrap_text("short", width, 30) == "short"


def test_wrap_cuts_what_cannot_fit_and_keeps_explicit_lines() -> None:
    assert wrap_text("abcdefghij", width, 4) == "abcd\nefgh\nij"
    assert wrap_text("第一行\n第二行", width, 100) == "第一行\n第二行"
    assert wrap_text("", width, 10) == ""


# --- requests -----------------------------------------------------------------------


def test_parse_alerts_dedupes_and_orders() -> None:
    request = expiry_request(
        [alert("30", 20, "甲公司"), alert("expired", -2, "乙公司"), alert("30", 20, "甲公司")],
        "https://www.hebca.com",
    )
    assert json.loads(json.dumps(request)) == request
    records = parse_alerts(request)
    assert [(r["subject_cn"], r["threshold"]) for r in records] == [
        ("乙公司", "expired"),
        ("甲公司", "30"),
    ]
    assert records[0]["title_zh"] == "证书已过期"
    assert records[0]["days_text"] == "已过期 2 天"


def test_parse_alerts_needs_only_title_and_message() -> None:
    (record,) = parse_alerts(
        {"alerts": [{"title": "证书 7 天内到期 (expires soon)", "message": "请延期 (renew)"}]}
    )
    assert (record["title_zh"], record["title_en"]) == ("证书 7 天内到期", "expires soon")
    assert (record["message_zh"], record["message_en"]) == ("请延期", "renew")
    assert record["threshold"] == "30"  # no threshold: the mildest colour


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"alerts": []},
        {"alerts": "x"},
        {"alerts": [1]},
        {"alerts": [{"title": "t"}]},
        {"alerts": [{"title": ["t"], "message": "m"}]},
    ],
)
def test_bad_alerts(data: dict) -> None:  # type: ignore[type-arg]
    from helper.ui.dialogs.protocol import BadRequest

    with pytest.raises(BadRequest):
        parse_alerts(data)


def test_findings_and_summary() -> None:
    findings = parse_findings(
        {
            "findings": [
                {"level": "ok", "code": "config", "message": "配置"},
                {"level": "odd", "code": "x", "message": "怪"},
                {"level": "error", "code": "pin_locked", "message": "", "fix": "解锁"},
            ]
        }
    )
    assert [f["level"] for f in findings] == ["ok", "warning", "error"]
    assert findings[2]["message"] == "pin_locked"
    assert doctor_summary(findings) == ("发现 2 个问题 (2 problems found)", "error")
    assert doctor_summary(findings[:2]) == ("发现 1 个问题 (1 problem found)", "warning")
    assert doctor_summary(findings[:1]) == ("一切正常 (everything is fine)", "ok")
    assert doctor_summary([]) == ("一切正常 (everything is fine)", "ok")


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        ("", "bad_request: no request"),
        ("{not json\n", "bad_request: the request is not JSON"),
        ("[1]\n", "bad_request: the request is not a JSON object"),
        ('{"kind": "nope"}\n', "bad_request: unknown kind"),
        ('{"kind": "expiry"}\n', "bad_request: missing field 'alerts'"),
        ('{"kind": "doctor"}\n', "bad_request: missing field 'findings'"),
        ('{"kind": "about", "timeout": -1}\n', "bad_request: invalid field 'timeout'"),
    ],
)
def test_child_refuses_bad_requests_before_any_window(line: str, detail: str) -> None:
    out = io.StringIO()
    assert main(io.StringIO(line), out) == 0
    assert json.loads(out.getvalue()) == {"result": "error", "detail": detail}


def test_no_display_is_an_error_answer() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "helper.ui.notice"],
        input=b'{"kind": "about"}\n',
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "DISPLAY": ":0.987"},
        timeout=30,
    )
    reply = json.loads(proc.stdout)
    assert reply["result"] == "error" and reply["detail"].startswith("no_display")


# --- show_notice --------------------------------------------------------------------


def fake_python(tmp_path: Path, body: str) -> str:
    """A stand-in interpreter: a shell script that ignores ``-m helper.ui.notice``."""
    path = tmp_path / "python"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def test_request_reaches_the_child(tmp_path: Path) -> None:
    seen = tmp_path / "request.json"
    python = fake_python(tmp_path, f"read line; echo \"$line\" > {seen}; echo "
                         "'{\"result\": \"renew\"}'")  # fmt: skip
    request = expiry_request([alert()], "https://www.hebca.com")
    assert asyncio.run(show_notice(request, python=python)) == "renew"
    assert json.loads(seen.read_text("utf-8")) == request


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('echo \'{"result": "changepin"}\'', "changepin"),
        ('echo \'{"result": "rerun"}\'', "rerun"),
        ('echo \'{"result": "close", "detail": "timeout"}\'', "close"),
        ('echo \'{"result": "error", "detail": "no_display"}\'', "close"),
        ('echo \'{"result": "launch-missiles"}\'', "close"),
        ("echo '[\"renew\"]'", "close"),
        ("echo 'not json'", "close"),
        ("exit 3", "close"),
        ("kill -SEGV $$", "close"),
    ],
    ids=["changepin", "rerun", "timeout", "error", "unknown", "list", "garbage", "exit", "crash"],
)
def test_anything_but_a_known_answer_is_close(tmp_path: Path, body: str, expected: str) -> None:
    python = fake_python(tmp_path, "read line; " + body)
    assert asyncio.run(show_notice({"kind": "support"}, python=python)) == expected


def test_missing_interpreter_is_close() -> None:
    assert asyncio.run(show_notice({"kind": "about"}, python="/nonexistent/python")) == "close"


def test_a_silent_child_is_killed_after_the_requests_timeout(tmp_path: Path) -> None:
    python = fake_python(tmp_path, "read line; exec sleep 60")
    start = time.monotonic()
    result = asyncio.run(show_notice({"kind": "about", "timeout": 0.3}, python=python, grace=0.5))
    assert result == "close"
    assert time.monotonic() - start < 5
    assert not _children()


def test_cancelling_the_call_kills_the_child(tmp_path: Path) -> None:
    python = fake_python(tmp_path, "read line; exec sleep 60")

    async def scenario() -> None:
        task = asyncio.create_task(show_notice({"kind": "about"}, python=python))
        await asyncio.sleep(0.5)
        assert _children()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert not _children()


def _children() -> list[int]:
    """This process's stand-in children still running."""
    out = []
    for pid in children_of(os.getpid()):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"sleep"):
            out.append(pid)
    return out
