"""The end-to-end tests reuse the Xvfb desktop of tests/ui for the real dialogs,
and the browser stack of test_browser_login."""

from tests.e2e.test_browser_login import browser_page, start_stack  # noqa: F401  (fixtures)
from tests.ui.conftest import desk, shots_dir, xvfb  # noqa: F401
