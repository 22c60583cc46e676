"""The PKCS#11 family: python-pkcs11 over a vendor's module, one worker thread per module."""

from drivers.pkcs11.driver import Pkcs11Driver
from drivers.pkcs11.errors import map_pkcs11_error, pin_state_from_flags

__all__ = ["Pkcs11Driver", "map_pkcs11_error", "pin_state_from_flags"]
