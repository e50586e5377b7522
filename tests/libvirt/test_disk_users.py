"""Which domains use a disk (tdx_provider.storage.disk_users), against real libvirt.

The point of the module: a volume check must not wait for an unrelated domain that libvirt is
stopping, and must still protect every domain that uses the volume (issue 9, point 6). The
first test holds a real stopping guest on each host of the matrix; the others pin the index's
bookkeeping on libvirt's test driver.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import libvirt
import pytest

from tdx_provider import events
from tdx_provider.connection import connect
from tdx_provider.errors import InUseError
from tdx_provider.guest import domain, xml
from tdx_provider.metadata import Owner
from tdx_provider.storage import disk_index, disk_users, domain_disks, pool, volume
from tests.support import guest as tg
from tests.support.cleanup import remove_prefixed
from tests.support.hosts import LibvirtHost

pytestmark = pytest.mark.libvirt
OWNER = Owner("tests", "libvirt", "disk-users")
BOOT_TIMEOUT = 90.0
HELD = 0.3  # a listing this late is waiting for a domain libvirt holds (it takes ms otherwise)
TEST_URI = "test:///default"


@pytest.fixture
def disk(qemu_conn: libvirt.virConnect, unique: str, scratch_dir: Path,
         guest: tg.TestGuest) -> Iterator[str]:
    """A pool holding the test guest's base image; yields the base's path."""
    pool.ensure(qemu_conn, unique, str(scratch_dir / "pool"), autostart=False)
    base = volume.import_base(qemu_conn, unique, "base", str(guest.base_image), OWNER)[0]
    yield base.path
    remove_prefixed(qemu_conn, unique)


def _boot(conn: libvirt.virConnect, pool_name: str, name: str, base: str, guest: tg.TestGuest,
          console: Path) -> str:
    """Boot the test guest on an overlay of ``base``; return the overlay's path."""
    overlay = volume.create_overlay(conn, pool_name, f"{name}-disk", base, OWNER)
    spec = xml.DomainSpec(
        name=name, owner=OWNER, memory_mib=256, vcpus=1, tdx=False, domain_type="qemu",
        disk=xml.Disk(overlay.path, (xml.BackingLayer(base, "qcow2"),)),
        kernel=str(guest.kernel), initrd=str(guest.initrd), cmdline=tg.CMDLINE,
        vsock=False, network=None, console_log=str(console), shutdown_timeout=30,
    )
    domain.create(conn, name, xml.render_and_validate(spec), OWNER)
    tg.wait_for_text(console, tg.USERSPACE_MARKER, BOOT_TIMEOUT)
    return overlay.path


def _held_listing(conn: libvirt.virConnect) -> tuple[Future[list[libvirt.virDomain]], float]:
    """A bare ``listAllDomains`` that libvirt has kept waiting for ``HELD`` seconds, and when
    it began. libvirt may take hold of the domain a moment after the power-off event, so
    listings are started until one is held."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        began = time.monotonic()
        listing = disk_index.in_background(lambda: conn.listAllDomains(0))
        try:
            listing.result(timeout=HELD)
        except FutureTimeout:
            return listing, began
    raise AssertionError("libvirt never held the stopping domain: this test shows nothing")


@contextlib.contextmanager
def _power_off_seen(uri: str, name: str) -> Iterator[threading.Event]:
    """An event set when libvirt reports that ``name``'s guest powered off (its own client)."""
    powered_off = threading.Event()

    def on_lifecycle(_c: object, dom: libvirt.virDomain, event: int, *_: object) -> None:
        if dom.name() == name and event == libvirt.VIR_DOMAIN_EVENT_SHUTDOWN:
            powered_off.set()

    events.start_loop()
    with connect(uri) as watcher:
        callback = watcher.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, on_lifecycle, None)
        try:
            yield powered_off
        finally:
            watcher.domainEventDeregisterAny(callback)


def _power_button_until_off(dom: libvirt.virDomain, powered_off: threading.Event) -> None:
    """Press the ACPI power button every 5 s until the guest powers off, as our delete does:
    a press that lands before the guest's acpid has opened its input device is lost."""
    for _ in range(12):
        dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
        if powered_off.wait(5):
            return
    raise AssertionError("the guest did not power off within 60 s")


