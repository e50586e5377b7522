"""A disk that a running guest has only in its live definition is in use (issue 18, point 2).

``virsh attach-disk DOM PATH vdb --live`` puts a disk into a running domain's live definition
alone; its persistent definition never names it. Every check that decides whether a volume or
file is free must still see it, and name the guest: the disk-user index, ``pool-cleanup``,
``tdxctl delete`` (what it releases), Overlay and BaseImage delete, the unfinished-import
discard and ``volume.grow``. One running guest per host (module-wide) takes each test's disk
by hot-plug and gives it back by hot-unplug.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from tdx_provider import events
from tdx_provider.connection import connect
from tdx_provider.errors import InUseError
from tdx_provider.guest import domain, xml
from tdx_provider.metadata import Owner
from tdx_provider.storage import cleanup, disk_users, ledger, pool, volume
from tdx_provider.storage.exclusion import pool_lock
from tdx_provider.tdxctl.main import main as tdxctl
from tests.conftest import LIBVIRT_PREFIX, SCRATCH_ROOT
from tests.support import guest as tg
from tests.support.cleanup import remove_prefixed

pytestmark = pytest.mark.libvirt
BOOT_TIMEOUT = 90.0
EVENT_TIMEOUT = 30.0
PROJECT = "live-disk-tests"


@dataclass(frozen=True)
class Host:
    uri: str
    pool: str  # also the prefix of every name here
    directory: Path
    guest: str  # running, persistent: it takes the disks live
    base: str  # the base image its own disk is an overlay of

    def owner(self, resource: str) -> Owner:
        return Owner(PROJECT, self.pool, resource)


def _spec(name: str, owner: Owner, overlay: str, base: str, guest: tg.TestGuest,
          console: Path) -> str:
    return xml.render_and_validate(xml.DomainSpec(
        name=name, owner=owner, memory_mib=256, vcpus=1, tdx=False, domain_type="qemu",
        disk=xml.Disk(overlay, (xml.BackingLayer(base, "qcow2"),)),
        kernel=str(guest.kernel), initrd=str(guest.initrd), cmdline=tg.CMDLINE,
        vsock=False, network=None, console_log=str(console), shutdown_timeout=30,
    ))


@pytest.fixture(scope="module")
def host(qemu_uri: str, guest: tg.TestGuest) -> Iterator[Host]:
    prefix = f"{LIBVIRT_PREFIX}{uuid.uuid4().hex[:8]}"
    directory = SCRATCH_ROOT / prefix
    directory.mkdir(parents=True)
    name = f"{prefix}-guest"
    with connect(qemu_uri) as conn:
        try:
            pool.ensure(conn, prefix, str(directory / "pool"), autostart=False)
            base = volume.import_base(conn, prefix, "base", str(guest.base_image),
                                      Owner(PROJECT, prefix, "base"))[0].path
            site = Host(qemu_uri, prefix, directory, name, base)
            disk = _overlay(conn, site, "guest-disk")
            console = directory / "guest.log"
            domain.create(conn, name, _spec(name, site.owner("guest"), disk, base, guest,
                                            console), site.owner("guest"))
            tg.wait_for_text(console, tg.USERSPACE_MARKER, BOOT_TIMEOUT)
            yield site
        finally:
            remove_prefixed(conn, prefix)
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def conn(host: Host) -> Iterator[libvirt.virConnect]:
    with connect(host.uri) as opened:
        yield opened


def _disk_xml(path: str, target: str, fmt: str = "qcow2") -> str:
    return (f"<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/>"
            f"<source file='{path}'/><target dev='{target}' bus='virtio'/></disk>")


def _in_live_definition(dom: libvirt.virDomain, path: str) -> bool:
    doc = etree.fromstring(dom.XMLDesc(0))
    return any(s.get("file") == path for s in doc.iterfind("devices/disk/source"))


class DeviceEvents:
    """libvirt's device-added and device-removed events for one domain, on a client of its
    own: (event, alias) in arrival order."""

    def __init__(self, watcher: libvirt.virConnect, name: str) -> None:
        self.seen: list[tuple[str, str]] = []
        self._arrived = threading.Condition()
        dom = watcher.lookupByName(name)
        self._callbacks = [
            watcher.domainEventRegisterAny(dom, event_id, self._on(label), None)
            for event_id, label in ((libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, "added"),
                                    (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, "removed"))]
        self._watcher = watcher

    def _on(self, label: str) -> Callable[[object, object, str, object], None]:
        def record(_conn: object, _dom: object, alias: str, _opaque: object) -> None:
            with self._arrived:
                self.seen.append((label, alias))
                self._arrived.notify_all()
        return record

    def wait_for(self, label: str) -> str:
        """The alias of the first ``label`` event (waits for it)."""
        with self._arrived:
            found = self._arrived.wait_for(
                lambda: any(seen == label for seen, _ in self.seen), EVENT_TIMEOUT)
            assert found, f"no device-{label} event within {EVENT_TIMEOUT} s: {self.seen}"
            return next(alias for seen, alias in self.seen if seen == label)

    def close(self) -> None:
        for callback in self._callbacks:
            self._watcher.domainEventDeregisterAny(callback)


@contextlib.contextmanager
def device_events(uri: str, name: str) -> Iterator[DeviceEvents]:
    events.start_loop()
    with connect(uri) as watcher:
        watched = DeviceEvents(watcher, name)
        try:
            yield watched
        finally:
            watched.close()


@contextlib.contextmanager
def plugged(host: Host, path: str, target: str = "vdb", fmt: str = "qcow2"
            ) -> Iterator[DeviceEvents]:
    """``path`` hot-plugged into the running guest's live definition alone (as ``virsh
    attach-disk --live``), and the guest's device events meanwhile; unplugged afterwards,
    waiting until libvirt reports it gone (also when the test failed: the next one needs the
    slot)."""
    with connect(host.uri) as conn, device_events(host.uri, host.guest) as seen:
        dom = conn.lookupByName(host.guest)
        disk = _disk_xml(path, target, fmt)
        dom.attachDeviceFlags(disk, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        try:
            assert _in_live_definition(dom, path)
            assert path not in dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), "live only"
            yield seen
        finally:
            dom.detachDeviceFlags(disk, libvirt.VIR_DOMAIN_AFFECT_LIVE)
            seen.wait_for("removed")
            assert not _in_live_definition(dom, path)


def _overlay(conn: libvirt.virConnect, host: Host, name: str) -> str:
    return volume.create_overlay(conn, host.pool, name, host.base, host.owner(name)).path


def _release(conn: libvirt.virConnect, host: Host, name: str) -> None:
    """What ``tdxctl delete`` does to the overlay of a domain it removed."""
    with pool_lock(conn, host.pool) as locked:
        assert ledger.release(locked, name)


def _exists(conn: libvirt.virConnect, host: Host, name: str) -> bool:
    return volume.path_in_pool(conn, host.pool, name) is not None


def test_the_index_sees_a_disk_plugged_live_and_unplugged_through_device_events(
    host: Host, conn: libvirt.virConnect,
) -> None:
    """Both hosts (9.0 and 12.8) announce a live hot-plug with device-added and a live
    hot-unplug with device-removed (the index marks the guest unsettled on each), and the
    index's users follow the live definition."""
    path = _overlay(conn, host, "indexed")
    disk_users.scan(conn)  # the index has read the guest before the disk came
    with plugged(host, path) as seen:
        alias = seen.wait_for("added")
        assert [d.name for d in disk_users.users(conn, path)] == [host.guest]
    assert seen.seen == [("added", alias), ("removed", alias)]
    assert disk_users.users(conn, path) == []
    volume.delete(conn, host.pool, "indexed")


