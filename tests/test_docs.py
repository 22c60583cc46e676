"""The documentation stays true: every error code is in docs/errors.md."""

from __future__ import annotations

import helper.bridge.hebca.refused  # each import registers its errors
import helper.bridge.native.api
import helper.errors
import helper.services.gate
import helper.services.renewal
import helper.verify  # noqa: F401
from drivers.errors import ALL_ERRORS
from tests.support.tokens import ROOT


def test_every_error_code_is_documented() -> None:
    text = (ROOT / "docs" / "errors.md").read_text("utf-8")
    for cls in ALL_ERRORS:
        row = f"| `{cls.code}` | {cls.exit_code} | {cls.message_zh} | {cls.message_en} |"
        assert row in text, f"docs/errors.md lacks or misstates: {row}"


def test_readme_leads_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text("utf-8")
    head = text[: text.index("\n## ", text.index("make test"))]
    assert "make demo" in head and "make test" in head
