"""Hot-plug: a device directory that appears or disappears is a key plugged in or pulled out."""

from __future__ import annotations

import ctypes
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from queue import Empty, Queue

import pytest

from drivers import errors as E
from drivers.skf import DevEvent, DeviceEvent, Sar
from drivers.skf import abi as skf_abi
from drivers.skf.library import SkfLibrary
from drivers.types import Pin
from tests.drivers.skf.conftest import USER_PIN, Skf, stage_device

TIMEOUT = 10.0


@contextmanager
def waiting(lib: SkfLibrary) -> Iterator[Queue]:
    """SKF_WaitForDevEvent on a thread; its result (or exception) arrives on the queue."""
    results: Queue = Queue()

    def wait() -> None:
        try:
            results.put(lib.wait_for_device_event())
        except Exception as exc:
            results.put(exc)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    try:
        yield results
    finally:
        if thread.is_alive():
            lib.cancel_wait()
        thread.join(TIMEOUT)
        assert not thread.is_alive()


def next_event(results: Queue) -> DeviceEvent | None:
    try:
        result = results.get(timeout=TIMEOUT)
    except Empty:
        pytest.fail("no device event within the timeout")
    if isinstance(result, Exception):
        raise result
    return result


def test_removed_mid_session_reads_as_token_absent(skf: Skf) -> None:
    dev, app, con = skf.open_container("gm_company_sign")
    skf.lib.ecc_sign(con, bytes(32))
    shutil.rmtree(skf.device_path("gm1"))
    with pytest.raises(E.TokenAbsent, match="SAR_DEVICE_REMOVED"):
        skf.lib.ecc_sign(con, bytes(32))
    with pytest.raises(E.TokenAbsent, match="SAR_DEVICE_REMOVED"):
        skf.lib.device_info(dev)
    with pytest.raises(E.TokenAbsent, match="SAR_DEVICE_REMOVED"):
        skf.lib.pin_info(app)
    with pytest.raises(E.TokenAbsent, match="SAR_DEVICE_REMOVED"):
        skf.lib.verify_pin(app, Pin(USER_PIN))
    with pytest.raises(E.TokenAbsent, match="SAR_DEVICE_REMOVED"):
        skf.lib.export_certificate(con)
    assert skf.device("gm1")["device_name"] not in skf.lib.enum_devices()
    info = skf_abi.DEVINFO()
    assert skf.lib.raw("SKF_GetDevInfo")(dev, ctypes.byref(info)) == Sar.DEVICE_REMOVED
    skf.lib.disconnect(dev)  # releasing a removed device's handle works
    skf._opened.remove(dev)


def test_replugged_device_needs_a_new_connection(skf: Skf, tmp_path) -> None:
    path = skf.device_path("gm2")
    away = tmp_path / "unplugged"
    dev, _, con = skf.open_container("gm2_sign")
    path.rename(away)
    with pytest.raises(E.TokenAbsent):
        skf.lib.ecc_sign(con, bytes(32))
    away.rename(path)  # the same directory, back again
    with pytest.raises(E.TokenAbsent):
        skf.lib.ecc_sign(con, bytes(32))
    with pytest.raises(E.TokenAbsent):
        skf.lib.device_info(dev)
    _, _, fresh = skf.open_container("gm2_sign")
    skf.lib.ecc_sign(fresh, bytes(32))


def test_a_device_replaced_under_the_same_name_is_another_device(skf: Skf, tmp_path) -> None:
    path = skf.device_path("gm2")
    spare = tmp_path / "spare"
    shutil.copytree(path, spare)
    dev = skf.connect("gm2")
    shutil.rmtree(path)
    spare.rename(path)
    with pytest.raises(E.TokenAbsent):
        skf.lib.device_info(dev)


def test_insertion_and_removal_are_seen_by_wait_for_dev_event(skf: Skf) -> None:
    name = skf.device("gm2")["device_name"]
    path = skf.device_path("gm2")
    unplugged = skf.dir.parent / "unplugged"
    path.rename(unplugged)
    assert name not in skf.lib.enum_devices()  # also the starting point of the wait

    with waiting(skf.lib) as results:
        staged = stage_device(unplugged, skf.dir, name)
        staged.rename(path)
        event = next_event(results)
    assert event == DeviceEvent(name, DevEvent.INSERTED)
    assert name in skf.lib.enum_devices()

    with waiting(skf.lib) as results:
        shutil.rmtree(path)
        event = next_event(results)
    assert event == DeviceEvent(name, DevEvent.REMOVED)


def test_events_are_queued_one_per_call(skf: Skf) -> None:
    skf.lib.enum_devices()
    names = [skf.device(n)["device_name"] for n in ("gm1", "gm2")]
    for n in ("gm1", "gm2"):
        shutil.rmtree(skf.device_path(n))
    seen = []
    for _ in names:
        with waiting(skf.lib) as results:
            seen.append(next_event(results))
    assert sorted(seen, key=lambda e: e.name) == [DeviceEvent(n, DevEvent.REMOVED) for n in names]


def test_cancel_ends_a_wait(skf: Skf) -> None:
    skf.lib.enum_devices()
    with waiting(skf.lib) as results:
        threading.Event().wait(0.3)
        skf.lib.cancel_wait()
        assert next_event(results) is None


def test_wait_keeps_the_event_when_the_buffer_is_short(skf: Skf) -> None:
    skf.lib.enum_devices()
    name = skf.device("gm_empty")["device_name"]
    shutil.rmtree(skf.device_path("gm_empty"))
    wait = skf.lib.raw("SKF_WaitForDevEvent")
    buffer = ctypes.create_string_buffer(64)
    length, event = skf_abi.ULONG(3), skf_abi.ULONG(0)
    assert wait(buffer, ctypes.byref(length), ctypes.byref(event)) == Sar.BUFFER_TOO_SMALL
    assert length.value == len(name) + 1
    length.value = 64
    assert wait(buffer, ctypes.byref(length), ctypes.byref(event)) == Sar.OK
    assert buffer.value.decode() == name and event.value == DevEvent.REMOVED
    assert length.value == len(name) + 1
    assert wait(None, ctypes.byref(length), ctypes.byref(event)) == Sar.INVALIDPARAMERR
