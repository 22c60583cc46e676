"""Application-level errors, on the same hierarchy as the driver's (drivers.errors)."""

from __future__ import annotations

from drivers.errors import ALL_ERRORS, CertHelperError, register

__all__ = [
    "ALL_ERRORS",
    "BadParams",
    "Cancelled",
    "CertHelperError",
    "CertificateAmbiguous",
    "CertificateNotFound",
    "CertificateUnreadable",
    "ConfigInvalid",
    "PinMismatch",
    "PinPolicyRejected",
    "SigningUnsupported",
]


@register
class CertificateUnreadable(CertHelperError):
    code = "cert_unreadable"
    message_zh = "证书数据无法解析"
    message_en = "The certificate object cannot be parsed"
    exit_code = 5


@register
class CertificateNotFound(CertHelperError):
    code = "cert_not_found"
    message_zh = "找不到指定的证书"
    message_en = "No certificate matches"
    exit_code = 5


@register
class CertificateAmbiguous(CertHelperError):
    code = "cert_ambiguous"
    message_zh = "有多个证书符合条件，请指定得更具体些"
    message_en = "Several certificates match; be more specific"
    exit_code = 5


@register
class SigningUnsupported(CertHelperError):
    code = "signing_unsupported"
    message_zh = "暂不支持使用该证书签名（如 SM2 国密证书）"
    message_en = "Signing with this certificate is not supported yet (e.g. SM2)"
    exit_code = 6


@register
class PinPolicyRejected(CertHelperError):
    code = "pin_policy"
    message_zh = "新密码不符合要求"
    message_en = "The new PIN does not meet the PIN policy"
    exit_code = 4


@register
class PinMismatch(CertHelperError):
    code = "pin_mismatch"
    message_zh = "两次输入的新密码不一致"
    message_en = "The new PIN and its confirmation differ"
    exit_code = 4


@register
class ConfigInvalid(CertHelperError):
    code = "config_invalid"
    message_zh = "配置文件有误"
    message_en = "The configuration file is invalid"
    exit_code = 2


@register
class Cancelled(CertHelperError):
    code = "cancelled"
    message_zh = "操作已取消"
    message_en = "Cancelled"
    exit_code = 130


@register
class UserTimeout(CertHelperError):
    code = "user_timeout"
    message_zh = "等待用户操作超时"
    message_en = "Nobody answered the dialog in time"
    exit_code = 130


@register
class UserCancelled(Cancelled):
    code = "user_cancelled"
    message_zh = "用户取消了操作"
    message_en = "The user cancelled"


@register
class ConsentDenied(CertHelperError):
    code = "consent_denied"
    message_zh = "用户拒绝了该网站的请求"
    message_en = "The user denied this site's request"
    exit_code = 4


@register
class DialogFailed(CertHelperError):
    code = "dialog_failed"
    message_zh = "无法显示对话框（是否有图形界面？）"
    message_en = "The dialog could not be shown (is there a display?)"
    exit_code = 1


@register
class BadParams(CertHelperError):
    code = "bad_params"
    message_zh = "请求参数无效"
    message_en = "Invalid request parameters"
    exit_code = 2
