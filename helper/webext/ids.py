"""The extension IDs the native host admits: one place for both browsers.

Chromium-family browsers derive the ID from the ``key`` in ``extension/manifest.json``
(:func:`chromium_id_from_key`); ``extension/EXTENSION_ID`` holds the same value for
the tests and the docs. Firefox uses the add-on ID the built manifest declares in
``browser_specific_settings.gecko.id``.
"""

from __future__ import annotations

import base64
import hashlib

#: = chromium_id_from_key(extension/manifest.json "key") (tests/webext checks it)
CHROMIUM_EXTENSION_ID = "bniodglhnplciakekmjejpapdbegcfee"
FIREFOX_ADDON_ID = "certhelper@certhelper.org"


def chromium_id_from_key(key_b64: str) -> str:
    """Chromium's extension ID for a manifest ``key``: the first 32 hex digits of
    SHA-256(DER public key), each digit 0-f written as a-p."""
    digest = hashlib.sha256(base64.b64decode(key_b64, validate=True)).hexdigest()[:32]
    return "".join(chr(ord("a") + int(c, 16)) for c in digest)
