"""The dialog process: one JSON request in, one window, one JSON result out.

Run as ``python -m helper.ui``. The protocol, one line each way (UTF-8 JSON):

request (stdin)::

    {"dialog": "pin" | "consent" | "picker", "timeout": 120, ...fields...}

    pin      the fields of helper.services.prompts.PinRequest
    consent  the fields of helper.services.prompts.ConsentRequest
    picker   {"origin": str, "insecure_origin": bool, "choices": [CertChoice fields, ...]}

result (stdout)::

    {"result": "ok", "pin": "..."}                         pin
    {"result": "ok", "choice": "once" | "always" | "deny"} consent
    {"result": "ok", "id": "..."}                          picker
    {"result": "cancel"} | {"result": "timeout"} | {"result": "error", "detail": "..."}

The parent keeps stdin open while the dialog is up; end-of-file on stdin (the
parent went away) cancels the dialog. The PIN leaves this process only on
stdout: it is never logged, never written to stderr and never put in a file.
A PIN request for a locked token is refused without opening a window
(``{"result": "error", "detail": "pin_locked"}``).

Every window has WM class ``certhelper``, a title starting with 证书助手, stays on
top, opens centred with its first field focused; Enter submits (in the consent
dialog: presses the focused button), Escape and closing the window cancel, and
the request's ``timeout`` (default 120 s) ends it with ``timeout``.

Layout: ``protocol`` (the request/result lines and the child's main), ``texts``
(Tk-free wording), ``base`` (the shared frame) and one module per dialog:
``pin``, ``consent``, ``picker``.
"""
