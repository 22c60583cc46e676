"""Reading PINs in the terminal: getpass on the TTY, or lines on stdin for scripts.

A PIN is wrapped in :class:`drivers.types.Pin` the moment it is read and is
never echoed, logged or passed on a command line.
"""

from __future__ import annotations

import getpass
import sys

from drivers.errors import BadInput
from drivers.types import Pin
from helper.errors import Cancelled


class PinReader:
    def __init__(self, *, from_stdin: bool) -> None:
        self.from_stdin = from_stdin

    def read(self, prompt: str) -> Pin:
        if self.from_stdin:
            line = sys.stdin.readline()
            if not line:
                raise BadInput(detail="stdin ended before all PINs were read")
            return Pin(line.rstrip("\r\n"))
        try:
            return Pin(getpass.getpass(prompt))
        except EOFError:
            raise Cancelled() from None
        except getpass.GetPassWarning:  # pragma: no cover - no TTY and echo would leak
            raise BadInput(detail="no terminal: use --stdin / --pin-stdin") from None
