"""renewal_url in the configuration (what 证书延期 opens)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helper.config import load_config
from helper.errors import ConfigInvalid


def test_default_and_configured(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("")
    assert load_config(path).renewal_url == "https://www.hebca.com"
    path.write_text('renewal_url = "https://ca.example.cn/renew"\n')
    assert load_config(path).renewal_url == "https://ca.example.cn/renew"


@pytest.mark.parametrize("value", ["3", '"javascript:alert(1)"', '"www.hebca.com"'])
def test_invalid(tmp_path: Path, value: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"renewal_url = {value}\n")
    with pytest.raises(ConfigInvalid) as err:
        load_config(path)
    assert "renewal_url" in str(err.value)
