"""The renewal tests use the bridge tests' ``state`` directory fixture; the
renewal token fixtures come from tests/renewal/fixtures.py (a root plugin)."""

from tests.bridge.conftest import state  # noqa: F401  (fixture)
