"""`certhelper` with SM2 keys on the soft SKF library beside the SoftHSM tokens: list
(text and JSON), sign raw and CMS (checked by gmalg and OpenSSL 3, never by our own
verifier), change-pin with the tries left, doctor."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import pytest
from asn1crypto import cms

from tests.support.cli import Cli
from tests.support.sm2 import gmalg_verifies, openssl_verifies, spki_of, verified_both_ways
from tests.support.tokens import USER_PIN

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "list-schema.json").read_text("utf-8"))
DATA = "沧州住房公积金 汇缴 2026-12 单位 1301 金额 12,345.00 元".encode()


def _sign(cli: Cli, tmp_path: Path, cert: str, *extra: str, pin: str = USER_PIN):
    src, out = tmp_path / "in.txt", tmp_path / "out.sig"
    src.write_bytes(DATA)
    r = cli("sign", "--cert", cert, "--in", str(src), "--out", str(out), "--pin-stdin", *extra,
            stdin=pin + "\n")  # fmt: skip
    return r, out


def _der(cli: Cli, name: str) -> bytes:
    r = cli("show", cli.skf.cert(name)["sha256"][:16], "--pem")  # type: ignore[union-attr]
    assert r.returncode == 0, r.stderr
    from asn1crypto import pem

    return pem.unarmor(r.stdout.encode())[2]


def test_list_json_shows_skf_keys_beside_pkcs11(gm_cli: Cli) -> None:
    r = gm_cli("list", "--json")
    assert r.returncode == 0, r.stderr
    doc = r.json()
    jsonschema.validate(doc, SCHEMA)
    assert {m["driver"] for m in doc["modules"]} == {"pkcs11", "skf"}
    skf = gm_cli.skf
    assert skf is not None
    tokens = {t["serial"]: t for t in doc["tokens"]}
    gm1 = tokens[skf.serial("gm1")]
    assert (gm1["driver"], gm1["label"], gm1["pin_retries_left"], gm1["pin_max_retries"]) == (
        "skf", "河北CA测试国密Key1", 6, 6,
    )  # fmt: skip
    assert gm1["pin_is_default"] is True
    assert {t["driver"] for t in doc["tokens"]} == {"pkcs11", "skf"}
    pkcs11 = next(t for t in doc["tokens"] if t["driver"] == "pkcs11")
    assert pkcs11["pin_retries_left"] is None
    certs = {c["sha256"]: c for c in doc["certificates"] if c.get("sha256")}
    sign = certs[skf.cert("gm_company_sign")["sha256"]]
    enc = certs[skf.cert("gm_company_enc")["sha256"]]
    assert (sign["key_type"], sign["driver"], sign["usage"]) == ("SM2", "skf", "sign")
    assert sign["has_private_key"] and sign["signing_supported"] and sign["signing_note"] is None
    assert (enc["key_type"], enc["usage"], enc["has_private_key"]) == ("SM2", "enc", True)
    assert sign["hebca_unique_id"] == "HB130900000000001"
    # the SM2 certificate SoftHSM holds cannot be signed through SoftHSM: said so
    soft_sm2 = certs[gm_cli.fx.cert("sm2")["sha256"]]
    assert soft_sm2["signing_supported"] is False and "SM2" in soft_sm2["signing_note"]


def test_list_text_names_the_driver_the_usage_and_the_tries(gm_cli: Cli) -> None:
    r = gm_cli("list")
    assert r.returncode == 0, r.stderr
    assert "USB Key「河北CA测试国密Key1」" in r.stdout and "[国密 SKF (GM/T 0016)]" in r.stdout
    assert "密码剩余 6/6 次尝试" in r.stdout and "仍是初始密码" in r.stdout
    assert "SM2-256  加密 (encryption)" in r.stdout and "SM2-256  签名 (signing)" in r.stdout


def test_sign_raw_sm2_verified_outside(gm_cli: Cli, tmp_path: Path) -> None:
    assert gm_cli.skf is not None
    cert = gm_cli.skf.cert("gm_company_sign")["sha256"]
    r, out = _sign(gm_cli, tmp_path, cert[:16])
    assert r.returncode == 0, r.stderr
    der = _der(gm_cli, "gm_company_sign")
    assert verified_both_ways(der, DATA, out.read_bytes())
    assert not gmalg_verifies(spki_of(der), DATA + b".", out.read_bytes())
    # another distinguishing ID, as a back end that uses the holder's ID would ask
    r, out = _sign(gm_cli, tmp_path, cert[:16], "--sm2-id", "HB130900000000001")
    assert r.returncode == 0, r.stderr
    assert openssl_verifies(spki_of(der), DATA, out.read_bytes(), b"HB130900000000001")
    assert not openssl_verifies(spki_of(der), DATA, out.read_bytes())


@pytest.mark.parametrize("attached", [False, True])
def test_sign_cms_sm2_per_gmt_0010(gm_cli: Cli, tmp_path: Path, attached: bool) -> None:
    assert gm_cli.skf is not None
    cert = gm_cli.skf.cert("gm_company_sign")["sha256"]
    r, out = _sign(gm_cli, tmp_path, cert[:16], "--format", "cms",
                   *(["--attached"] if attached else []))  # fmt: skip
    assert r.returncode == 0, r.stderr
    info = cms.ContentInfo.load(out.read_bytes())
    signed = info["content"]
    assert info["content_type"].native == "signed_data"
    assert signed["encap_content_info"]["content"].native == (DATA if attached else None)
    si = signed["signer_infos"][0]
    assert si["digest_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.401"  # SM3
    assert si["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"  # SM2-with-SM3
    attrs = {a["type"].native: a["values"][0].native for a in si["signed_attrs"]}
    assert attrs["message_digest"] == hashlib.new("sm3", DATA).digest()
    certificate = signed["certificates"][0].chosen.dump()
    assert hashlib.sha256(certificate).hexdigest() == cert
    tbs = si["signed_attrs"].untag().dump(force=True)
    assert verified_both_ways(certificate, tbs, si["signature"].native)


def test_sign_refuses_an_sm2_id_for_cms_before_the_pin(gm_cli: Cli, tmp_path: Path) -> None:
    assert gm_cli.skf is not None
    cert = gm_cli.skf.cert("gm_company_sign")["sha256"]
    r, out = _sign(gm_cli, tmp_path, cert[:16], "--format", "cms", "--sm2-id", "x", pin="000000")
    assert r.returncode != 0 and "bad_input" in r.stderr and not out.exists()
    r = gm_cli("list", "--json")
    gm1 = next(t for t in r.json()["tokens"] if t["serial"] == gm_cli.skf.serial("gm1"))
    assert gm1["pin_retries_left"] == 6  # no try spent


def test_change_pin_on_an_skf_key_reports_tries(gm_cli: Cli) -> None:
    assert gm_cli.skf is not None
    serial = gm_cli.skf.serial("gm2")
    r = gm_cli("change-pin", "--token", serial, "--stdin", stdin="000000\n86429731\n86429731\n")
    assert r.returncode != 0 and "pin_incorrect" in r.stderr
    assert "密码剩余 5/6 次尝试" in r.stderr
    r = gm_cli("change-pin", "--token", serial, "--stdin",
               stdin=f"{USER_PIN}\n86429731\n86429731\n")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = gm_cli("list", "--json").json()
    gm2 = next(t for t in doc["tokens"] if t["serial"] == serial)
    assert (gm2["pin_is_default"], gm2["pin_retries_left"]) == (False, 6)
    src = next(c for c in doc["certificates"] if c["token_serial"] == serial)
    r, _ = _sign(gm_cli, Path(gm_cli.home), src["sha256"][:16], pin="86429731")
    assert r.returncode == 0, r.stderr


def test_doctor_shows_skf_library_devices_tries_and_a_lock(gm_cli: Cli) -> None:
    assert gm_cli.skf is not None
    serial = gm_cli.skf.serial("gm2")
    for _ in range(6):  # lock gm2 for real, through the CLI
        gm_cli("change-pin", "--token", serial, "--stdin", stdin="000000\n86429731\n86429731\n")
    r = gm_cli("doctor", "--json")
    found = r.json()
    lines = [f["message"] for f in found]
    assert any("[国密 SKF (GM/T 0016)]" in m and gm_cli.skf.library in m for m in lines)
    assert any("河北CA测试国密Key1" in m and "密码剩余 6/6 次尝试" in m for m in lines)
    locked = [f for f in found if f["code"] == "pin_locked"]
    assert len(locked) == 1 and "河北CA测试国密Key2" in locked[0]["message"]
    assert any(f["code"] == "pin_to_be_changed" and "国密Key1" in f["message"] for f in found)
    r = gm_cli("change-pin", "--token", serial, "--stdin",
               stdin=f"{USER_PIN}\n86429731\n86429731\n")  # fmt: skip
    assert r.returncode != 0 and "pin_locked" in r.stderr


def test_demo_lists_the_sm2_key_next_to_the_softhsm_ones(cli: Cli) -> None:
    """What `make demo` shows: the demo build (both profiles' builder, demo profile)
    in the demo dir, and `certhelper --demo list` finds its SKF key by itself."""
    import subprocess
    import sys

    demo = cli.home / "xdg-data" / "certhelper" / "demo-token"
    build = ROOT / "softhsm-fixtures" / "build.py"
    built = subprocess.run(
        [sys.executable, str(build), str(demo), "--profile", "demo"],
        capture_output=True, text=True, timeout=300, env=cli.env, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    r = cli("--demo", "list", "--json")
    assert r.returncode == 0, r.stderr
    doc = r.json()
    skf = [t for t in doc["tokens"] if t["driver"] == "skf"]
    assert [t["label"] for t in skf] == ["河北CA测试国密Key"]
    assert any(t["driver"] == "pkcs11" for t in doc["tokens"])
    sm2 = [c for c in doc["certificates"] if c["token_serial"] == skf[0]["serial"]]
    assert sorted(c["usage"] for c in sm2) == ["enc", "sign"]
    assert all(c["key_type"] == "SM2" and c["has_private_key"] for c in sm2)
