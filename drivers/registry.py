"""Driver families and the one live driver per library file.

A family is a name ("pkcs11", "skf") and a factory that loads one
library file into a :class:`~drivers.protocol.TokenDriver`. Which files to
load comes from the caller (the helper's configuration) and from the catalog
(``catalog.toml``, each entry tagged with its family). Adding a family is a
new module beside ``drivers/pkcs11/`` and one line in :data:`FAMILIES`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from drivers import errors as E
from drivers.catalog import installed_modules, load_catalog
from drivers.protocol import TokenDriver

#: (library file, key-operation timeout, 64-bit ULONG for SKF) -> driver
Factory = Callable[[str, float, bool], TokenDriver]


def _pkcs11(path: str, timeout: float, native_long: bool) -> TokenDriver:
    from drivers.pkcs11.driver import Pkcs11Driver  # python-pkcs11 only when needed

    return Pkcs11Driver(path, timeout=timeout)


def _skf(path: str, timeout: float, native_long: bool) -> TokenDriver:
    from drivers.skf.driver import SkfDriver

    return SkfDriver(path, timeout=timeout, native_long=native_long)


FAMILIES: dict[str, Factory] = {"pkcs11": _pkcs11, "skf": _skf}

_LIVE: dict[tuple[str, str], TokenDriver] = {}
_LIVE_LOCK = threading.Lock()


def get_driver(
    path: str | os.PathLike[str],
    *,
    family: str = "pkcs11",
    timeout: float = 30.0,
    native_long: bool = False,
) -> TokenDriver:
    """The one live driver for a library file in this process.

    A library is loaded once per process and its login state is per process, so
    two drivers on one file would share a login and break the one-thread rule.
    """
    factory = FAMILIES.get(family)
    if factory is None:
        raise E.ModuleLoadFailed(detail=f"unknown driver family {family!r}")
    key = (family, os.path.realpath(path))
    with _LIVE_LOCK:
        drv = _LIVE.get(key)
        if drv is None or getattr(drv, "closed", False):
            drv = factory(os.fspath(path), timeout, native_long)
            _LIVE[key] = drv
        return drv


@dataclass(frozen=True)
class LibraryRequest:
    """A library to load: its family, its file, and who asked for it."""

    family: str
    path: str
    source: str  # "config", "command line", or the catalog entry id
    #: SKF only: the library was built with a 64-bit ULONG (drivers.skf.abi)
    native_long: bool = False


def requested_libraries(
    explicit: Iterable[LibraryRequest], *, use_catalog: bool
) -> list[LibraryRequest]:
    """The explicit requests, then the catalogued libraries found on this machine;
    one request per real file."""
    wanted = list(explicit)
    if use_catalog:
        wanted += [
            LibraryRequest(e.family, path, e.id, e.native_long)
            for e, path in installed_modules(load_catalog())
        ]
    seen: set[str] = set()
    out = []
    for req in wanted:
        real = os.path.realpath(req.path)
        if real in seen:
            continue
        seen.add(real)
        out.append(req)
    return out


def families() -> Sequence[str]:
    return tuple(FAMILIES)
