"""Real windows under Xvfb, driven by xdotool (see shared desktop-testing notes): a
pytest plugin (tests/conftest.py loads it), so every suite gets ``xvfb``, ``desk``
and ``shots_dir``.

One Xvfb for the whole session on a display number it picks itself
(``-displayfd``: no race with another Xvfb starting at the same time). Tests pass
``DISPLAY`` to the prompter through its ``env``; this process's environment is
left alone. Screenshots go to a temporary folder (or ``$CERTHELPER_UI_SHOTS``),
printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helper.services.prompts import ConsentRequest
from helper.ui.prompter import TkPrompter

TOOLS = {"Xvfb": "xvfb", "xdotool": "xdotool", "xdpyinfo": "x11-utils", "import": "imagemagick"}
WM_CLASS = "certhelper"
#: the dialogs ignore input this long after they appear (helper.ui.dialogs.base), plus margin
INPUT_DELAY = 0.85
_SHOTS: list[Path] = []


def _require_tools() -> None:
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        pytest.fail(
            "UI tests need " + " ".join(missing) + " (and fonts-noto-cjk): run `make test`, "
            "which installs them"
        )


@dataclass
class Desktop:
    display: str
    shots: Path
    _env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._env = {**os.environ, "DISPLAY": self.display}

    # --- X -------------------------------------------------------------------

    def run(self, *argv: str, timeout: float = 10, check: bool = True) -> str:
        proc = subprocess.run(
            argv, env=self._env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{argv} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def xdo(self, *args: str, timeout: float = 10) -> str:
        return self.run("xdotool", *args, timeout=timeout)

    def windows(self) -> list[str]:
        """The visible certhelper windows right now."""
        out = self.run("xdotool", "search", "--onlyvisible", "--class", WM_CLASS, check=False)
        return out.split()

    def wait_window(
        self, timeout: float = 15, *, focus: bool = True, settle: float = INPUT_DELAY
    ) -> str:
        """Wait for a visible certhelper window, give it the keyboard focus, and wait
        out the dialogs' input delay (``settle=0``: act at once, as a page trying to
        keyjack would: the window is polled for every 20 ms, not xdotool's --sync)."""
        end = time.monotonic() + timeout
        while not (found := self.windows()):
            if time.monotonic() > end:
                raise AssertionError(f"no certhelper window appeared within {timeout} s")
            time.sleep(0.02)
        wid = found[0]
        if focus:
            self.xdo("windowfocus", "--sync", wid)
        if settle:
            time.sleep(0.15 + settle)  # Tk settles its focus widget; the input delay ends
        return wid

    def wait_gone(self, timeout: float = 10) -> None:
        end = time.monotonic() + timeout
        while self.windows():
            if time.monotonic() > end:
                raise AssertionError("the certhelper window is still open")
            time.sleep(0.05)

    def type(self, text: str) -> None:
        # real key events (no --window: Tk ignores synthetic ones)
        self.xdo("type", "--delay", "40", text)

    def key(self, *keys: str) -> None:
        for k in keys:
            self.xdo("key", k)
            time.sleep(0.08)

    def geometry(self, wid: str) -> tuple[int, int, int, int]:
        out = self.xdo("getwindowgeometry", "--shell", wid)
        values = dict(line.split("=", 1) for line in out.split())
        return int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])

    def screenshot(self, name: str) -> Path:
        # `import -window <id>` is black for Tk windows; the root window works
        path = self.shots / f"{name}.png"
        self.run("import", "-window", "root", str(path), timeout=20)
        _SHOTS.append(path)
        return path

    def pixels(self) -> tuple[int, int, bytes]:
        """The whole screen as raw RGB bytes (width, height, data)."""
        out = subprocess.run(
            ["import", "-window", "root", "-depth", "8", "rgb:-"],
            env=self._env,
            capture_output=True,
            timeout=20,
            check=True,
        ).stdout
        w, h = (int(v) for v in self.run("xdpyinfo").split("dimensions:")[1].split()[0].split("x"))
        assert len(out) == w * h * 3
        return w, h, out

    def shown_texts(self, request: ConsentRequest) -> list[str]:
        """Every text the consent window for ``request`` shows (labels, buttons, the
        text box), read from the built widget tree in a child process."""
        proc = subprocess.run(
            [sys.executable, "-c", _SHOWN_TEXTS],
            input=json.dumps(dataclasses.asdict(request)),
            env=self._env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"the consent window failed: {proc.stderr[-2000:]}")
        return list(json.loads(proc.stdout))

    # --- prompters -----------------------------------------------------------

    def prompter(self, **kwargs: Any) -> TkPrompter:
        env = {"DISPLAY": self.display, **kwargs.pop("env", {})}
        return TkPrompter(env=env, **kwargs)

    def drive(self, ask: Coroutine[Any, Any, Any], steps: Callable[[], Any] | None = None) -> Any:
        """Run a prompter call while ``steps`` (blocking xdotool work) runs in a
        thread; return the call's result (or raise its error)."""

        async def main() -> Any:
            task = asyncio.create_task(ask)
            if steps is not None:
                try:
                    await asyncio.to_thread(steps)
                except BaseException as exc:
                    if task.done() and task.exception() is not None:
                        raise AssertionError(f"the prompter failed: {task.exception()!r}") from exc
                    task.cancel()
                    raise
            return await asyncio.wait_for(task, 60)

        return asyncio.run(main())


@pytest.fixture(scope="session")
def xvfb() -> Any:
    """An Xvfb server for the session: its DISPLAY string (e.g. ":3")."""
    _require_tools()
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.close(write_fd)
    try:
        number = b""
        with os.fdopen(read_fd, "rb") as r:
            number = r.readline().strip()
        if not number:
            _, err = proc.communicate(timeout=5)
            pytest.fail(f"Xvfb did not start: {err.decode(errors='replace')[-500:]}")
        display = ":" + number.decode()
        env = {**os.environ, "DISPLAY": display}
        for _ in range(100):  # until it accepts connections
            if subprocess.run(["xdpyinfo"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"Xvfb on {display} does not accept connections")
        yield display
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def shots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("CERTHELPER_UI_SHOTS")
    if chosen:
        path = Path(chosen)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("ui-shots")


@pytest.fixture
def desk(xvfb: str, shots_dir: Path) -> Any:
    d = Desktop(xvfb, shots_dir)
    assert not d.windows(), "a dialog from an earlier test is still open"
    yield d
    d.wait_gone()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _SHOTS:
        terminalreporter.write_line(
            f"window screenshots ({len(_SHOTS)}): {_SHOTS[0].parent}", bold=True
        )


_SHOWN_TEXTS = """
import json, sys
from helper.ui.dialogs.consent import ConsentDialog
from helper.ui.dialogs.protocol import parse_consent
dialog = ConsentDialog(parse_consent(json.loads(sys.stdin.read())), timeout=30)
dialog.root.update_idletasks()
texts, todo = [], [dialog.root]
while todo:
    w = todo.pop()
    todo.extend(w.winfo_children())
    if w.winfo_class() == "Text":
        texts.append(w.get("1.0", "end-1c"))
    elif "text" in w.keys() and str(w.cget("text")):
        texts.append(str(w.cget("text")))
dialog.root.destroy()
print(json.dumps(texts, ensure_ascii=False))
"""
