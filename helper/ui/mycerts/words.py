"""The words 我的证书 shows: names of subject fields, key usages, expiry states."""

from __future__ import annotations

from helper.domain.expiry import ExpiryState
from helper.domain.presentation import contact_line, pin_locked_help
from helper.ui.notice.content import CONTACTS

SUBJECT_NAMES = {
    "CN": "名称",
    "O": "单位",
    "OU": "部门",
    "L": "城市",
    "ST": "省份",
    "C": "国家",
    "E": "电子邮箱",
    "SERIALNUMBER": "证件号码",
    "STREET": "地址",
    "T": "职务",
    "G": "名",
    "SN": "姓",
    "UID": "用户标识",
    "DC": "域",
}
KEY_USAGE_NAMES = {
    "digital_signature": "数字签名",
    "non_repudiation": "不可否认",
    "key_encipherment": "密钥加密",
    "data_encipherment": "数据加密",
    "key_agreement": "密钥协商",
    "key_cert_sign": "证书签发",
    "crl_sign": "CRL 签发",
    "encipher_only": "仅加密",
    "decipher_only": "仅解密",
}
EKU_NAMES = {
    "client_auth": "客户端身份验证",
    "server_auth": "服务器身份验证",
    "email_protection": "安全电子邮件",
    "code_signing": "代码签名",
    "time_stamping": "时间戳",
    "ocsp_signing": "OCSP 签名",
    "document_signing": "文档签名",
    "document_signing_ms": "文档签名",
    "smart_card_logon": "智能卡登录",
    "any_extended_key_usage": "任意用途",
}
#: expiry state → the row's tag (its text colour)
EXPIRY_TAGS = {
    ExpiryState.EXPIRED: "expired",
    ExpiryState.URGENT: "urgent",
    ExpiryState.WARNING: "warning",
    ExpiryState.OK: "",
}
#: expiry state → the details pane's text style
EXPIRY_STYLES = {
    ExpiryState.EXPIRED: "danger",
    ExpiryState.URGENT: "warn",
    ExpiryState.WARNING: "warn",
    ExpiryState.OK: "",
}
#: what an old certificate kept after its renewal is called
ARCHIVED_WORDS = "已归档 (archived)"
EXPIRY_WORDS = {
    ExpiryState.OK: "正常 (valid)",
    ExpiryState.WARNING: "30 天内到期 (expires within 30 days)",
    ExpiryState.URGENT: "7 天内到期 (expires within 7 days)",
    ExpiryState.EXPIRED: "已过期 (expired)",
}

#: after the key's name in the table when its PIN is locked
LOCKED_MARK = "（密码已锁定 PIN locked）"
#: a locked PIN: call the CA (the first 技术支持 contact: the CA office)
LOCKED_HELP = pin_locked_help(*contact_line(*CONTACTS[0]))
