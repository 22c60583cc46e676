"""``certhelper-admin`` (installer/admin.py), the command pkexec runs as root: run for real
as root against a temporary ``--root``; refusals leave every byte as it was.

ROOT: the privileged helper is tested as it runs under pkexec, as root. The suite runs
as root; when it does not, this fails (it is never skipped).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from installer import admin, elevate, polkit
from installer.policy import policy_paths, write_policy
from tests.support.installer import ROOT, Home, snapshot

HALL = "http://111.62.46.105:9010"
CA_SITE = "https://www.hebca.com"
SYSTEM_CA = Path("usr/local/share/ca-certificates/certhelper-local-ca.crt")


@pytest.fixture(autouse=True)
def _as_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("certhelper-admin runs as root under pkexec: run this suite as root")


def run_admin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "installer.admin", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},  # pkexec's clean environment
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


def test_write_policy_as_root_matches_the_installer(root: Path, tmp_path: Path) -> None:
    result = run_admin("write-browser-policy", "--origin", HALL, "--origin", CA_SITE,
                       "--root", str(root))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "browser policy written" in result.stdout
    reference = tmp_path / "reference"
    reference.mkdir()
    expected = write_policy([HALL, CA_SITE], reference)
    written = policy_paths(root)
    assert [p.relative_to(root) for p in written] == [p.relative_to(reference) for p in expected]
    for mine, theirs in zip(written, expected, strict=True):
        assert mine.read_bytes() == theirs.read_bytes()
        assert mine.stat().st_mode & 0o777 == 0o644
        assert mine.stat().st_uid == 0
    # the same again changes nothing
    before = snapshot(root)
    assert run_admin("write-browser-policy", "--origin", CA_SITE, "--origin", HALL,
                     "--root", str(root)).returncode == 0  # fmt: skip
    assert snapshot(root) == before

    result = run_admin("remove-browser-policy", "--root", str(root))
    assert result.returncode == 0, result.stderr
    assert not any(p.exists() for p in written)
    assert all(p.parent.is_dir() for p in written)  # other software's folders stay


def test_trust_system_ca_takes_only_our_local_ca(root: Path, home: Home) -> None:
    ca = home.ensure_identity().paths.ca_cert
    result = run_admin("trust-system-ca", "--ca", str(ca), "--root", str(root))
    assert result.returncode == 0, result.stderr
    target = root / SYSTEM_CA
    assert target.read_bytes() == ca.read_bytes()
    assert target.stat().st_mode & 0o777 == 0o644
    result = run_admin("untrust-system-ca", "--root", str(root))
    assert result.returncode == 0, result.stderr
    assert not target.exists()


def _foreign_ca(path: Path, cn: str = "Some Other CA") -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _bad_cases(tmp: Path, home: Home) -> list[list[str]]:
    ours = home.ensure_identity().paths.ca_cert
    foreign = _foreign_ca(tmp / "other.pem")
    # our CN on a CA without name constraints is still refused
    lookalike = _foreign_ca(tmp / "lookalike.pem", cn=admin.CA_CN_PREFIX + " 0000")
    twice = tmp / "two.pem"
    twice.write_bytes(ours.read_bytes() * 2)
    link = tmp / "link.pem"
    link.symlink_to(ours)
    return [
        [],
        ["rm", "-rf", "/"],
        ["write-browser-policy"],
        ["write-browser-policy", "--origin", "file:///etc/passwd"],
        ["write-browser-policy", "--origin", "http://hall.cn/path"],
        ["write-browser-policy", "--origin", "javascript:alert(1)"],
        ["write-browser-policy", "--origin", HALL, "--config", "/etc/shadow"],
        ["write-browser-policy", "--origin"],
        ["write-browser-policy", "--origin", HALL, "--root", "relative/dir"],
        ["write-browser-policy", "--origin", HALL, "--root", str(tmp / "missing")],
        ["write-browser-policy", *[a for i in range(65) for a in ("--origin", f"https://h{i}.cn")]],
        ["remove-browser-policy", "--origin", HALL],
        ["trust-system-ca"],
        ["trust-system-ca", "--ca", "relative.pem"],
        ["trust-system-ca", "--ca", str(foreign)],
        ["trust-system-ca", "--ca", str(lookalike)],
        ["trust-system-ca", "--ca", str(twice)],
        ["trust-system-ca", "--ca", str(link)],
        ["trust-system-ca", "--ca", "/etc"],
        ["trust-system-ca", "--ca", str(ours), "--ca", str(ours)],
    ]


def test_bad_verbs_and_arguments_are_refused_with_nothing_changed(
    root: Path, tmp_path: Path, home: Home
) -> None:
    # a tree that already holds a policy and a system CA: refusals must not touch it
    write_policy(["https://other.example.cn"], root)
    (root / SYSTEM_CA).parent.mkdir(parents=True)
    (root / SYSTEM_CA).write_bytes(b"old\n")
    before = snapshot(root)
    for case in _bad_cases(tmp_path, home):
        given_root = any(a == "--root" for a in case) or not case
        args = case if given_root else [*case, "--root", str(root)]
        result = run_admin(*args)
        assert result.returncode == 2, (case, result.stdout, result.stderr)
        assert "refused, nothing changed" in result.stderr, case
        assert result.stdout == "", case
        assert snapshot(root) == before, case


def test_the_pkexec_command_line() -> None:
    env = {k: v for k, v in os.environ.items() if k != elevate.ENV_ELEVATE}
    os_environ = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        argv = elevate.admin_argv("write-browser-policy", ["--origin", HALL])
    finally:
        os.environ.clear()
        os.environ.update(os_environ)
    assert argv[0].endswith("/pkexec") and os.path.isabs(argv[0])
    assert argv[1] == str(Path(sys.executable).parent / "certhelper-admin")
    assert argv[2:] == ["write-browser-policy", "--origin", HALL]


def test_pkexec_refusal_codes_mean_cancelled() -> None:
    seen: list[list[str]] = []

    def dismissed(argv):  # type: ignore[no-untyped-def]
        seen.append(list(argv))
        return 126, "Error executing command as another user: Request dismissed"

    result = elevate.run_admin("remove-browser-policy", [], dismissed)
    assert result.cancelled and result.text() == "已取消，未做任何更改 (cancelled, nothing changed)"
    assert elevate.run_admin("remove-browser-policy", [], lambda a: (127, "")).cancelled
    assert not elevate.run_admin("remove-browser-policy", [], lambda a: (1, "x")).cancelled
    assert seen[0][2:] == ["remove-browser-policy"]


def test_polkit_action_file(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    path, changed = polkit.install(tmp_path, exec_path="/opt/certhelper/bin/certhelper-admin")
    assert changed and path == tmp_path / "usr/share/polkit-1/actions/org.certhelper.admin.policy"
    assert polkit.install(tmp_path, exec_path="/opt/certhelper/bin/certhelper-admin")[1] is False
    doc = ET.parse(path).getroot()
    actions = {a.get("id"): a for a in doc.findall("action")}
    assert set(actions) == set(polkit.ACTIONS)
    for action_id, element in actions.items():
        notes = {n.get("key"): n.text for n in element.findall("annotate")}
        exec_path = notes["org.freedesktop.policykit.exec.path"]
        assert exec_path == "/opt/certhelper/bin/certhelper-admin"
        assert notes["org.freedesktop.policykit.exec.argv1"] == polkit.ACTIONS[action_id]
        assert notes["org.freedesktop.policykit.exec.argv1"] in admin.VERBS
        defaults = element.find("defaults")
        assert defaults is not None
        assert {d.tag: d.text for d in defaults} == dict.fromkeys(
            ("allow_any", "allow_inactive", "allow_active"), "auth_admin_keep"
        )
        lang = "{http://www.w3.org/XML/1998/namespace}lang"
        messages = {m.get(lang, "en"): m.text or "" for m in element.findall("message")}
        assert set(messages) == {"en", "zh_CN"}
    write = actions["org.certhelper.admin.write-policy"]
    text = " ".join(m.text or "" for m in write.findall("message"))
    assert "/etc/chromium/policies/managed" in text and "/etc/opt/chrome/policies/managed" in text
    assert "网上大厅" in text
    assert polkit.remove(tmp_path) and not path.exists()
