"""``python -m helper.ui.notice``: one notice window."""

import os
import sys

from helper.ui.notice.protocol import main

code = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)  # nothing left to do; do not wait for the stdin watcher
