"""OS integration (autostart, TLS trust, URL schemes): ``certhelper install`` / ``uninstall``.

User level by default (no root): ``install`` makes sure the per-install TLS identity
exists (``<data dir>/tls``), then

- autostart: ``$XDG_CONFIG_HOME/autostart/certhelper.desktop`` runs ``certhelper run``
  (XDG autostart rather than a systemd user unit: see installer/autostart.py);
  :func:`installer.autostart.status` is what ``certhelper doctor`` can check;
- URL schemes ``P11://`` and ``certhelper://``: ``$XDG_DATA_HOME/applications/
  certhelper-url.desktop`` (``MimeType=x-scheme-handler/p11;x-scheme-handler/certhelper;``,
  ``Exec=certhelper open-url %u``), made the default with ``xdg-mime default`` and
  checked with ``xdg-mime query default``; ``update-desktop-database`` when present;
- the browser extension's native-messaging host ``org.certhelper.host``: a launcher
  ``<data dir>/certhelper-native-host`` and user-level host manifests for Chromium,
  Chrome, Edge (``allowed_origins``) and Firefox (``allowed_extensions``)
  (installer/native_host.py);
- TLS trust: the local CA in ``~/.pki/nssdb`` (created when missing) and in every
  Firefox profile with a ``cert9.db``, through ``certutil`` (libnss3-tools);
- ``--system`` (root): also ``/usr/local/share/ca-certificates/certhelper-local-ca.crt``
  and ``update-ca-certificates``, the browser policy (policy.py) and the polkit action
  that lets 检测修复 run ``certhelper-admin`` (polkit.py, admin.py, elevate.py).

Every change is recorded in ``<data dir>/install-manifest.json`` (installer/manifest.py);
``uninstall`` removes exactly those and restores the previous URL handlers. Running
``install`` twice changes nothing the second time; running it after the identity was
regenerated replaces the old CA entry.

Test-only hooks: ``CERTHELPER_SYSTEM_CA_DIR`` (the system anchor directory; also lifts
the root requirement) and ``CERTHELPER_UPDATE_CA_CERTIFICATES`` (the command run instead
of ``update-ca-certificates``).
"""
