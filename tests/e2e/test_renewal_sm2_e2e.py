"""End to end with an SM2 key: headless Chromium renews the soft SKF key's expiring SM2
certificate at the demo CA (same key, and a new key pair in a new container), then logs
in to the demo hall with the renewed certificate; the hall's token verifies against the
SM2 root with helper.verify, and the renewed certificate's SM2-with-SM3 signature is
checked by OpenSSL 3 (distid) — not by the helper's code."""

from __future__ import annotations

import base64
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest
from aiohttp import web
from asn1crypto import pem

from helper.config import Config
from helper.daemon.compose import RunningBridge, start_bridge
from helper.demo.ca import create_ca_app
from helper.demo.ca_sm2 import Sm2Issuer
from helper.demo.hall import create_hall_app, split_ca_certificates
from helper.services.tls import ensure_identity, ssl_context
from helper.services.tokens import ModuleStatus
from helper.verify import new_challenge, verify_auth_token
from tests.support.browser import LoopThread, RenewalPrompter, trust_ca
from tests.support.doubles import SharedTokens
from tests.support.renewal import RenewalPki
from tests.support.skf import GmKeys

EXPIRING = "沧州市即将到期测试有限公司"


@dataclass
class Sm2Stack:
    ca_origin: str
    hall_origin: str
    home: Path
    prompter: RenewalPrompter


def _bound() -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def sm2_stack(
    tmp_path: Path, skf_driver: Any, gm_keys: GmKeys, renewal_pki: RenewalPki
) -> Iterator[Sm2Stack]:
    loop = LoopThread()
    runners: list[web.AppRunner | RunningBridge] = []
    sm2_ca = gm_keys.section["ca"]
    try:
        ca_sock, ca_origin = _bound()
        hall_sock, hall_origin = _bound()
        state = tmp_path / "state"
        identity = ensure_identity(state / "tls", keyring_backend=keyring.backends.fail.Keyring())
        config = Config(origins=[hall_origin])
        config.renewal_ca_origins = [ca_origin]
        config.renewal_ca_roots = [sm2_ca["root"]]
        prompter = RenewalPrompter()
        tokens = SharedTokens(
            [ModuleStatus(skf_driver.module_path, "config", driver=skf_driver, family="skf")]
        )
        bridge = loop.run(
            start_bridge(
                config,
                tokens=tokens,
                prompter=prompter,
                state_dir=state,
                ssl_ctx=ssl_context(identity),
                port=0,
            )
        )
        runners.append(bridge)
        helper_base = f"https://127.0.0.1:{bridge.port}"
        issuing = renewal_pki.issuing_cert()
        sm2_issuing = Path(sm2_ca["issuing"])
        ca_app = create_ca_app(
            issuing,
            renewal_pki.issuing_key(),
            chain=[issuing],
            origin=ca_origin,
            helper_base=helper_base,
            sm2=Sm2Issuer.load(sm2_issuing, sm2_issuing.with_suffix(".key")),
        )
        anchors, intermediates = split_ca_certificates([gm_keys.sm2_chain.read_bytes()])
        hall_app = create_hall_app(
            anchors, intermediates=intermediates, origin=hall_origin, helper_base=helper_base
        )

        async def serve(app: web.Application, sock: socket.socket) -> web.AppRunner:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            return runner

        runners.append(loop.run(serve(ca_app, ca_sock)))
        runners.append(loop.run(serve(hall_app, hall_sock)))
        home = tmp_path / "home"
        trust_ca(home, identity.paths.ca_cert)
        yield Sm2Stack(ca_origin, hall_origin, home, prompter)
    finally:
        for r in reversed(runners):
            loop.run(r.stop() if isinstance(r, RunningBridge) else r.cleanup())
        loop.stop()


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _openssl_verifies_issued(cert_der: bytes, issuing_pem: Path, tmp: Path) -> bool:
    """``openssl verify`` of the leaf's SM2-with-SM3 signature by the issuing CA, with the
    default ID (OpenSSL 3.0 applies ``distid`` to the leaf only, hence the partial chain;
    without the ID it fails)."""
    leaf = tmp / "renewed.pem"
    leaf.write_bytes(pem.armor("CERTIFICATE", cert_der))
    done = subprocess.run(
        ["openssl", "verify", "-partial_chain", "-CAfile", str(issuing_pem),
         "-vfyopt", "distid:1234567812345678", str(leaf)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode == 0


@pytest.mark.parametrize("new_key", [False, True], ids=["same-key", "new-key"])
def test_renew_an_sm2_certificate_then_log_in(
    skf_driver: Any,  # first: torn down after the stack
    gm_keys: GmKeys,
    sm2_stack: Sm2Stack,
    browser_page: Callable[[Path], Any],
    tmp_path: Path,
    new_key: bool,
) -> None:
    stack = sm2_stack
    old = gm_keys.cert("gm_expiring")
    page = browser_page(stack.home)
    page.goto(f"{stack.ca_origin}/")
    page.wait_for_selector("#cert-table[data-loaded=true]", timeout=30_000)
    row = f"#cert-rows tr[data-sha256='{old['sha256']}']"
    assert page.text_content(f"{row} .subject") == EXPIRING + "（签名）"
    page.click(f"{row} button.renew")
    page.wait_for_selector("#pay", state="visible")
    page.click("#pay")
    page.wait_for_selector("#extend", state="visible")
    if new_key:
        page.check("#key-new")
    page.click("#extend")
    page.wait_for_url("**/orders/*", timeout=90_000)
    assert page.text_content("#receipt-subject") == EXPIRING
    assert page.text_content("#receipt-key") == ("新密钥对" if new_key else "沿用原密钥")
    new_serial = page.text_content("#receipt-serial") or ""
    assert new_serial not in ("", "—", old["serial_hex"])
    receipt_iso = page.get_attribute("#receipt-not-after", "data-iso") or ""
    assert _utc(receipt_iso) == _utc(old["not_after"]) + timedelta(days=365)
    page.screenshot(path=str(tmp_path / "sm2-receipt.png"), full_page=True)
    assert [c.operation for c in stack.prompter.consents] == [
        "renewal.request",
        "renewal.install",
    ]

    # the hall logs in with the renewed SM2 certificate (the old one is no longer offered)
    stack.prompter.pick_serial = new_serial
    page.goto(f"{stack.hall_origin}/ish/")
    page.wait_for_function("() => window.CertHelper !== undefined", timeout=10_000)
    page.click("#ca-login")
    page.click("#ca-hebca")
    page.wait_for_url("**/ish/home", timeout=30_000)
    assert page.text_content("#company") == EXPIRING
    assert page.text_content("#cert-serial") == new_serial
    _, choices = stack.prompter.picks[-1]
    assert old["serial_hex"] not in [c.serial_hex for c in choices]

    challenge = new_challenge()
    token = page.evaluate("(c) => CertHelper.authenticate(c)", challenge)
    assert token["algorithm"] == "SM2SM3"
    anchors, intermediates = split_ca_certificates([gm_keys.sm2_chain.read_bytes()])
    identity = verify_auth_token(
        token, challenge, stack.hall_origin, anchors, intermediates=intermediates
    )
    assert identity.serial_hex == new_serial
    cert_der = base64.b64decode(token["certificate"])
    issuing = Path(gm_keys.section["ca"]["issuing"])
    assert _openssl_verifies_issued(cert_der, issuing, tmp_path)