@pytest.mark.parametrize("stop", ["acpi", "destroy"])
def test_a_volume_check_does_not_wait_for_a_domain_libvirt_is_stopping(
    qemu_uri: str, qemu_conn: libvirt.virConnect, unique: str, disk: str, scratch_dir: Path,
    guest: tg.TestGuest, stop: str,
) -> None:
    """Until QEMU has exited, libvirtd holds a domain it is stopping, and a bare
    ``listAllDomains`` waits. While one is waiting, our checks answer (and a spare overlay is
    deleted) before it does, and the stopping guest's own disk still counts as used. Stopped
    by its guest's power-off (``acpi``: libvirt sends a power-off event first, so the index
    asks libvirt nothing about it) or by another client's ``destroy`` (no event before the
    hold: the index's patience path). On the code before disk_users, every check began with
    such a listing."""
    guest_disk = _boot(qemu_conn, unique, unique, disk, guest, scratch_dir / "console.log")
    spare = volume.create_overlay(qemu_conn, unique, f"{unique}-spare", disk, OWNER).path
    disk_users.scan(qemu_conn)  # this process's index has read the guest

    with _power_off_seen(qemu_uri, unique) as powered_off, connect(qemu_uri) as bystander, \
            connect(qemu_uri) as operator:
        if stop == "acpi":
            _power_button_until_off(operator.lookupByName(unique), powered_off)
            destroyed = None
        else:
            destroyed = disk_index.in_background(operator.lookupByName(unique).destroy)
        listing, began = _held_listing(bystander)  # another client of the host
        spare_users = disk_users.users(qemu_conn, spare)
        guest_disk_users = disk_users.users(qemu_conn, guest_disk)
        volume.delete(qemu_conn, unique, f"{unique}-spare")
        answered_first = not listing.done()
        ours = time.monotonic() - began
        listed = {d.name() for d in listing.result()}
        bare = time.monotonic() - began
        if destroyed is not None:
            destroyed.result()

    assert spare_users == []
    assert [d.name for d in guest_disk_users] == [unique], "the stopping guest's disk is in use"
    assert volume.path_in_pool(qemu_conn, unique, f"{unique}-spare") is None
    assert unique in listed
    assert answered_first, (f"the checks and the delete took {ours:.3f} s, a bare listAllDomains "
                            f"{bare:.3f} s: they waited for the domain libvirt was stopping")


@contextlib.contextmanager
def _index_saw(uri: str, dom: libvirt.virDomain, event_id: int) -> Iterator[threading.Event]:
    """Set once this process's index has handled ``event_id`` for ``dom``: a callback on the
    index's own connection, registered after the index's, runs after it for each event."""
    index = disk_users.index_for(uri)
    assert index is not None
    seen = threading.Event()
    conn = index._conn  # the only way to know that the index has had the event
    callback = conn.domainEventRegisterAny(conn.lookupByUUIDString(dom.UUIDString()), event_id,
                                           lambda *_: seen.set(), None)
    try:
        yield seen
    finally:
        conn.domainEventDeregisterAny(callback)


def test_a_stopping_domain_keeps_its_live_only_disk_without_being_waited_for(
    qemu_uri: str, qemu_conn: libvirt.virConnect, unique: str, disk: str, scratch_dir: Path,
    guest: tg.TestGuest,
) -> None:
    """A disk hot-plugged into the guest's live definition alone is in the index's read of
    it, so while libvirt holds the powered-off guest the check still names it, and answers
    before a bare listing does."""
    _boot(qemu_conn, unique, unique, disk, guest, scratch_dir / "console.log")
    live = volume.create_overlay(qemu_conn, unique, f"{unique}-live", disk, OWNER).path
    dom = qemu_conn.lookupByName(unique)
    with _index_saw(qemu_uri, dom, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED) as added:
        dom.attachDeviceFlags(
            f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{live}'/><target dev='vdb' bus='virtio'/></disk>",
            libvirt.VIR_DOMAIN_AFFECT_LIVE)
        assert added.wait(10), "libvirt announces a live hot-plug (device-added)"
    assert live not in dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), "live only"
    disk_users.scan(qemu_conn)  # the index has read the guest with that disk

    with _power_off_seen(qemu_uri, unique) as powered_off, connect(qemu_uri) as bystander:
        _power_button_until_off(dom, powered_off)
        listing, began = _held_listing(bystander)
        users = disk_users.users(qemu_conn, live)
        answered_first = not listing.done()
        ours = time.monotonic() - began
        listing.result()
        bare = time.monotonic() - began
    assert [d.name for d in users] == [unique]
    assert answered_first, (f"the check took {ours:.3f} s, a bare listAllDomains {bare:.3f} s: "
                            "it waited for the domain libvirt was stopping")


