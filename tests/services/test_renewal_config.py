"""[renewal] in the config file, and how the bridge takes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from helper.bridge.origins import Decision
from helper.config import Config, ConfigInvalid, load_config
from helper.daemon.compose import build_services
from helper.services.tokens import TokenService
from tests.support.doubles import ScriptedPrompter


def test_defaults() -> None:
    cfg = Config()
    assert cfg.renewal_ca_origins == ["https://www.hebca.com"]  # the demo CA: --demo only
    demo = Config()
    demo.enable_demo()
    assert demo.renewal_ca_origins == ["https://www.hebca.com", "http://127.0.0.1:9020"]
    assert cfg.renewal_ca_roots == []
    assert (cfg.renewal_window_before_days, cfg.renewal_window_after_days) == (90, 365)
    assert cfg.renewal_old_certificate == "archive"


def test_renewal_table(tmp_path: Path, renewal_pki) -> None:
    conf = tmp_path / "config.toml"
    conf.write_text(
        "[renewal]\n"
        'ca_origins = ["https://ca.example.cn"]\n'
        f'ca_roots = ["{renewal_pki.root_pem}", "roots/other.pem"]\n'
        "window_before_days = 60\nwindow_after_days = 30\n"
        'old_certificate = "remove"\n',
        "utf-8",
    )
    cfg = load_config(conf)
    assert cfg.renewal_ca_origins == ["https://ca.example.cn"]
    assert cfg.renewal_ca_roots == [str(renewal_pki.root_pem), str(tmp_path / "roots/other.pem")]
    assert (cfg.renewal_window_before_days, cfg.renewal_window_after_days) == (60, 30)
    assert cfg.renewal_old_certificate == "remove"

    services = build_services(cfg, TokenService([]), ScriptedPrompter(), tmp_path)
    renewal, policy = services.renewal, services.policy
    assert renewal.is_ca("https://ca.example.cn") and not renewal.is_ca("http://127.0.0.1:9010")
    assert len(renewal.settings.ca_roots) == 1  # the missing file is logged, not fatal
    assert renewal.settings.archive_old is False
    assert renewal.settings.window.before_days == 60
    # a CA origin may connect without a consent dialog, like a configured hall
    assert policy.decide("https://ca.example.cn") is Decision.ALLOWED


@pytest.mark.parametrize(
    "body",
    [
        '[renewal]\nca_origins = "https://ca.example.cn"\n',
        "[renewal]\nca_roots = [1]\n",
        "[renewal]\nwindow_before_days = -1\n",
        "[renewal]\nwindow_after_days = true\n",
        '[renewal]\nold_certificate = "delete"\n',
        "[renewal]\nunknown = 1\n",
        "renewal = 1\n",
    ],
)
def test_bad_renewal_table(tmp_path: Path, body: str) -> None:
    conf = tmp_path / "config.toml"
    conf.write_text(body, "utf-8")
    with pytest.raises(ConfigInvalid):
        load_config(conf)
