"""TkPrompter's handling of its child, and the child's protocol.

Most of these use a stand-in for the interpreter (a shell script that answers
as the dialog process would, or misbehaves), so they need no display.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drivers.types import PinState
from helper.errors import CertificateNotFound, DialogFailed, UserCancelled, UserTimeout
from helper.services.prompts import ConsentChoice
from helper.ui.prompter import TkPrompter
from tests.support.desktop import Desktop
from tests.support.dialogs import choices, consent_request, pin_request


def fake_python(tmp_path: Path, body: str, name: str = "python") -> str:
    """A stand-in interpreter: a shell script that ignores ``-m helper.ui``."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_request_reaches_the_child_on_stdin(tmp_path: Path) -> None:
    seen = tmp_path / "request.json"
    python = fake_python(tmp_path, f"read line; echo \"$line\" > {seen}; echo "
                         "'{\"result\": \"ok\", \"choice\": \"always\"}'")  # fmt: skip
    prompter = TkPrompter(python=python, timeout=7)
    assert run(prompter.ask_consent(consent_request())) is ConsentChoice.ALWAYS
    request = json.loads(seen.read_text())
    assert request["dialog"] == "consent"
    assert request["timeout"] == 7
    assert request["origin"] == "https://hall.example.gov.cn"
    assert request["allow_always"] is True


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ('{"result": "cancel"}', UserCancelled),
        ('{"result": "timeout"}', UserTimeout),
        ('{"result": "error", "detail": "boom"}', DialogFailed),
        ('{"result": "ok"}', DialogFailed),  # no PIN
        ('{"result": "ok", "pin": ""}', DialogFailed),
        ('{"result": "maybe"}', DialogFailed),
        ("[1, 2]", DialogFailed),
        ("not json at all", DialogFailed),
    ],
)
def test_answers_map_to_errors(tmp_path: Path, answer: str, error: type[Exception]) -> None:
    python = fake_python(tmp_path, f"read line; echo '{answer}'")
    with pytest.raises(error):
        run(TkPrompter(python=python).ask_pin(pin_request()))


def test_locked_answer_is_pin_locked(tmp_path: Path) -> None:
    from drivers.errors import PinLocked

    python = fake_python(
        tmp_path, """read line; echo '{"result": "error", "detail": "pin_locked"}'"""
    )
    with pytest.raises(PinLocked):
        run(TkPrompter(python=python).ask_pin(pin_request()))


def test_error_detail_is_kept(tmp_path: Path) -> None:
    python = fake_python(tmp_path, """read line; echo '{"result": "error", "detail": "boom"}'""")
    with pytest.raises(DialogFailed) as info:
        run(TkPrompter(python=python).ask_pin(pin_request()))
    assert info.value.detail == "boom"


def test_crash_without_answer(tmp_path: Path) -> None:
    python = fake_python(tmp_path, "echo 'Traceback: it broke' >&2; exit 3")
    with pytest.raises(DialogFailed) as info:
        run(TkPrompter(python=python).ask_pin(pin_request()))
    assert "(3)" in str(info.value.detail)


def test_missing_interpreter() -> None:
    with pytest.raises(DialogFailed):
        run(TkPrompter(python="/nonexistent/python3").ask_pin(pin_request()))


def test_picker_answer_must_be_one_of_the_choices(tmp_path: Path) -> None:
    python = fake_python(tmp_path, """read line; echo '{"result": "ok", "id": "cert-x"}'""")
    with pytest.raises(DialogFailed):
        run(TkPrompter(python=python).pick_certificate("https://a.example", False, choices()))
    with pytest.raises(CertificateNotFound):
        run(TkPrompter(python=python).pick_certificate("https://a.example", False, []))


def test_always_refused_where_not_offered(tmp_path: Path) -> None:
    python = fake_python(tmp_path, """read line; echo '{"result": "ok", "choice": "always"}'""")
    request = consent_request(operation="sign.data", text="x", allow_always=False)
    with pytest.raises(DialogFailed):
        run(TkPrompter(python=python).ask_consent(request))


def test_silent_child_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    python = fake_python(tmp_path, f"echo $$ > {pidfile}; exec sleep 60")
    start = time.monotonic()
    with pytest.raises(UserTimeout):
        run(TkPrompter(python=python, timeout=0.4, grace=0.4).ask_pin(pin_request()))
    assert time.monotonic() - start < 5
    pid = int(pidfile.read_text())
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped


