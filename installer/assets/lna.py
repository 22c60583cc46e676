"""Local Network Access policy for Windows and macOS, the same keys and origins as the
Linux ``certhelper.json`` (installer.policy.policy_document; measured in docs/lna.md).

- Windows: Inno Setup ``[Registry]`` lines under ``HKLM\\Software\\Policies\\Google\\Chrome``
  and ``HKLM\\Software\\Policies\\Microsoft\\Edge``. A list policy is a subkey named after
  the policy holding one string value per entry; our values are named ``101``, ``102``…
  so they do not overwrite entries an administrator numbered 1, 2…, and uninstall removes
  only those values. Written only by an administrative install (``IsAdminInstallMode``):
  a per-user install cannot write HKLM.
- macOS: a configuration profile (``.mobileconfig``) with one payload for Google Chrome
  (``com.google.Chrome``) and one for Microsoft Edge (``com.microsoft.Edge``).

Neither has been run on Windows or macOS by this project (docs/platforms.md).
"""

from __future__ import annotations

import plistlib
import uuid
from collections.abc import Sequence

from installer.policy import policy_document

#: Config().page_origins() by default (the installer never imports helper; a test keeps
#: the two equal)
DEFAULT_ORIGINS = ("http://111.62.46.105:9010", "https://www.hebca.com")
WINDOWS_BROWSERS = ("Software\\Policies\\Google\\Chrome", "Software\\Policies\\Microsoft\\Edge")
MACOS_DOMAINS = {"com.google.Chrome": "Google Chrome", "com.microsoft.Edge": "Microsoft Edge"}
FIRST_VALUE = 101
PROFILE_ID = "com.certhelper.lna"
MOBILECONFIG = "certhelper-lna.mobileconfig"


def iss_registry(origins: Sequence[str]) -> str:
    """The ``[Registry]`` lines (CRLF added by the writer) for an admin install."""
    doc = policy_document(list(origins))
    lines = [
        "; Local Network Access: let the configured halls and CA sites reach the helper",
        "; (same keys as Linux certhelper.json, docs/lna.md); admin installs only",
    ]
    for browser in WINDOWS_BROWSERS:
        for key, values in doc.items():
            for n, origin in enumerate(values, start=FIRST_VALUE):
                lines.append(
                    f'Root: HKLM; Subkey: "{browser}\\{key}"; ValueType: string; '
                    f'ValueName: "{n}"; ValueData: "{origin}"; '
                    "Flags: uninsdeletevalue; Check: IsAdminInstallMode"
                )
    return "\n".join(lines)


def _uuid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.certhelper.installer")).upper()


def mobileconfig(origins: Sequence[str]) -> bytes:
    """A configuration profile (XML plist) setting the LNA keys for Chrome and Edge."""
    doc = policy_document(list(origins))
    payloads = []
    for domain, name in MACOS_DOMAINS.items():
        payloads.append(
            {
                "PayloadType": domain,
                "PayloadIdentifier": f"{PROFILE_ID}.{domain}",
                "PayloadUUID": _uuid(domain),
                "PayloadVersion": 1,
                "PayloadDisplayName": f"{name}: 允许网上大厅连接证书助手",
                **doc,
            }
        )
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": PROFILE_ID,
        "PayloadUUID": _uuid(PROFILE_ID),
        "PayloadScope": "System",
        "PayloadOrganization": "certhelper",
        "PayloadDisplayName": "证书助手：允许网上大厅连接证书助手 (certhelper: LNA policy)",
        "PayloadDescription": (
            "让以下网站的网页连接本机证书助手 (lets these sites' pages reach the local "
            "certificate helper): " + ", ".join(sorted({o for v in doc.values() for o in v}))
        ),
        "PayloadRemovalDisallowed": False,
        "PayloadContent": payloads,
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True)
