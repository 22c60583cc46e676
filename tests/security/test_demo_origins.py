"""Finding 9: the demo hall and the demo CA (loopback ports any local process can bind)
are trusted in demo mode only; a plain `serve` or `run` trusts the real hall and CA."""

from __future__ import annotations

from pathlib import Path

from helper.bridge.hebca.settings import settings_from_config
from helper.bridge.origins import Decision
from helper.config import DEMO_CA_ORIGIN, DEMO_HALL_ORIGIN, Config
from helper.daemon.compose import build_services
from helper.services.tokens import TokenService
from tests.support.doubles import ScriptedPrompter

CANGZHOU = "http://111.62.46.105:9010"
HEBCA = "https://www.hebca.com"


def test_a_plain_configuration_trusts_no_demo_origin(tmp_path: Path) -> None:
    config = Config()
    services = build_services(config, TokenService([]), ScriptedPrompter(), tmp_path)
    assert services.policy.decide(DEMO_HALL_ORIGIN) is Decision.DENIED  # plain http, unlisted
    assert services.policy.decide(DEMO_CA_ORIGIN) is Decision.DENIED
    assert not services.renewal.is_ca(DEMO_CA_ORIGIN)
    assert not settings_from_config(config).options(DEMO_HALL_ORIGIN).page_pin
    # the real ones stay
    assert services.policy.decide(CANGZHOU) is Decision.ALLOWED
    assert services.renewal.is_ca(HEBCA)
    assert settings_from_config(config).options(CANGZHOU).page_pin


def test_demo_mode_trusts_the_demo_hall_and_ca(tmp_path: Path) -> None:
    config = Config()
    config.enable_demo()
    services = build_services(config, TokenService([]), ScriptedPrompter(), tmp_path)
    assert services.policy.decide(DEMO_HALL_ORIGIN) is Decision.ALLOWED
    assert services.renewal.is_ca(DEMO_CA_ORIGIN)
    assert settings_from_config(config).options(DEMO_HALL_ORIGIN).page_pin


def test_the_cli_lists_demo_origins_only_with_demo(cli) -> None:
    plain = cli("origins")
    assert plain.returncode == 0 and DEMO_HALL_ORIGIN not in plain.stdout
    assert CANGZHOU in plain.stdout
