"""GM/T 0016-2012 (SKF) USB keys: the low-level ctypes binding.

- :mod:`drivers.skf.abi` — type widths, packed structures, constants
- :mod:`drivers.skf.library` — :class:`SkfLibrary`, one thin typed method per SKF call
- :mod:`drivers.skf.errors` — every ``SAR_*`` code mapped once to :mod:`drivers.errors`
- :mod:`drivers.skf.keys` — public key blobs ↔ SubjectPublicKeyInfo, signature blobs

The token driver (``TokenDriver`` over SKF) is built on top of these.
"""

from drivers.skf.abi import ContainerType, DevEvent, PinType, Sar
from drivers.skf.library import (
    AppHandle,
    ConHandle,
    DevHandle,
    DeviceEvent,
    DeviceInfo,
    PinInfo,
    SkfLibrary,
)

__all__ = [
    "AppHandle",
    "ConHandle",
    "ContainerType",
    "DevEvent",
    "DevHandle",
    "DeviceEvent",
    "DeviceInfo",
    "PinInfo",
    "PinType",
    "Sar",
    "SkfLibrary",
]
