"""The verifier's errors: one class per reason a token or signature is refused."""

from __future__ import annotations

from drivers.errors import CertHelperError, register


@register
class VerifyError(CertHelperError):
    """Base of every verifier error; catch it to refuse any bad token."""

    code = "verify_failed"
    message_zh = "登录凭证验证失败"
    message_en = "The login token could not be verified"
    exit_code = 7


@register
class UnknownTokenFormat(VerifyError):
    code = "verify_unknown_format"
    message_zh = "登录凭证格式无法识别"
    message_en = "The login token's format is not recognised"


@register
class OriginMismatch(VerifyError):
    code = "verify_origin_mismatch"
    message_zh = "登录凭证不是为本网站生成的"
    message_en = "The login token was made for another site"


@register
class BadSignature(VerifyError):
    code = "verify_bad_signature"
    message_zh = "登录凭证的签名无效"
    message_en = "The login token's signature is invalid"


@register
class AlgorithmMismatch(VerifyError):
    code = "verify_algorithm_mismatch"
    message_zh = "签名算法与证书密钥不符或不被接受"
    message_en = "The signature algorithm does not fit the certificate's key or is not accepted"


@register
class CertExpired(VerifyError):
    code = "verify_cert_expired"
    message_zh = "证书已过期，请到 CA 办事处更新证书"
    message_en = "The certificate has expired; renew it at the CA office"


@register
class CertNotYetValid(VerifyError):
    code = "verify_cert_not_yet_valid"
    message_zh = "证书尚未生效（请检查电脑时间）"
    message_en = "The certificate is not valid yet (check the computer's clock)"


@register
class UntrustedChain(VerifyError):
    code = "verify_untrusted_chain"
    message_zh = "证书不是由受信任的 CA 签发的"
    message_en = "The certificate was not issued by a trusted CA"


@register
class WrongKeyUsage(VerifyError):
    code = "verify_wrong_key_usage"
    message_zh = "该证书不能用于签名登录（可能是加密证书）"
    message_en = "This certificate may not be used to sign in (an encryption certificate?)"


@register
class ChallengeInvalid(VerifyError):
    code = "verify_challenge_invalid"
    message_zh = "挑战值无效"
    message_en = "The challenge is invalid"
