"""``python -m helper.ui``: run one dialog (JSON request on stdin, result on stdout).

The process ends as soon as the answer is written: ``os._exit`` skips the
interpreter's shutdown, which has nothing left to do here and would otherwise
wait on the thread that watches stdin.
"""

import os
import sys

from helper.ui.dialogs.protocol import main

code = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
