"""A volume delete while another domain on the host is being shut down.

After a guest powers off, libvirt keeps that domain locked until QEMU has exited (about 1.5-2 s
here, see the teardown table). Every call that touches that domain waits for it: not only
``listAllDomains`` but ``listDefinedDomains``, ``listDomainsID``, ``lookupByName`` and
``XMLDesc(VIR_DOMAIN_XML_INACTIVE)`` (1.41 s each in one probe on libvirt 9.0), and no choice of
flags avoids it. The third figure below (a bare listing, by another client) shows it. Our delete
asks :mod:`tdx_provider.storage.disk_users` which domains use the volume; that module judges
a domain
it knows is being stopped by what it already read, so the delete does not wait for it.

Each run boots one guest, presses its ACPI button, and as soon as QEMU reports the guest's
power-off deletes two unrelated overlays at the same moment: one through our engine, one with a
plain libvirt call. The same two deletes are also timed with no shutdown in progress.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import libvirt

from tdx_provider.metadata import Owner
from tdx_provider.storage import volume

from .common import (
    BOOT_SETTLE,
    BOOT_TIMEOUT,
    URI,
    TestGuest,
    clear_libvirt,
    median,
    reset_consoles,
)
from .floor import FloorDriver, _volume_xml
from .layout import Layout, qcow2_virtual_size
from .observe import ConsoleWatcher, LifecycleRecorder

OWNER = Owner("ptdx-bench", "stall", "disk")
EVENT_TIMEOUT = 30.0


def _spare_overlays(conn: libvirt.virConnect, floor: FloorDriver, layout: Layout) -> None:
    base = floor.pool.storageVolLookupByName(layout.base).path()
    volume.create_overlay(conn, layout.pool, f"{layout.prefix}ours.qcow2", base, OWNER)
    floor.pool.createXML(_volume_xml(f"{layout.prefix}plain.qcow2",
                                     qcow2_virtual_size(floor.source), "qcow2", "0600",
                                     backing=base), 0)


def _delete_both(conn: libvirt.virConnect, bystander: libvirt.virConnect, floor: FloorDriver,
                 layout: Layout) -> dict[str, float]:
    """Delete the two spare overlays at the same moment, while another client of the host lists
    its domains; return the seconds each took."""
    took: dict[str, float] = {}
    start = threading.Barrier(3)

    def ours() -> None:
        start.wait()
        t0 = time.monotonic()
        volume.delete(conn, layout.pool, f"{layout.prefix}ours.qcow2")
        took["ours"] = time.monotonic() - t0

    def plain() -> None:
        start.wait()
        t0 = time.monotonic()
        floor.pool.storageVolLookupByName(f"{layout.prefix}plain.qcow2").delete(0)
        took["plain"] = time.monotonic() - t0

    def listing() -> None:  # what any "which domains use this disk?" scan must do first
        start.wait()
        t0 = time.monotonic()
        bystander.listAllDomains(0)
        took["list"] = time.monotonic() - t0

    threads = [threading.Thread(target=f) for f in (ours, plain, listing)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return took


def _wait_for_event(events: LifecycleRecorder, name: str, label: str) -> float:
    deadline = time.monotonic() + EVENT_TIMEOUT
    while label not in (seen := events.times(name)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {label} event for {name} within {EVENT_TIMEOUT} s")
        time.sleep(0.002)
    return seen[label]


def run_once(guest: TestGuest, events: LifecycleRecorder, uri: str = URI) -> dict[str, Any]:
    layout = Layout("stall", 1)
    reset_consoles()
    events.reset()
    floor = FloorDriver(layout, guest, uri=uri)
    conn = libvirt.open(uri)
    bystander = libvirt.open(uri)
    name = layout.domain(0)
    try:
        with ConsoleWatcher(layout.consoles) as console:
            floor.create_pool()
            floor.import_base()
            floor.create_overlay(0)
            floor.create_domain(0)
            console.wait_for("userspace", [name], BOOT_TIMEOUT)
            time.sleep(BOOT_SETTLE)
            _spare_overlays(conn, floor, layout)
            idle = _delete_both(conn, bystander, floor, layout)
            _spare_overlays(conn, floor, layout)
            conn.lookupByName(name).shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
            powered_off = _wait_for_event(events, name, "qemu_shutdown")
            during = _delete_both(conn, bystander, floor, layout)
            stopped = _wait_for_event(events, name, "stopped")
    finally:  # the pool also holds our engine's ledger: remove everything by prefix
        conn.close()
        bystander.close()
        floor.close()
        clear_libvirt(layout.prefix, uri=uri)
    return {
        "idle": {k: round(v, 4) for k, v in idle.items()},
        "during_shutdown": {k: round(v, 4) for k, v in during.items()},
        "qemu_exit": round(stopped - powered_off, 3),
    }


def run_stall(guest: TestGuest, events: LifecycleRecorder, runs: int, uri: str = URI
              ) -> dict[str, Any]:
    samples = [run_once(guest, events, uri) for _ in range(runs)]

    def med(*path: str) -> float | None:
        values = []
        for sample in samples:
            value: Any = sample
            for key in path:
                value = value[key]
            values.append(value)
        return median(values)

    return {
        "runs": samples,
        "median": {k: round(v, 4) if v is not None else None for k, v in {
            "ours_idle": med("idle", "ours"), "plain_idle": med("idle", "plain"),
            "ours_during_shutdown": med("during_shutdown", "ours"),
            "plain_during_shutdown": med("during_shutdown", "plain"),
            "list_idle": med("idle", "list"),
            "list_during_shutdown": med("during_shutdown", "list"),
            "qemu_exit": med("qemu_exit"),
        }.items()},
    }
