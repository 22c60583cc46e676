"""Native dialogs (Tk), each run in its own short-lived child process.

``python -m helper.ui`` reads one JSON request line on stdin, shows the window
and writes one JSON result line on stdout (see :mod:`helper.ui.dialogs`);
:class:`helper.ui.prompter.TkPrompter` is the daemon's side of that pipe.
Nothing here imports tkinter at import time: the daemon needs only the prompter.
"""