def test_a_stopping_domain_whose_definition_changed_is_waited_for(
    qemu_uri: str, qemu_conn: libvirt.virConnect, unique: str, disk: str, scratch_dir: Path,
    guest: tg.TestGuest,
) -> None:
    """The guest's definition gains a disk after the index last read it (libvirt sends
    ``defined/updated``), then the guest powers off. While libvirt holds it, what the index
    knows is out of date, so the check waits for libvirt's answer and names the guest."""
    _boot(qemu_conn, unique, unique, disk, guest, scratch_dir / "console.log")
    late = volume.create_overlay(qemu_conn, unique, f"{unique}-late", disk, OWNER).path
    disk_users.scan(qemu_conn)  # the index has read the guest without that disk
    dom = qemu_conn.lookupByName(unique)
    definition = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    extra = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
             f"<source file='{late}'/><target dev='vdb' bus='virtio'/></disk>")
    qemu_conn.defineXML(definition.replace("</devices>", f"{extra}</devices>", 1))

    with _power_off_seen(qemu_uri, unique) as powered_off, connect(qemu_uri) as bystander:
        _power_button_until_off(dom, powered_off)
        listing, _ = _held_listing(bystander)
        users = disk_users.users(qemu_conn, late)
        listing.result()
    assert [d.name for d in users] == [unique]


def test_a_domain_naming_our_volume_by_pool_and_name_keeps_it(
    qemu_conn: libvirt.virConnect, unique: str, disk: str
) -> None:
    """``<disk type='volume'>`` names a volume by pool and name, not by path: still a user."""
    volume.create_overlay(qemu_conn, unique, f"{unique}-byname", disk, OWNER)
    holder = (f"<domain type='qemu'><name>{unique}-holder</name><memory unit='MiB'>64</memory>"
              "<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>"
              "<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/>"
              f"<source pool='{unique}' volume='{unique}-byname'/>"
              "<target dev='vda' bus='virtio'/></disk></devices></domain>")
    qemu_conn.defineXML(holder)
    with pytest.raises(InUseError, match=f"used by domain\\(s\\) {unique}-holder"):
        volume.delete(qemu_conn, unique, f"{unique}-byname")
    qemu_conn.lookupByName(f"{unique}-holder").undefine()
    volume.delete(qemu_conn, unique, f"{unique}-byname")
    assert volume.path_in_pool(qemu_conn, unique, f"{unique}-byname") is None


def test_a_disk_added_to_a_definition_alone_is_announced_by_libvirt_12_8_not_9_0(
    qemu_uri: str, qemu_conn: libvirt.virConnect, libvirt_host: LibvirtHost, unique: str,
    scratch_dir: Path,
) -> None:
    """Pins the limit disk_users and docs/shared-hosts.md state: ``attach-device --config`` sends
    ``defined/updated`` on the upstream host (12.8) and no event at all on Debian's 9.0."""
    image = scratch_dir / "extra.img"
    image.write_bytes(b"\0" * 4096)
    seen: list[tuple[int, int]] = []
    events.start_loop()
    with connect(qemu_uri) as watcher:
        dom = qemu_conn.defineXML(
            f"<domain type='qemu'><name>{unique}-attach</name><memory unit='MiB'>64</memory>"
            "<os><type arch='x86_64' machine='q35'>hvm</type></os><devices/></domain>")
        callback = watcher.domainEventRegisterAny(
            watcher.lookupByName(f"{unique}-attach"), libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
            lambda _c, _d, event, detail, _o: seen.append((event, detail)), None)
        try:
            dom.attachDeviceFlags(
                f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                f"<source file='{image}'/><target dev='vda' bus='virtio'/></disk>",
                libvirt.VIR_DOMAIN_AFFECT_CONFIG)
            time.sleep(1.0)  # an event comes within milliseconds when libvirt sends one
        finally:
            watcher.domainEventDeregisterAny(callback)
            dom.undefine()
    updated = (libvirt.VIR_DOMAIN_EVENT_DEFINED, libvirt.VIR_DOMAIN_EVENT_DEFINED_UPDATED)
    expected = {"debian": [], "upstream": [updated]}[libvirt_host.name]
    assert seen == expected, f"{libvirt_host.name} ({libvirt_host.version()[0]})"


