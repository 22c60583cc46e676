"""Doctor: is Chrome/Chromium's managed policy letting each configured hall
reach the helper? The rules (which keys, which origins) live in
installer.policy, measured against Chromium 156 (docs/lna.md); this only
turns its answers into findings."""

from __future__ import annotations

from helper.config import Config
from helper.doctor.checks.base import DoctorEnv, Finding
from installer.policy import policy_findings as _policy_findings

_CODES = {
    "ok": "browser_policy_ok",
    "warning": "browser_policy_partial",
    "error": "browser_policy_missing",
}


def policy_findings(config: Config, env: DoctorEnv) -> list[Finding]:
    if not env.is_linux:
        return []
    return [
        Finding(level, _CODES[level], message, fix)
        for level, message, fix in _policy_findings(config.page_origins(), env.policy_root)
    ]
