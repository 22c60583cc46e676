"""The one error hierarchy of certhelper.

Every error carries a stable ``code`` (documented in docs/errors.md), a Chinese
message and an English one. python-pkcs11 exceptions are translated into these
exactly once, in :func:`drivers.pkcs11.errors.map_pkcs11_error`; nothing above
the driver ever sees a ``pkcs11.exceptions`` type.

The helper layer adds its own subclasses (certificate lookup, PIN policy,
config) on top of :class:`CertHelperError`.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CertHelperError(Exception):
    """Base class: a stable code plus zh_CN and English messages."""

    code: ClassVar[str] = "internal_error"
    message_zh: ClassVar[str] = "内部错误"
    message_en: ClassVar[str] = "Internal error"
    #: process exit code used by the CLI when this error ends a command
    exit_code: ClassVar[int] = 1

    def __init__(self, detail: str | None = None, **data: Any) -> None:
        self.detail = detail
        self.data = data
        super().__init__(self.message())

    def message(self) -> str:
        text = f"{self.message_zh} ({self.message_en})"
        if self.detail:
            text += f": {self.detail}"
        return text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }
        if self.detail:
            out["detail"] = self.detail
        if self.data:
            out["data"] = self.data
        return out


# --- modules -----------------------------------------------------------------


class ModuleLoadFailed(CertHelperError):
    code = "module_load_failed"
    message_zh = "无法加载 PKCS#11 驱动模块"
    message_en = "Cannot load the PKCS#11 module"
    exit_code = 3


# --- tokens ------------------------------------------------------------------


class TokenAbsent(CertHelperError):
    code = "token_absent"
    message_zh = "未检测到 USB Key，或 Key 已被拔出"
    message_en = "The USB key is not present or was removed"
    exit_code = 3


class TokenNotFound(CertHelperError):
    code = "token_not_found"
    message_zh = "找不到指定的 USB Key"
    message_en = "No USB key matches the given label or serial"
    exit_code = 3


class TokenAmbiguous(CertHelperError):
    code = "token_ambiguous"
    message_zh = "插入了多个 USB Key，请指定要使用哪一个"
    message_en = "Several USB keys are inserted; say which one to use"
    exit_code = 3


class TokenBusy(CertHelperError):
    code = "token_busy"
    message_zh = "USB Key 正忙，请稍后再试"
    message_en = "The USB key is busy; try again later"
    exit_code = 3


class DeviceError(CertHelperError):
    code = "device_error"
    message_zh = "USB Key 操作失败"
    message_en = "The USB key reported an error"
    exit_code = 3


# --- PIN ---------------------------------------------------------------------


class PinError(CertHelperError):
    exit_code = 4


class PinIncorrect(PinError):
    code = "pin_incorrect"
    message_zh = "密码错误"
    message_en = "Incorrect PIN"


class PinLocked(PinError):
    code = "pin_locked"
    message_zh = "密码已锁定，请携带 USB Key 到 CA 办事处解锁"
    message_en = "The PIN is locked; take the key to the CA office to unlock it"


class PinLenRange(PinError):
    code = "pin_len_range"
    message_zh = "密码长度不符合要求"
    message_en = "The PIN length is outside the allowed range"


class PinInvalid(PinError):
    code = "pin_invalid"
    message_zh = "密码包含不允许的字符"
    message_en = "The PIN contains characters the key does not accept"


class PinExpired(PinError):
    code = "pin_expired"
    message_zh = "密码已过期，请先修改密码"
    message_en = "The PIN has expired and must be changed"


class NotLoggedIn(PinError):
    code = "not_logged_in"
    message_zh = "尚未登录 USB Key，请先输入密码"
    message_en = "Not logged in to the USB key"


# --- keys and mechanisms -----------------------------------------------------


class KeyNotFound(CertHelperError):
    code = "key_not_found"
    message_zh = "USB Key 中没有与证书对应的私钥"
    message_en = "No private key on the key matches the certificate"
    exit_code = 5


class MechanismUnsupported(CertHelperError):
    code = "mechanism_unsupported"
    message_zh = "USB Key 不支持该签名算法"
    message_en = "The key does not support this signature mechanism"
    exit_code = 6


class OperationTimeout(CertHelperError):
    code = "operation_timeout"
    message_zh = "USB Key 操作超时"
    message_en = "The USB key operation timed out"
    exit_code = 3


class BadInput(CertHelperError):
    code = "bad_input"
    message_zh = "输入数据无效"
    message_en = "Invalid input"
    exit_code = 2


ALL_ERRORS: list[type[CertHelperError]] = []


def register(cls: type[CertHelperError]) -> type[CertHelperError]:
    """Record an error class for the documented table (docs/errors.md)."""
    ALL_ERRORS.append(cls)
    return cls


for _cls in (
    CertHelperError,
    ModuleLoadFailed,
    TokenAbsent,
    TokenNotFound,
    TokenAmbiguous,
    TokenBusy,
    DeviceError,
    PinIncorrect,
    PinLocked,
    PinLenRange,
    PinInvalid,
    PinExpired,
    NotLoggedIn,
    KeyNotFound,
    MechanismUnsupported,
    OperationTimeout,
    BadInput,
):
    register(_cls)


# --- writing to a token (online renewal) -------------------------------------


@register
class CertificateExists(CertHelperError):
    code = "certificate_exists"
    message_zh = "该证书已在 USB Key 上"
    message_en = "This certificate is already on the USB key"
    exit_code = 5


@register
class TokenChanged(CertHelperError):
    """The token no longer holds what the caller read from it (e.g. the certificate
    to replace): nothing was written."""

    code = "token_changed"
    message_zh = "USB Key 上的证书已变化，请重新操作"
    message_en = "The certificates on the USB key changed; start again"
    exit_code = 3


# --- SKF (GM/T 0016) objects: applications, containers, files ----------------


@register
class ObjectNotFound(CertHelperError):
    """An SKF application, container, file or certificate the caller named is not there."""

    code = "object_not_found"
    message_zh = "USB Key 中没有指定的应用、容器或证书"
    message_en = "The USB key has no such application, container or certificate"
    exit_code = 5


@register
class ObjectExists(CertHelperError):
    code = "object_exists"
    message_zh = "USB Key 中已有同名的应用、容器或文件"
    message_en = "The USB key already holds an application, container or file of that name"
    exit_code = 5


@register
class TokenFull(CertHelperError):
    code = "token_full"
    message_zh = "USB Key 存储空间已满，或容器数量已达上限"
    message_en = "The USB key is full or holds as many containers as it can"
    exit_code = 5
