"""修改密码 — change the PIN of a USB key, in a window of its own.

Run as ``python -m helper.ui.changepin [--token LABEL|SERIAL]`` (the tray and
我的证书 spawn it; it also works alone, without the daemon). The process loads
the configuration (``$CERTHELPER_CONFIG`` is honoured), builds its own
:class:`~helper.services.tokens.TokenService` and closes it on exit.

- A key chooser when several keys are inserted and no ``--token`` was given;
  the key's PIN state (tries low, final try, initial PIN to be changed).
- A locked PIN shows guidance (unlock at the CA office) and no fields at all:
  nothing is ever sent to a locked key.
- 当前密码, 新密码, 确认新密码 (masked). The foundation's policy
  (:mod:`helper.domain.pin_policy`: the key's length range, not the current
  PIN, never 123456, printable ASCII) is checked as you type: errors in red
  under the fields, the weak-PIN warning in amber; 确定 is enabled only when the
  policy passes and the confirmation matches. Enter submits when allowed,
  Escape closes.
- 确定 runs C_SetPIN once, in a worker thread (the window stays responsive),
  and never retries. A wrong current PIN shows 当前密码错误 with the PIN state
  read afterwards and clears the fields; success shows 密码修改成功 and closes
  the window after 1.5 s.

PINs live only in the Entry widgets and, for the call, in
:class:`~drivers.types.Pin` objects; they are never logged, printed or written
to the probe file.

Test hooks (environment):

``CERTHELPER_UI_PROBE=<path>``
    The window appends one JSON line per visible change: ``ready`` (key, PIN
    state, locked, fields shown, chooser shown), ``check`` (确定 enabled, the
    policy's error and warning codes, the messages shown), ``refused`` (Enter
    or 确定 while not allowed), ``busy``, ``result`` (outcome, message text,
    PIN state, fields cleared) and ``exit`` (the exit code). Never a PIN.
``CERTHELPER_TEST_HOOKS=1`` with ``CERTHELPER_TEST_PIN_STATE=<state>``
    A test double for what SoftHSM cannot do: every key the window reads
    reports that PIN state (``locked``, ``final_try``, ``count_low``,
    ``to_be_changed``). Ignored unless ``CERTHELPER_TEST_HOOKS=1``.

Exit codes: 0 the PIN was changed; 1 closed without a change; 2 configuration
error; 3 no display / no Tk.

Layout: ``policy`` (live checks), ``outcome`` (the change and its messages) and
``model`` (the window's state) import no Tk; ``view`` is the window;
``__main__`` the entry point.
"""
