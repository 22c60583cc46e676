"""The `certhelper` CLI, run as a real process against SoftHSM tokens."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from tests.support.cli import Cli
from tests.support.tokens import ROOT, USER_PIN

SCHEMA = json.loads((ROOT / "docs" / "list-schema.json").read_text("utf-8"))


def _certs_by_name(cli: Cli) -> dict[str, dict]:
    doc = cli("list", "--json").json()
    by_sha = {c.get("sha256"): c for c in doc["certificates"]}
    by_id = {c["id"]: c for c in doc["certificates"]}
    out = {}
    for m in cli.fx.manifest["certificates"]:
        if m["valid_der"]:
            out[m["name"]] = by_sha[m["sha256"]]
        else:
            out[m["name"]] = by_id[f"{m['token_serial']}:{m['key_id']}"]
    return out


def _cert_der(cli: Cli, name: str, tmp_path: Path) -> bytes:
    out = tmp_path / f"{name}.der"
    r = cli("show", cli.fx.cert(name)["sha256"][:16], "--der", str(out))
    assert r.returncode == 0, r.stderr
    return out.read_bytes()


# --- list --------------------------------------------------------------------


def test_list_text_shows_chinese_names_and_days_left(cli: Cli) -> None:
    r = cli("list")
    assert r.returncode == 0, r.stderr
    for token in cli.fx.manifest["tokens"]:
        assert f"USB Key「{token['label']}」" in r.stdout
    assert "沧州市测试科技有限公司" in r.stdout
    assert "剩余 4 天" in r.stdout or "剩余 5 天" in r.stdout  # the expiring certificate
    assert "已过期" in r.stdout
    assert "证书无法读取" in r.stdout  # the corrupt object is listed, not dropped
    assert "私钥无证书" in r.stdout
    assert "该 USB Key 驱动不支持 SM2 签名" in r.stdout  # the SM2 certificate on SoftHSM


def test_list_json_schema_and_contents(cli: Cli) -> None:
    r = cli("list", "--json")
    assert r.returncode == 0, r.stderr
    doc = r.json()
    jsonschema.validate(doc, SCHEMA)
    assert len(doc["tokens"]) == 4
    assert {t["pin_state"] for t in doc["tokens"]} == {"ok"}
    certs = _certs_by_name(cli)
    assert len(doc["certificates"]) == len(cli.fx.manifest["certificates"])
    sign = certs["company_sign"]
    assert sign["subject"]["cn"] == "沧州市测试科技有限公司"
    assert sign["subject"]["dn"].endswith("L=沧州市,ST=河北省,C=CN")
    assert sign["hebca_unique_id"] == "HB130900000000001"
    assert (sign["key_type"], sign["key_bits"], sign["has_private_key"]) == ("RSA", 2048, True)
    assert sign["serial_hex"] == cli.fx.cert("company_sign")["serial_hex"]
    assert sign["not_after"] == cli.fx.cert("company_sign")["not_after"]
    assert sign["expiry_state"] == "ok"
    assert certs["trade_ec"]["key_type"] == "EC" and certs["trade_ec"]["curve"] == "secp256r1"
    assert certs["expiring"]["expiry_state"] == "urgent"
    assert 0 <= certs["expiring"]["days_left"] <= 7
    assert certs["expired"]["expiry_state"] == "expired" and certs["expired"]["days_left"] < 0
    assert certs["corrupt"]["readable"] is False
    assert certs["corrupt"]["error"]["code"] == "cert_unreadable"
    assert certs["no_key"]["has_private_key"] is False
    assert certs["sm2"]["key_type"] == "SM2" and certs["sm2"]["signing_supported"] is False
    (orphan,) = doc["keys_without_certificate"]
    assert orphan["key_id"] == cli.fx.manifest["keys_without_certificate"][0]["key_id"]
    empty = cli.fx.token("empty")["serial"]
    assert not [c for c in doc["certificates"] if c["token_serial"] == empty]


def test_list_across_two_modules(cli: Cli) -> None:
    """SoftHSM and OpenSC loaded together (the catalog's modules): SoftHSM's
    tokens are all there and each real module file is loaded once."""
    cli.config.write_text("use_catalog = true\n")
    doc = cli("list", "--json").json()
    sources = [m["source"] for m in doc["modules"]]
    assert "softhsm2" in sources and "opensc" in sources
    assert all(m["loaded"] for m in doc["modules"])
    assert len(doc["tokens"]) == 4
    assert len({m["path"] for m in doc["modules"]}) == len(doc["modules"])


def test_list_with_bad_module(cli: Cli, tmp_path: Path) -> None:
    r = cli("--module", str(tmp_path / "nope.so"), "list", "--json")
    assert r.returncode == 3
    doc = r.json()
    bad = next(m for m in doc["modules"] if m["path"].endswith("nope.so"))
    assert bad["loaded"] is False and bad["error"]["code"] == "module_load_failed"
    assert len(doc["tokens"]) == 4  # the good module still lists


def test_demo_flag_without_demo_token(cli: Cli) -> None:
    r = cli("--demo", "list")
    assert r.returncode == 2
    assert "make demo" in r.stderr


# --- show --------------------------------------------------------------------


def test_show_by_id_thumbprint_and_serial(cli: Cli, tmp_path: Path) -> None:
    c = cli.fx.cert("company_sign")
    for query in (f"{c['token_serial']}:{c['key_id']}", c["sha256"][:12], c["serial_hex"]):
        r = cli("show", query)
        assert r.returncode == 0, (query, r.stderr)
        assert "沧州市测试科技有限公司" in r.stdout
        assert "HB130900000000001" in r.stdout
    pem = cli("show", c["sha256"][:12], "--pem")
    cert = x509.load_pem_x509_certificate(pem.stdout.encode())
    assert cert.fingerprint(hashes.SHA256()).hex() == c["sha256"]
    assert _cert_der(cli, "company_sign", tmp_path) == cert.public_bytes(
        __import__(
            "cryptography.hazmat.primitives.serialization"
        ).hazmat.primitives.serialization.Encoding.DER
    )


def test_show_unknown_and_unreadable(cli: Cli) -> None:
    r = cli("show", "does-not-exist")
    assert r.returncode == 5 and "cert_not_found" in r.stderr
    corrupt = cli.fx.cert("corrupt")
    r = cli("show", f"{corrupt['token_serial']}:{corrupt['key_id']}")
    assert r.returncode == 0 and "证书数据无法解析" in r.stdout


# --- sign --------------------------------------------------------------------


def _verify(der: bytes, sig: bytes, data: bytes, h: hashes.HashAlgorithm) -> None:
    key = x509.load_der_x509_certificate(der).public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(sig, data, ec.ECDSA(h))
    else:
        key.verify(sig, data, padding.PKCS1v15(), h)


@pytest.mark.parametrize(
    ("name", "extra", "h"),
    [
        ("company_sign", [], hashes.SHA256()),
        ("company_sign", ["--sha1"], hashes.SHA1()),
        ("trade_ec", [], hashes.SHA256()),
    ],
)
def test_sign_raw(cli: Cli, tmp_path: Path, name: str, extra: list[str], h) -> None:
    data = tmp_path / "in.txt"
    data.write_bytes("补缴 2026 年 10 月".encode())
    out = tmp_path / "out.sig"
    c = cli.fx.cert(name)
    r = cli(
        "sign",
        "--cert",
        c["sha256"][:16],
        "--in",
        str(data),
        "--out",
        str(out),
        "--pin-stdin",
        *extra,
        stdin=USER_PIN + "\n",
    )
    assert r.returncode == 0, r.stderr
    der = _cert_der(cli, name, tmp_path)
    _verify(der, out.read_bytes(), data.read_bytes(), h)
    with pytest.raises(InvalidSignature):
        _verify(der, out.read_bytes(), b"other", h)


@pytest.mark.parametrize("name", ["company_sign", "trade_ec"])
@pytest.mark.parametrize("attached", [False, True])
def test_sign_cms_verified_by_openssl(cli: Cli, tmp_path: Path, name: str, attached: bool):
    data = tmp_path / "in.bin"
    data.write_bytes(b"\x00\x01 binary \xff" * 100)
    out = tmp_path / "out.p7s"
    args = [
        "sign",
        "--cert",
        cli.fx.cert(name)["serial_hex"],
        "--in",
        str(data),
        "--out",
        str(out),
        "--format",
        "cms",
        "--pin-stdin",
    ]
    r = cli(*args, *(["--attached"] if attached else []), stdin=USER_PIN + "\n")
    assert r.returncode == 0, r.stderr
    verify = [
        "openssl",
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        str(out),
        "-CAfile",
        str(cli.fx.ca_chain),
        "-purpose",
        "any",
        "-out",
        str(tmp_path / "o"),
    ]
    if not attached:
        verify += ["-content", str(data)]
    proc = subprocess.run(verify, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o").read_bytes() == data.read_bytes()
    if not attached:  # and a tampered content fails
        data.write_bytes(b"tampered")
        assert subprocess.run(verify, capture_output=True).returncode != 0


@pytest.mark.parametrize(
    ("name", "code", "exit_code"),
    [
        ("sm2", "signing_unsupported", 6),
        ("no_key", "key_not_found", 5),
        ("corrupt", "cert_unreadable", 5),
    ],
)
def test_sign_refusals(cli: Cli, tmp_path: Path, name: str, code: str, exit_code: int) -> None:
    c = cli.fx.cert(name)
    data = tmp_path / "in"
    data.write_bytes(b"x")
    r = cli(
        "sign",
        "--cert",
        f"{c['token_serial']}:{c['key_id']}",
        "--in",
        str(data),
        "--out",
        str(tmp_path / "o"),
        "--pin-stdin",
        stdin=USER_PIN + "\n",
    )
    assert (r.returncode, code in r.stderr) == (exit_code, True), r.stderr
    assert not (tmp_path / "o").exists()


def test_sign_missing_input(cli: Cli, tmp_path: Path) -> None:
    r = cli(
        "sign",
        "--cert",
        cli.fx.cert("company_sign")["serial_hex"],
        "--in",
        str(tmp_path / "missing"),
        "--out",
        str(tmp_path / "o"),
        "--pin-stdin",
    )
    assert r.returncode == 2 and "bad_input" in r.stderr


def test_sign_wrong_pin(fresh_cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.write_bytes(b"x")
    args = [
        "sign",
        "--cert",
        fresh_cli.fx.cert("company_sign")["serial_hex"],
        "--in",
        str(data),
        "--out",
        str(tmp_path / "o"),
        "--pin-stdin",
    ]
    r = fresh_cli(*args, stdin="000000\n")
    assert r.returncode == 4 and "pin_incorrect" in r.stderr
    assert "PIN state now" in r.stderr  # says what the token reports after the failure
    assert not (tmp_path / "o").exists()
    assert fresh_cli(*args, stdin=USER_PIN + "\n").returncode == 0  # the key still works


# --- change-pin --------------------------------------------------------------


def _sign_with(cli: Cli, tmp_path: Path, pin: str) -> int:
    data = tmp_path / "probe"
    data.write_bytes(b"probe")
    return cli(
        "sign",
        "--cert",
        cli.fx.cert("company_sign")["serial_hex"],
        "--in",
        str(data),
        "--out",
        str(tmp_path / "probe.sig"),
        "--pin-stdin",
        stdin=pin + "\n",
    ).returncode


def test_change_pin_success(fresh_cli: Cli, tmp_path: Path) -> None:
    r = fresh_cli(
        "change-pin", "--token", "河北CA测试Key1", "--stdin", stdin=f"{USER_PIN}\n582937\n582937\n"
    )
    assert r.returncode == 0, r.stderr
    assert "密码修改成功" in r.stdout
    assert _sign_with(fresh_cli, tmp_path, "582937") == 0
    assert _sign_with(fresh_cli, tmp_path, USER_PIN) == 4


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        ("000000\n582937\n582937\n", "pin_incorrect"),  # wrong old PIN: one real try
        (f"{USER_PIN}\n58\n58\n", "pin_policy"),  # too short
        (f"{USER_PIN}\n{USER_PIN}\n{USER_PIN}\n", "pin_policy"),  # same as old, and 123456
        (f"{USER_PIN}\n582937\n582938\n", "pin_mismatch"),
        (f"{USER_PIN}\n582937\n", "bad_input"),  # stdin ended early
    ],
)
def test_change_pin_failures(fresh_cli: Cli, tmp_path: Path, lines: str, code: str) -> None:
    r = fresh_cli("change-pin", "--token", "河北CA测试Key1", "--stdin", stdin=lines)
    assert r.returncode in (2, 4) and code in r.stderr, r.stderr
    assert _sign_with(fresh_cli, tmp_path, USER_PIN) == 0  # the PIN is unchanged


def test_change_pin_never_to_initial(fresh_cli: Cli) -> None:
    key = ["change-pin", "--token", "河北CA测试Key1", "--stdin"]
    assert fresh_cli(*key, stdin=f"{USER_PIN}\n582937\n582937\n").returncode == 0
    r = fresh_cli(*key, stdin=f"582937\n{USER_PIN}\n{USER_PIN}\n")
    assert r.returncode == 4 and "123456" in r.stderr and "pin_policy" in r.stderr


def test_change_pin_needs_token_choice(fresh_cli: Cli) -> None:
    r = fresh_cli("change-pin", "--stdin", stdin="")
    assert r.returncode == 3 and "token_ambiguous" in r.stderr
    r = fresh_cli("change-pin", "--token", "no such key", "--stdin", stdin="")
    assert r.returncode == 3 and "token_not_found" in r.stderr


def test_pin_never_reaches_logs_or_files(fresh_cli: Cli, tmp_path: Path) -> None:
    """A sentinel PIN through every flow; then no file under HOME, no output holds it."""
    sentinel = "8461937205"
    outputs = []
    key = ["-vv", "change-pin", "--token", "河北CA测试Key1", "--stdin"]
    r = fresh_cli(*key, stdin=f"{USER_PIN}\n{sentinel}\n{sentinel}\n")
    assert r.returncode == 0, r.stderr
    outputs.append(r)
    data = fresh_cli.home / "data.txt"
    data.write_bytes(b"data")
    for fmt in ("raw", "cms"):
        r = fresh_cli(
            "-vv",
            "sign",
            "--cert",
            fresh_cli.fx.cert("company_sign")["serial_hex"],
            "--in",
            str(data),
            "--out",
            str(fresh_cli.home / f"o.{fmt}"),
            "--format",
            fmt,
            "--pin-stdin",
            stdin=sentinel + "\n",
        )
        assert r.returncode == 0, r.stderr
        outputs.append(r)
    outputs.append(
        fresh_cli(
            "-vv",
            "sign",
            "--cert",
            fresh_cli.fx.cert("trade_ec")["serial_hex"],
            "--in",
            str(data),
            "--out",
            str(fresh_cli.home / "bad"),
            "--pin-stdin",
            stdin=sentinel[::-1] + "\n",
        )
    )  # a wrong PIN too
    outputs += [fresh_cli("-vv", "list"), fresh_cli("-vv", "doctor")]
    logs = list(fresh_cli.home.rglob("*.log"))
    assert logs, "the CLI should have written a log under XDG_STATE_HOME"
    for r in outputs:
        assert sentinel not in r.stdout + r.stderr
        assert sentinel[::-1] not in r.stdout + r.stderr
    for path in fresh_cli.home.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert sentinel.encode() not in blob, path
            assert sentinel[::-1].encode() not in blob, path


# --- doctor and usage --------------------------------------------------------


def test_doctor(cli: Cli) -> None:
    r = cli("doctor", "--json")
    assert r.returncode == 9
    codes = {f["code"] for f in r.json()}
    assert {
        "module_loaded",
        "cert_expired",
        "cert_urgent",
        "cert_unreadable",
        "key_without_cert",
        "signing_unsupported",
        "cert_without_key",
    } <= codes
    assert all(
        f["fix"] for f in r.json() if f["level"] != "ok" and f["code"] != "signing_unsupported"
    )
    text = cli("doctor")
    assert "已过期" in text.stdout and "→" in text.stdout


def test_usage_and_config_errors(cli: Cli) -> None:
    assert cli().returncode == 2
    assert cli("frobnicate").returncode == 2
    cli.config.write_text("modules = [\n")
    r = cli("list")
    assert r.returncode == 2 and "config_invalid" in r.stderr
    cli.config.write_text("modules = 'not-a-list'\n")
    assert cli("list").returncode == 2
    r = cli("--config", str(cli.home / "missing.toml"), "list")
    assert r.returncode == 2 and "config_invalid" in r.stderr
