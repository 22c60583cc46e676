"""The browser extension as certhelper ships it (issue 15, docs/extension.md).

- :mod:`.ids`: the extension IDs the native host admits (one place);
- :mod:`.host`: what ``certhelper install`` and 修复 register as the native host;
- :mod:`.build`: ``certhelper extension build``, an unpacked extension whose content
  scripts run on the configured hall and CA origins only.

The extension's source (``extension/`` at the repository root) is the source of truth;
the relay itself (the native host process) lives in ``helper.bridge.extension``.
"""
