"""The extension ID the native host admits is the one Chromium derives from the key."""

from __future__ import annotations

import base64
import hashlib
import json

from helper.webext.ids import CHROMIUM_EXTENSION_ID, chromium_id_from_key
from tests.support.installer import ROOT

EXT = ROOT / "extension"


def test_the_constant_is_derived_from_the_manifest_key() -> None:
    key = json.loads((EXT / "manifest.json").read_text("utf-8"))["key"]
    # Chromium's rule, written out here independently of chromium_id_from_key
    digest = hashlib.sha256(base64.b64decode(key)).hexdigest()[:32]
    derived = digest.translate(str.maketrans("0123456789abcdef", "abcdefghijklmnop"))
    assert derived == CHROMIUM_EXTENSION_ID
    assert chromium_id_from_key(key) == CHROMIUM_EXTENSION_ID
    assert (EXT / "EXTENSION_ID").read_text("utf-8").strip() == CHROMIUM_EXTENSION_ID


def test_another_key_gives_another_id() -> None:
    other = base64.b64encode(b"not our key").decode()
    assert chromium_id_from_key(other) != CHROMIUM_EXTENSION_ID
    assert len(chromium_id_from_key(other)) == 32
    assert set(chromium_id_from_key(other)) <= set("abcdefghijklmnop")