def _test_domain(name: str, dom_uuid: str, disk: str) -> str:
    return (f"<domain type='test'><name>{name}</name><uuid>{dom_uuid}</uuid>"
            "<memory>65536</memory><os><type>hvm</type></os><devices>"
            f"<disk type='file' device='disk'><source file='{disk}'/><target dev='vda'/></disk>"
            "</devices></domain>")


def _eventually(condition: object, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.01)


def test_the_index_follows_definitions_through_libvirt_events(unique: str) -> None:
    name, dom_uuid = unique, str(uuid.uuid4())
    with connect(TEST_URI) as conn:
        disk_users.scan(conn)
        index = disk_users.index_for(TEST_URI)
        assert index is not None
        dom = conn.defineXML(_test_domain(name, dom_uuid, "/pool/a.qcow2"))
        try:
            assert [d.name for d in disk_users.users(conn, "/pool/a.qcow2")] == [name]
            assert index.settled()[name]

            conn.defineXML(_test_domain(name, dom_uuid, "/pool/b.qcow2"))  # defined/updated
            _eventually(lambda: not index.settled()[name], "a redefinition unsettles it")
            assert disk_users.users(conn, "/pool/a.qcow2") == []
            assert [d.name for d in disk_users.users(conn, "/pool/b.qcow2")] == [name]
            assert index.settled()[name], "read again after the event"
        finally:
            dom.undefine()
        assert disk_users.users(conn, "/pool/b.qcow2") == []
        _eventually(lambda: disk_users.scan(conn) is not None and name not in index.settled(),
                    "an undefined domain leaves the index at a later scan")


def test_a_domain_defined_just_before_a_check_is_seen(unique: str) -> None:
    """Nothing is held, so libvirt's own list answers in time: a definition that returned
    before the check is always seen, whether or not its event has arrived yet."""
    with connect(TEST_URI) as conn, connect(TEST_URI) as other:
        disk_users.scan(conn)
        for i in range(20):
            path = f"/pool/{unique}-{i}.qcow2"
            dom = other.defineXML(_test_domain(f"{unique}-{i}", str(uuid.uuid4()), path))
            try:
                assert [d.name for d in disk_users.users(conn, path)] == [f"{unique}-{i}"]
            finally:
                dom.undefine()
            assert disk_users.users(conn, path) == []


def test_a_domain_undefined_while_it_is_read_uses_nothing(unique: str) -> None:
    with connect(TEST_URI) as conn, connect(TEST_URI) as other:
        dom = conn.defineXML(_test_domain(unique, str(uuid.uuid4()), "/pool/x.qcow2"))
        other.lookupByName(unique).undefine()
        assert domain_disks.read_domain(dom) is None


def test_a_private_test_host_gets_a_plain_scan(tmp_path: Path, unique: str) -> None:
    """Every open of ``test:///<file>`` is a new in-memory host: no second connection."""
    host = tmp_path / "host.xml"
    host.write_text(f"<node>{_test_domain(unique, str(uuid.uuid4()), '/pool/y.qcow2')}</node>")
    uri = f"test://{host}"
    assert disk_users.index_for(uri) is None
    with connect(uri) as conn:
        assert [d.name for d in disk_users.users(conn, "/pool/y.qcow2")] == [unique]
