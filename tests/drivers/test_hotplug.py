"""Hot-plug as SoftHSM shows it: a token directory appearing and disappearing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from drivers.hotplug import HotplugPoller
from drivers.pkcs11.driver import Pkcs11Driver
from drivers.types import Pin
from tests.support.tokens import BUILD, USER_PIN, Fixtures

SPEC = textwrap.dedent(
    """
    schema = "certhelper-pki/1"
    profiles = ["test"]
    [pins]
    user_pin = "123456"
    so_pin = "12345678"
    [ca.root]
    file = "root-ca"
    subject = { C = "CN", CN = "热插拔测试根" }
    key = { type = "RSA", bits = 2048 }
    not_before_days = -1
    validity_days = 365
    key_usage = ["key_cert_sign", "crl_sign"]
    [ca.issuing]
    file = "issuing-ca"
    subject = { C = "CN", CN = "热插拔测试二级" }
    key = { type = "RSA", bits = 2048 }
    not_before_days = -1
    validity_days = 365
    key_usage = ["key_cert_sign", "crl_sign"]
    [[token]]
    name = "plug"
    label = "热插拔Key"
    profiles = ["test"]
    """
)


@pytest.fixture
def new_token_dir(tmp_path: Path) -> Path:
    """A token directory built elsewhere, ready to be 'plugged' into the session's."""
    spec = tmp_path / "plug.toml"
    spec.write_text(SPEC, "utf-8")
    out = tmp_path / "plug"
    proc = subprocess.run(
        [sys.executable, str(BUILD), str(out), "--spec", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (token_dir,) = [p for p in (out / "tokens").iterdir() if p.is_dir()]
    return token_dir


def test_insert_and_remove(driver: Pkcs11Driver, fixtures: Fixtures, new_token_dir: Path) -> None:
    poller = HotplugPoller([driver], rescan_every=1)
    first = poller.poll()
    assert {e.kind for e in first} == {"inserted"}
    assert len(first) == len(fixtures.manifest["tokens"])
    assert poller.poll() == []  # nothing changed

    tokendir = fixtures.dir / "tokens"
    plugged = tokendir / new_token_dir.name
    shutil.copytree(new_token_dir, plugged)
    try:
        events = poller.poll()
        assert [(e.kind, e.token.label) for e in events] == [("inserted", "热插拔Key")]
    finally:
        shutil.rmtree(plugged)
    events = poller.poll()
    assert [(e.kind, e.token.label) for e in events] == [("removed", "热插拔Key")]
    assert poller.poll() == []


def test_removed_while_logged_in(driver: Pkcs11Driver, fixtures: Fixtures, new_token_dir) -> None:
    """A token whose directory vanishes while loaded: listing survives SoftHSM's
    GeneralError, reports the removal, and drops the login."""
    tokendir = fixtures.dir / "tokens"
    plugged = tokendir / new_token_dir.name
    shutil.copytree(new_token_dir, plugged)
    try:
        driver.list_tokens(rescan=True)
        serial = next(t.serial for t in driver.list_tokens() if t.label == "热插拔Key")
        poller = HotplugPoller([driver], rescan_every=1)
        poller.poll()
        driver.login(serial, Pin(USER_PIN))
        assert driver.is_logged_in(serial)
    finally:
        shutil.rmtree(plugged)
    events = poller.poll()  # no rescan while logged in: the slot itself must fail
    assert [(e.kind, e.token.serial) for e in events] == [("removed", serial)]
    assert not driver.is_logged_in(serial)
    driver.list_tokens(rescan=True)  # and the module recovers
    assert serial not in {t.serial for t in driver.list_tokens()}
