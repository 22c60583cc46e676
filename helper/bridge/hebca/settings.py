"""Per-origin options of the HEBCA-compatible endpoint (docs/hebca-compat.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from helper.bridge.origins import normalize_origin
from helper.config import DEFAULT_ORIGINS, DEMO_HALL_ORIGIN, Config


@dataclass(frozen=True)
class HebcaOriginOptions:
    #: the page collects the PIN itself (Login, CspLogin, UnUICertLogin)
    page_pin: bool = False
    #: how SignText turns text into bytes: "utf-8" or "gbk"
    text_encoding: str = "utf-8"
    #: RSA hash for SignText/SignB64/P7SignB64: "sha256" or "sha1" (legacy back ends)
    rsa_hash: str = "sha256"
    #: UnUISign without a dialog, after a login on the same connection
    silent_sign: bool = False

    @property
    def sign_text_encoding(self) -> str:
        """The codec SignText encodes with (only the two validated values exist)."""
        return "gbk" if self.text_encoding == "gbk" else "utf-8"


def _default_origins(*, demo: bool = False) -> dict[str, HebcaOriginOptions]:
    # the Cangzhou hall collects the PIN in its pages; so does the demo hall, in demo mode
    halls = [*DEFAULT_ORIGINS, DEMO_HALL_ORIGIN] if demo else list(DEFAULT_ORIGINS)
    return {o: HebcaOriginOptions(page_pin=True) for o in halls}


@dataclass(frozen=True)
class HebcaSettings:
    #: the HEBCA helper version whose protocol we speak, answered to
    #: assertAssistorVersion as 0xMMmmpp
    assistor_version: str = "7.0.0"
    origins: dict[str, HebcaOriginOptions] = field(default_factory=_default_origins)

    def options(self, origin: str) -> HebcaOriginOptions:
        return self.origins.get(origin, HebcaOriginOptions())

    @property
    def version_number(self) -> int:
        major, minor, patch = (int(x) for x in ([*self.assistor_version.split("."), "0", "0"])[:3])
        return (major << 16) | (minor << 8) | patch


def settings_from_config(config: Config) -> HebcaSettings:
    """Defaults for the two halls, then the config's [hebca.origins] on top."""
    origins = _default_origins(demo=config.demo)
    for origin, opts in (config.hebca_origins or {}).items():
        key = normalize_origin(origin, strict=False) or origin
        base = origins.get(key, HebcaOriginOptions())  # a hall's defaults stay unless overridden
        origins[key] = HebcaOriginOptions(
            page_pin=bool(opts.get("page_pin", base.page_pin)),
            text_encoding=str(opts.get("text_encoding", base.text_encoding)).lower(),
            rsa_hash=str(opts.get("rsa_hash", base.rsa_hash)).lower(),
            silent_sign=bool(opts.get("silent_sign", base.silent_sign)),
        )
    return HebcaSettings(assistor_version=config.hebca_assistor_version, origins=origins)
