"""``python -m helper.ui``: run one dialog (JSON request on stdin, result on stdout)."""

from helper.ui.dialogs import main

raise SystemExit(main())