def test_caller_going_away_kills_the_child(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    python = fake_python(tmp_path, f"echo $$ > {pidfile}; exec sleep 60")

    async def main() -> None:
        task = asyncio.create_task(TkPrompter(python=python).ask_pin(pin_request()))
        while not pidfile.exists() or not pidfile.read_text().strip():
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert not Path(f"/proc/{int(pidfile.read_text())}").exists()


def test_stderr_is_logged_at_debug(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    python = fake_python(
        tmp_path, """read line; echo 'warning from tk' >&2; echo '{"result": "cancel"}'"""
    )
    caplog.set_level(logging.DEBUG, logger="helper.ui.prompter")
    with pytest.raises(UserCancelled):
        run(TkPrompter(python=python).ask_pin(pin_request()))
    lines = [r for r in caplog.records if "warning from tk" in r.getMessage()]
    assert lines and all(r.levelno == logging.DEBUG for r in lines)
    # the request (stdin) is never logged: not even the certificate subject in it
    assert "130902199001011234" not in caplog.text


def test_one_dialog_at_a_time(tmp_path: Path) -> None:
    log = tmp_path / "log"
    python = fake_python(
        tmp_path,
        f"read line; echo start >> {log}; sleep 0.3; echo end >> {log}; "
        'echo \'{"result": "ok", "choice": "once"}\'',
    )
    prompter = TkPrompter(python=python)

    async def main() -> list[ConsentChoice]:
        return await asyncio.gather(*(prompter.ask_consent(consent_request()) for _ in range(3)))

    assert run(main()) == [ConsentChoice.ONCE] * 3
    assert log.read_text().split() == ["start", "end"] * 3


def test_no_display_is_dialog_failed() -> None:
    with pytest.raises(DialogFailed) as info:
        run(TkPrompter(env={"DISPLAY": ""}).ask_consent(consent_request()))
    assert str(info.value.detail).startswith("no_display")


# --- the child's protocol, spoken directly -------------------------------------


def child(line: str, env: dict[str, str] | None = None) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-m", "helper.ui"],
        input=line,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1
    return json.loads(proc.stdout)


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        ("", "bad_request: no request"),
        ("{nope\n", "bad_request: the request is not JSON"),
        ("[]\n", "bad_request: the request is not a JSON object"),
        ('{"dialog": "format_disk"}\n', "bad_request: unknown dialog"),
        ('{"dialog": "pin", "origin": "x"}\n', "bad_request: missing field 'insecure_origin'"),
        ('{"dialog": "consent", "timeout": -1}\n', "bad_request: invalid field 'timeout'"),
        ('{"dialog": "picker", "origin": "x", "choices": []}\n', "bad_request: missing field"),
    ],
)  # fmt: skip
def test_child_refuses_bad_requests(line: str, detail: str) -> None:
    answer = child(line, {"DISPLAY": ""})
    assert answer["result"] == "error"
    assert str(answer["detail"]).startswith(detail)


def test_child_refuses_locked_pin_before_any_display() -> None:
    from dataclasses import asdict

    request = {"dialog": "pin", **asdict(pin_request(PinState.LOCKED))}
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = subprocess.run(
        [sys.executable, "-m", "helper.ui"],
        input=json.dumps(request) + "\n",
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert json.loads(proc.stdout) == {"result": "error", "detail": "pin_locked"}
    assert proc.stderr == ""


def test_child_cancels_when_its_parent_goes_away(desk: Desktop) -> None:
    from dataclasses import asdict

    request = {"dialog": "pin", **asdict(pin_request())}
    proc = subprocess.Popen(
        [sys.executable, "-m", "helper.ui"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "DISPLAY": desk.display},
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(request).encode() + b"\n")
        proc.stdin.flush()
        desk.wait_window()
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert json.loads(out) == {"result": "cancel", "detail": "parent_gone"}
    desk.wait_gone()


def test_second_request_waits_for_the_first_window(desk: Desktop) -> None:
    prompter = desk.prompter()
    counts: list[int] = []

    def steps() -> None:
        desk.wait_window()
        counts.append(len(desk.windows()))
        desk.key("shift+Tab", "shift+Tab", "Return")  # the first: allow once
        time.sleep(0.3)
        desk.wait_window()
        counts.append(len(desk.windows()))
        desk.key("Escape")  # the second: cancel

    async def both() -> list[object]:
        return await asyncio.gather(
            prompter.ask_consent(consent_request()),
            prompter.ask_consent(consent_request(operation="certificates.list")),
            return_exceptions=True,
        )

    first, second = desk.drive(both(), steps)
    assert first is ConsentChoice.ONCE
    assert isinstance(second, UserCancelled)
    assert counts == [1, 1]