def test_pool_cleanup_keeps_a_released_overlay_a_running_guest_has_plugged_live(
    host: Host, conn: libvirt.virConnect,
) -> None:
    """The user's hole: an overlay released by ``tdxctl delete`` is then hot-plugged into
    another running guest. ``pool-cleanup`` keeps it and says which guest uses it."""
    path = _overlay(conn, host, "released")
    _release(conn, host, "released")
    lib_pool = conn.storagePoolLookupByName(host.pool)
    with plugged(host, path):
        for dry_run in (True, False):
            rows = [r for r in cleanup.cleanup_pool(conn, lib_pool, dry_run) if
                    r.volume == "released"]
            assert [(r.action, r.reason) for r in rows] == [
                ("kept", f"used by domain(s) {host.guest}")], f"dry_run={dry_run}"
        assert _exists(conn, host, "released")
    rows = [r for r in cleanup.cleanup_pool(conn, lib_pool, False) if r.volume == "released"]
    assert [r.action for r in rows] == ["removed"], "unplugged, it is an orphan again"


def test_overlay_delete_is_refused_while_a_running_guest_has_it_plugged_live(
    host: Host, conn: libvirt.virConnect,
) -> None:
    path = _overlay(conn, host, "declared")
    with plugged(host, path):
        with pytest.raises(InUseError, match=f"'declared' is used by domain\\(s\\) {host.guest};"):
            volume.delete(conn, host.pool, "declared")
        assert _exists(conn, host, "declared")
    volume.delete(conn, host.pool, "declared")
    assert not _exists(conn, host, "declared")


