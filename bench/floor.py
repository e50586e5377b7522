"""The floor: the same libvirt work as our provider, as plain libvirt-python calls.

One shared connection (opened before the clock starts), no locks, no ledger, no reads beyond
what each step needs, no hashing of the image. The domain XML is rendered by the same template
(``tdx_provider.guest.xml.render``), so both boot identical guests. The graceful stop presses
the ACPI
button and polls the domain state every 10 ms.
"""

from __future__ import annotations

import time
from pathlib import Path

import libvirt
from lxml import etree

from tdx_provider.guest import xml
from tdx_provider.metadata import Owner

from .common import CMDLINE, DOMAIN_TYPE, MEMORY_MIB, SHUTDOWN_TIMEOUT, URI, VCPUS, TestGuest
from .layout import Layout, qcow2_virtual_size
from .teardown import GuestTeardown

POLL = 0.010
RESEND_ACPI_EVERY = 5.0
CHUNK = 4 * 1024 * 1024
# Our engine reads the 512-byte image header first, then 4 MiB chunks; the floor sends the same
# pieces. (On this machine a stream fed 4 MiB pieces from offset 0 was reproducibly ~1.5x slower
# than the same bytes with a 512-byte first piece; the floor should not be handicapped by that.)
HEADER = 512
UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
    | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
)


def _pool_xml(name: str, path: str) -> str:
    root = etree.Element("pool", type="dir")
    etree.SubElement(root, "name").text = name
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "path").text = path
    etree.SubElement(etree.SubElement(target, "permissions"), "mode").text = "0755"
    return etree.tostring(root, encoding="unicode")


def _volume_xml(name: str, capacity: int, fmt: str, mode: str,
                backing: str | None = None) -> str:
    root = etree.Element("volume")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "capacity", unit="bytes").text = str(capacity)
    if backing is None:  # as our engine does: without it libvirt preallocates the volume
        etree.SubElement(root, "allocation", unit="bytes").text = "0"
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "format", type=fmt)
    etree.SubElement(etree.SubElement(target, "permissions"), "mode").text = mode
    if backing is not None:
        store = etree.SubElement(root, "backingStore")
        etree.SubElement(store, "path").text = backing
        etree.SubElement(store, "format", type="qcow2")
    return etree.tostring(root, encoding="unicode")


def upload_file(conn: libvirt.virConnect, vol: libvirt.virStorageVol, source: Path) -> None:
    """Plain libvirt upload stream of a local file into a volume (no hashing)."""
    stream = conn.newStream(0)
    vol.upload(stream, 0, source.stat().st_size, 0)
    with source.open("rb") as handle:
        chunk = handle.read(HEADER)
        while chunk:
            offset = 0
            while offset < len(chunk):
                offset += stream.send(chunk[offset:] if offset else chunk)
            chunk = handle.read(CHUNK)
    stream.finish()


class FloorDriver:
    kind = "floor"

    def __init__(self, layout: Layout, guest: TestGuest, source: Path | None = None,
                 uri: str = URI) -> None:
        self.layout = layout
        self.guest = guest
        self.source = source or guest.base_image
        self.capacity = qcow2_virtual_size(self.source)
        self.conn = libvirt.open(uri)
        self.owner = Owner("ptdx-bench", "floor", "td")
        self._pool: libvirt.virStoragePool | None = None
        self._base_path = ""
        self._overlay_paths: dict[int, str] = {}

    @property
    def pool(self) -> libvirt.virStoragePool:
        assert self._pool is not None
        return self._pool

    def create_pool(self) -> None:
        pool = self.conn.storagePoolDefineXML(_pool_xml(self.layout.pool, self.layout.pool_path), 0)
        pool.build(0)
        pool.create(0)
        pool.setAutostart(0)
        pool.refresh(0)
        self._pool = pool

    def import_base(self) -> None:
        fmt = "qcow2" if self.source.suffix == ".qcow2" else "raw"
        vol = self.pool.createXML(
            _volume_xml(self.layout.base, self.capacity, fmt, "0644"), 0)
        upload_file(self.conn, vol, self.source)
        self._base_path = vol.path()

    def create_overlay(self, i: int) -> None:
        vol = self.pool.createXML(_volume_xml(self.layout.overlay(i), self.capacity, "qcow2",
                                              "0600", backing=self._base_path), 0)
        self._overlay_paths[i] = vol.path()

    def domain_xml(self, i: int) -> str:
        spec = xml.DomainSpec(
            name=self.layout.domain(i), owner=self.owner, memory_mib=MEMORY_MIB, vcpus=VCPUS,
            disk=xml.Disk(self._overlay_paths[i], (xml.BackingLayer(self._base_path, "qcow2"),)),
            tdx=False, domain_type=DOMAIN_TYPE, kernel=str(self.guest.kernel),
            initrd=str(self.guest.initrd), cmdline=CMDLINE, network=None, vsock=False,
            console_log=str(self.layout.console(i)), shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        return xml.render(spec)

    def create_domain(self, i: int) -> None:
        dom = self.conn.defineXMLFlags(self.domain_xml(i), libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        dom.create()
        dom.setAutostart(0)

    def delete_domain(self, i: int) -> GuestTeardown:
        record = GuestTeardown(self.layout.domain(i))
        record.requested = time.monotonic()
        dom = self.conn.lookupByName(self.layout.domain(i))
        deadline = record.requested + SHUTDOWN_TIMEOUT
        next_press = record.requested
        graceful = True
        while dom.isActive():
            if time.monotonic() >= deadline:
                dom.destroy()
                graceful = False
                break
            if time.monotonic() >= next_press:
                dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
                next_press = time.monotonic() + RESEND_ACPI_EVERY
            time.sleep(POLL)
        record.reported = round(time.monotonic() - record.requested, 3)
        record.graceful = graceful
        dom.undefineFlags(UNDEFINE_FLAGS)
        record.returned = time.monotonic()
        return record

    def delete_overlay(self, i: int) -> None:
        self.pool.storageVolLookupByName(self.layout.overlay(i)).delete(0)

    def delete_base(self) -> None:
        self.pool.storageVolLookupByName(self.layout.base).delete(0)

    def delete_pool(self) -> None:
        self.pool.destroy()
        self.pool.delete(0)
        self.pool.undefine()

    def close(self) -> None:
        self.conn.close()
