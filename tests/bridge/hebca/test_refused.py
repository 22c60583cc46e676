"""Functions no web page may reach: each gets 1007, leaves an audit entry, and
has no effect — nothing run, killed, written, read, sent or imported
(docs/hebca-compat.md, "Refused for every page")."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support.hebca import REFUSED, b64, call, js, ok, running_hebca
from tests.support.tokens import USER_PIN

VERSION_KEY = "\\HKEY_CURRENT_USER\\Software\\Hebca\\ClientX"
RUN_KEY = "\\HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run"
FILE_KEY = b64(b"0123456789abcdef")


def run(coro):
    return asyncio.run(coro)


@dataclass
class Ctx:
    tmp: Path
    url: str  # a listener that counts connections
    cert: str  # a real certificate, base64 DER

    @property
    def executed(self) -> Path:
        return self.tmp / "executed"

    @property
    def plain(self) -> Path:
        return self.tmp / "plain.txt"


WIN_SRC = r"C:\Users\test\Documents\合同.txt"
WIN_DST = r"C:\Users\test\Documents\合同.enc"


def _files(src: str, dst: str) -> str:
    # the client concatenates: backslashes arrive raw
    return '{"key":"' + FILE_KEY + '","src":"' + src + '","dst":"' + dst + '"}'


CASES: list[tuple[str, str, Callable[[Ctx], str | None]]] = [
    (
        "Execute",
        "touch",
        lambda c: '{"filename":"/usr/bin/touch","args":"' + str(c.executed) + '","wait":true}',
    ),
    (
        "Execute",
        "sh",
        lambda c: (
            '{"filename":"/bin/sh","args":"-c \'touch ' + str(c.executed) + '\'","wait":false}'
        ),
    ),
    (
        "Execute",
        "windows",
        lambda c: r'{"filename":"C:\Windows\System32\cmd.exe","args":"/c calc.exe","wait":true}',
    ),
    ("KillProcess", "sleep", lambda c: '{"name":"sleep","wait":true}'),
    (
        "WriteRegB64",
        "string",
        lambda c: js(key=b64(VERSION_KEY), name=b64("version"), value=b64("99.0.0")),
    ),
    (
        "WriteRegB64",
        "number",
        lambda c: '{"key":"' + b64(VERSION_KEY) + '","name":"' + b64("version") + '","value":1}',
    ),
    (
        "WriteRegB64",
        "run-key",
        lambda c: js(key=b64(RUN_KEY), name=b64("updater"), value=b64(r"C:\Temp\evil.exe")),
    ),
    ("GetMachineInfo", "none", lambda c: None),
    ("EncryptFile", "windows", lambda c: _files(WIN_SRC, WIN_DST)),
    (
        "EncryptFile",
        "local",
        lambda c: _files(str(c.plain), str(c.tmp / "cipher.bin")),
    ),
    ("DecryptFile", "windows", lambda c: _files(WIN_DST, WIN_SRC)),
    (
        "DecryptFile",
        "local",
        lambda c: _files(str(c.plain), str(c.tmp / "decrypted.txt")),
    ),
    ("GenerateFileKeyB64", "undefined", lambda c: '{"b64data":"undefined"}'),
    ("OnlineFormatByURL", "url", lambda c: js(url=c.url + "/format", adminpin="12345678")),
    ("OnlineResetPinByURL", "url", lambda c: js(url=c.url + "/reset", userpin=USER_PIN)),
    ("WriteDataB64", "public", lambda c: '{"name":"x","b64data":"aGk=","isprivate":false}'),
    ("WriteDataText", "private", lambda c: '{"name":"x","data":"hi","isprivate":true}'),
    ("DeleteData", "x", lambda c: js(name="x")),
    ("ReadDataB64", "x", lambda c: js(name="x")),
    ("ReadDataText", "x", lambda c: js(name="x")),
    ("CreateSM2SoftDevice", "none", lambda c: None),
    ("GenKeyPair", "rsa", lambda c: '{"cn":"沧州市测试科技有限公司","rsaflag":true}'),
    ("GenKeyPair", "sm2", lambda c: '{"cn":"沧州市测试科技有限公司","rsaflag":false}'),
    ("ImportECCKeyPair", "blob", lambda c: js(b64keys=b64(bytes(range(200))))),
    ("ImportCert", "sign", lambda c: '{"b64cert":"' + c.cert + '","signflag":true}'),
    ("ImportCert", "crypt", lambda c: '{"b64cert":"' + c.cert + '","signflag":false}'),
    ("GenerateAgreementDataWithECC", "sponsor", lambda c: js(alg="SM2", sponsorid=b64("甲"))),
    (
        "GenerateAgreementDataAndKeyWithECC",
        "respond",
        lambda c: js(
            alg="SM2",
            sponsorpubkey=b64(bytes(64)),
            sponsortemppubkey=b64(bytes(64)),
            respondid=b64("乙"),
            sponsorid=b64("甲"),
        ),
    ),
    (
        "GenerateKeyWithECC",
        "sponsor",
        lambda c: js(
            respondpubkey=b64(bytes(64)), respondtemppubkey=b64(bytes(64)), respondid=b64("乙")
        ),
    ),
    ("EncryptWithAgreementKey", "plain", lambda c: js(plaintext=b64("hello"))),
    ("DecryptWithAgreementKey", "cipher", lambda c: js(ciphertext=b64(bytes(32)))),
    ("EncryptB64", "data", lambda c: js(b64data=b64("secret"))),
    ("DecryptB64", "data", lambda c: js(b64data=b64(bytes(256)))),
    (
        "EnvelopB64",
        "one-recipient",
        lambda c: '{"b64data":"' + b64("secret") + '","certs":[{"cert":"' + c.cert + '"}]}',
    ),
    ("UnEnvelopB64", "blob", lambda c: js(b64data=b64(bytes(300)))),
    ("NoSuchFunction", "none", lambda c: None),
    ("NoSuchFunction", "param", lambda c: '{"index":0}'),
    ("execute", "lower-case", lambda c: '{"filename":"/usr/bin/touch","args":"x","wait":true}'),
]

KNOWN = {f for f, _, _ in CASES} - {"NoSuchFunction", "execute"}


def _token_objects(driver) -> dict[str, tuple]:
    out = {}
    for t in driver.list_tokens(rescan=True):
        contents = driver.read_objects(t.serial)
        certs = sorted((c.key_id, c.label, c.value) for c in contents.certificates)
        keys = sorted(k.key_id for k in contents.private_keys)
        out[t.serial] = (t.label, certs, keys)
    return out


def _ca_cert_b64(fixtures) -> str:
    pem = fixtures.ca_chain.read_bytes()
    cert = x509.load_pem_x509_certificates(pem)[0]
    return b64(cert.public_bytes(serialization.Encoding.DER))


@pytest.mark.parametrize(("func", "variant", "build"), CASES, ids=[f"{f}-{v}" for f, v, _ in CASES])
def test_refused(driver, fixtures, state, tmp_path, func, variant, build) -> None:
    ctx_tmp = tmp_path / "work"
    ctx_tmp.mkdir()
    (ctx_tmp / "plain.txt").write_text("明文 plain text", "utf-8")
    before = _token_objects(driver)
    victim = subprocess.Popen(["sleep", "60"])
    hits: list[bytes] = []

    async def go() -> None:
        async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            hits.append(await reader.read(200))
            writer.close()

        listener = await asyncio.start_server(count, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        ctx = Ctx(ctx_tmp, f"http://127.0.0.1:{port}", _ca_cert_b64(fixtures))
        async with running_hebca(driver, fixtures, state) as h:
            ws = await h.ws()
            # the strongest position a page can get: logged in, sign and crypt selected
            await ok(ws, "GetSignCert", '{"index":0}')
            await ok(ws, "Login", js(pin=USER_PIN))
            await ok(ws, "SelectCryptCert")
            audited = len(h.hebca_audit())
            res = await call(ws, func, build(ctx))
            assert res["ret"] == REFUSED, res
            assert set(res) <= {"ret", "msg"}, res  # no result fields at all
            entries = h.hebca_audit()
            assert len(entries) == audited + 1
            if func in KNOWN:
                assert entries[-1]["operation"] == f"hebca:{func}"
            assert entries[-1]["outcome"] != "ok"
            # the connection lives on, the version is unchanged, nobody was asked
            assert (await ok(ws, "GetCertCount"))["count"] == 5
            version = js(key=b64(VERSION_KEY), name=b64("version"))
            assert (await ok(ws, "ReadRegB64", version))["value"] == 458752
            assert h.prompter.calls == []
            await asyncio.sleep(0.3)  # anything started would have acted by now
            await ws.close()
        listener.close()
        await listener.wait_closed()

    try:
        run(go())
        assert hits == []  # no URL was contacted
        assert victim.poll() is None  # nothing killed
        assert not (ctx_tmp / "executed").exists()
        assert not (ctx_tmp / "cipher.bin").exists() and not (ctx_tmp / "decrypted.txt").exists()
        assert (ctx_tmp / "plain.txt").read_text("utf-8") == "明文 plain text"
        assert sorted(p.name for p in ctx_tmp.iterdir()) == ["plain.txt"]
        # no file named after a Windows path appeared where the daemon runs
        assert not [n for n in os.listdir(os.getcwd()) if n.startswith("C:") or "\\" in n]
        assert _token_objects(driver) == before  # no object written, deleted or generated
    finally:
        victim.kill()
        victim.wait()