def test_base_delete_is_refused_while_a_live_disk_outside_any_pool_is_backed_by_it(
    host: Host, conn: libvirt.virConnect, guest: tg.TestGuest,
) -> None:
    """An overlay made by hand (``qemu-img create -b``) outside every pool and plugged live:
    no pool volume is backed by the base, only the guest's live backing chain names it."""
    base = volume.import_base(conn, host.pool, "other-base", str(guest.base_image),
                              host.owner("other-base"))[0].path
    by_hand = host.directory / "by-hand.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base,
                    str(by_hand)], check=True, timeout=60)
    with plugged(host, str(by_hand)):
        assert volume.volumes_backed_by(conn, base) == []
        with pytest.raises(InUseError, match=f"'other-base' is used by domain\\(s\\) "
                                             f"{host.guest} \\(in a backing chain\\)"):
            volume.delete(conn, host.pool, "other-base")
        assert _exists(conn, host, "other-base")
    volume.delete(conn, host.pool, "other-base")
    assert not _exists(conn, host, "other-base")


def test_tdxctl_delete_does_not_release_an_overlay_another_running_guest_has_plugged_live(
    host: Host, conn: libvirt.virConnect, guest: tg.TestGuest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``tdxctl delete`` of the domain an overlay belongs to would give the overlay up; while
    another guest uses it live, it stays declared, and the output names that guest."""
    owner = host.owner("shared-vm")
    path = _overlay(conn, host, "shared")
    name = f"{host.pool}-shared-vm"
    conn.defineXMLFlags(_spec(name, owner, path, host.base, guest,
                              host.directory / "shared.log"), libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
    lib_pool = conn.storagePoolLookupByName(host.pool)
    with plugged(host, path):
        capsys.readouterr()
        assert tdxctl(["delete", name, "--uri", host.uri]) == 0
        out = capsys.readouterr().out
        assert f"its overlay is not released: used by domain(s) {host.guest}" in out, out
        assert domain.lookup(conn, name) is None
        assert not ledger.read(lib_pool)["shared"].released
        rows = [r for r in cleanup.cleanup_pool(conn, lib_pool, False) if r.volume == "shared"]
        assert rows == [], "used and declared: not a candidate"
    rows = [r for r in cleanup.cleanup_pool(conn, lib_pool, False) if r.volume == "shared"]
    assert [(r.action, r.reason) for r in rows] == [("kept", cleanup.DECLARED)]
    assert _exists(conn, host, "shared")


def test_growing_an_overlay_a_running_guest_has_plugged_live_resizes_it_through_qemu(
    host: Host, conn: libvirt.virConnect,
) -> None:
    """The running guest must see the new size (``blockResize``); resizing the file under
    QEMU would not tell it."""
    path = _overlay(conn, host, "grown")
    before = volume.read(conn, host.pool, "grown")
    assert before is not None
    with plugged(host, path):
        after = volume.grow(conn, host.pool, "grown", before.capacity * 2)
        capacity = conn.lookupByName(host.guest).blockInfo(path)[0]
    assert (after.capacity, capacity) == (before.capacity * 2, before.capacity * 2)


def test_growing_an_overlay_under_a_live_disk_of_a_running_guest_is_refused_naming_it(
    host: Host, conn: libvirt.virConnect,
) -> None:
    """QEMU holds a backing layer open read-only: no resize of it while the guest runs."""
    path = _overlay(conn, host, "layer")
    on_top = host.directory / "on-top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", path,
                    str(on_top)], check=True, timeout=60)
    before = volume.read(conn, host.pool, "layer")
    assert before is not None
    refused = rf"backing chain of a disk of running domain\(s\) {host.guest};"
    with plugged(host, str(on_top)), pytest.raises(InUseError, match=refused):
        volume.grow(conn, host.pool, "layer", before.capacity * 2)
    after = volume.read(conn, host.pool, "layer")
    assert after is not None and after.capacity == before.capacity


def test_an_unfinished_import_a_running_guest_has_plugged_live_is_not_discarded(
    host: Host, conn: libvirt.virConnect, guest: tg.TestGuest,
) -> None:
    owner = host.owner("unfinished")
    lib_pool = conn.storagePoolLookupByName(host.pool)
    ledger.record(lib_pool, "unfinished", ledger.Entry("base", str(owner)))  # no digest yet
    vol = lib_pool.createXML(volume.volume_xml("unfinished", 1 << 20, "raw",
                                                volume.BASE_MODE), 0)
    with plugged(host, vol.path(), fmt="raw"):
        with pytest.raises(InUseError, match=f"unfinished import but {host.guest} use"):
            volume.import_base(conn, host.pool, "unfinished", str(guest.base_image), owner)
        assert vol.info()[1] == 1 << 20, "the same volume, untouched"
    volume.import_base(conn, host.pool, "unfinished", str(guest.base_image), owner)
