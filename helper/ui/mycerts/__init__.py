"""我的证书 — every certificate on every inserted USB key, in a window of its own.

Run as ``python -m helper.ui.mycerts [--token SERIAL]`` (the tray spawns it; it
also works alone, without the daemon). The process loads the configuration
(``$CERTHELPER_CONFIG`` is honoured), builds its own read-only
:class:`~helper.services.tokens.TokenService` and closes it on exit.

- A table of the certificates (使用者, 颁发者, 序列号, 有效期至, 剩余天数, USB Key),
  coloured by expiry: red expired, orange ≤ 7 days, amber ≤ 30 days. Unreadable
  certificate objects, keys without any certificate and keys that could not be
  read are rows that say so.
- A details pane for the selected row: every subject field, issuer, serial,
  validity, key type and size, key usage, EKU, SHA-256, HEBCA unique ID, the
  SM2 signing note, the key's PIN state.
- 导出证书 (PEM or DER, by the extension chosen in the save dialog), 修改密码
  (spawns ``python -m helper.ui.changepin --token <serial>``), 证书延期 (opens the
  configured renewal URL), 刷新.
- Every second a background thread (never the Tk thread) re-scans the modules
  (SoftHSM shows new token directories only after re-initialisation) and takes
  a snapshot; the window redraws only when the keys, their certificates or
  their PIN states changed, keeping the selection when it can. Insertion and
  removal therefore show within 2 s.

``--token SERIAL`` (or label) selects that key's first row when it first appears.

Test hooks (environment; they only ever write what the window shows, never a PIN):

``CERTHELPER_UI_PROBE=<path>``
    After every redraw, selection change and export the window rewrites
    ``<path>`` (atomically) with one JSON line per table row (``"type": "row"``:
    kind, token serial/label, PIN state, subject, issuer, serial, not_after,
    days_left, expiry_state, sha256, has_private_key, selected, the shown
    values) and a last line ``"type": "status"`` (keys, certificates, empty,
    refreshed, status text, last export). A change-PIN window opened from here
    writes its own probe lines to ``<path>.changepin``.
``CERTHELPER_EXPORT_DIR=<dir>``
    导出证书 skips the save dialog and writes ``<dir>/<sha256[:16]>.pem``
    (``.der`` when ``CERTHELPER_EXPORT_FORMAT=der``).

Exit codes: 0 closed normally; 2 configuration error; 3 no display / no Tk.

Layout: the model (``rows``, ``model``, ``poller``, ``export``, ``words``) imports
no Tk and is tested without a display; ``view`` is the thin Tk window;
``__main__`` the entry point.
"""
