"""A table of HEBCA functions by wire name; each concern module fills its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from helper.bridge.hebca.connection import HebcaConnection

Handler = Callable[[HebcaConnection, dict[str, Any]], Awaitable[dict[str, Any]]]


class FunctionTable:
    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}

    def __call__(self, *names: str) -> Callable[[Handler], Handler]:
        """Register the decorated handler under each wire name."""

        def deco(h: Handler) -> Handler:
            for name in names:
                self.handlers[name] = h
            return h

        return deco
