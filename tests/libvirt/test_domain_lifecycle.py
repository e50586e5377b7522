"""Trust-domain engine against a real libvirtd: our template boots the test guest under TCG,
connection details are read live, teardown is graceful (or forced after the timeout), and a
failed create leaves nothing behind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import libvirt
import pytest

from tdx_provider.connection import connect
from tdx_provider.errors import ConflictError, LibvirtOperationError
from tdx_provider.guest import domain, xml
from tdx_provider.metadata import Owner
from tdx_provider.storage import pool, volume
from tests.support import guest as tg
from tests.support.cleanup import remove_prefixed

pytestmark = pytest.mark.libvirt
OWNER = Owner("tests", "libvirt", "domain")
BOOT_TIMEOUT = 90.0


@pytest.fixture
def disk(qemu_conn: libvirt.virConnect, unique: str, scratch_dir: Path,
         guest: tg.TestGuest) -> Iterator[Path]:
    """A pool with the test guest's base image; yields the pool's directory."""
    pool.ensure(qemu_conn, unique, str(scratch_dir / "pool"), autostart=False)
    volume.import_base(qemu_conn, unique, "base", str(guest.base_image), OWNER)
    yield scratch_dir
    remove_prefixed(qemu_conn, unique)


def make_spec(conn: libvirt.virConnect, pool_name: str, name: str, guest: tg.TestGuest,
              console: Path, cmdline: str = tg.CMDLINE, **overrides: object) -> xml.DomainSpec:
    base = conn.storagePoolLookupByName(pool_name).storageVolLookupByName("base").path()
    overlay = volume.create_overlay(conn, pool_name, f"{name}-disk", base, OWNER)
    spec = dict(
        name=name, owner=OWNER, memory_mib=256, vcpus=1, tdx=False, domain_type="qemu",
        disk=xml.Disk(overlay.path, (xml.BackingLayer(base, "qcow2"),)),
        kernel=str(guest.kernel), initrd=str(guest.initrd), cmdline=cmdline,
        vsock=False, network=None, console_log=str(console), shutdown_timeout=30,
    )
    spec.update(overrides)
    return xml.DomainSpec(**spec)  # type: ignore[arg-type]


def test_guest_boots_from_our_template_and_reports_its_ssh_port(
    qemu_conn: libvirt.virConnect, unique: str, disk: Path, guest: tg.TestGuest
) -> None:
    console = disk / "console.log"
    spec = make_spec(qemu_conn, unique, unique, guest, console)
    info = domain.create(qemu_conn, unique, xml.render_and_validate(spec), OWNER)
    assert info.state == "running"
    assert info.instance is not None and info.instance.owner == OWNER
    tg.wait_for_text(console, tg.USERSPACE_MARKER, BOOT_TIMEOUT)
    assert tg.DISK_MARKER in console.read_text()  # the backing chain reached the guest
    live = domain.read(qemu_conn, unique)
    assert live is not None and live.ssh_port is not None
    assert tg.read_banner(live.ssh_port, 30) == tg.SSH_BANNER
    assert live.cid is None  # no vsock device here

    result = domain.delete(qemu_conn, unique, timeout=30)
    assert result.graceful, result
    assert tg.ACPI_POWEROFF_MARKER in console.read_text()
    assert domain.lookup(qemu_conn, unique) is None


def test_guest_that_ignores_acpi_is_forced_off_after_its_timeout(
    qemu_conn: libvirt.virConnect, unique: str, disk: Path, guest: tg.TestGuest
) -> None:
    console = disk / "console.log"
    spec = make_spec(qemu_conn, unique, unique, guest, console,
                     cmdline=f"{tg.CMDLINE} {tg.IGNORE_ACPI_ARG}")
    domain.create(qemu_conn, unique, xml.render_and_validate(spec), OWNER)
    tg.wait_for_text(console, tg.USERSPACE_MARKER, BOOT_TIMEOUT)
    result = domain.delete(qemu_conn, unique, timeout=3)
    assert not result.graceful
    assert 3 <= result.seconds < 10
    assert tg.ACPI_POWEROFF_MARKER not in console.read_text()
    assert domain.lookup(qemu_conn, unique) is None


def test_deleting_several_domains_in_parallel_takes_about_the_slowest_shutdown(
    qemu_uri: str, qemu_conn: libvirt.virConnect, unique: str, disk: Path, guest: tg.TestGuest
) -> None:
    names = [f"{unique}-{i}" for i in range(3)]
    for name in names:
        console = disk / f"{name}.log"
        spec = make_spec(qemu_conn, unique, name, guest, console)
        domain.create(qemu_conn, name, xml.render_and_validate(spec), OWNER)
    for name in names:
        tg.wait_for_text(disk / f"{name}.log", tg.USERSPACE_MARKER, BOOT_TIMEOUT)

    def teardown(name: str) -> domain.Teardown:
        with connect(qemu_uri) as conn:
            return domain.delete(conn, name, timeout=30)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(names)) as executor:
        results = list(executor.map(teardown, names))
    wall = time.monotonic() - start
    assert all(r.graceful for r in results)
    slowest = max(r.seconds for r in results)
    # parallel, not sequential: well under the sum of the individual shutdowns
    assert wall < slowest + 1.5, (wall, [r.seconds for r in results])


def test_failed_start_removes_the_domain_it_defined(
    qemu_conn: libvirt.virConnect, unique: str, disk: Path, guest: tg.TestGuest
) -> None:
    spec = make_spec(qemu_conn, unique, unique, guest, disk / "c.log",
                     kernel=str(disk / "no-such-kernel"))
    with pytest.raises(LibvirtOperationError, match="cannot start"):
        domain.create(qemu_conn, unique, xml.render_and_validate(spec), OWNER)
    assert domain.lookup(qemu_conn, unique) is None


def test_failure_before_start_removes_the_domain_it_defined(
    qemu_conn: libvirt.virConnect, unique: str, disk: Path, guest: tg.TestGuest
) -> None:
    spec = make_spec(qemu_conn, unique, unique, guest, disk / "c.log")

    def gpu_setup_fails() -> None:
        raise RuntimeError("gpu setup command exited 3")

    with pytest.raises(RuntimeError, match="exited 3"):
        domain.create(qemu_conn, unique, xml.render_and_validate(spec), OWNER,
                      before_start=gpu_setup_fails)
    assert domain.lookup(qemu_conn, unique) is None


def test_definition_libvirt_rejects_leaves_nothing(
    qemu_conn: libvirt.virConnect, unique: str, disk: Path, guest: tg.TestGuest
) -> None:
    spec = make_spec(qemu_conn, unique, unique, guest, disk / "c.log")
    bad = xml.render(spec).replace("<memory unit='MiB'>256</memory>",
                                   "<memory unit='MiB'>256</memory><memory>1</memory>")
    with pytest.raises(LibvirtOperationError, match="refused to define"):
        domain.create(qemu_conn, unique, bad, OWNER)
    assert domain.lookup(qemu_conn, unique) is None


def test_foreign_domain_with_the_same_name_is_a_conflict(
    qemu_conn: libvirt.virConnect, unique: str, disk: Path, guest: tg.TestGuest
) -> None:
    spec = make_spec(qemu_conn, unique, unique, guest, disk / "c.log")
    foreign = xml.render(spec)
    foreign = foreign[: foreign.index("<metadata>")] + foreign[foreign.index("</metadata>") + 11:]
    qemu_conn.defineXML(foreign)
    with pytest.raises(ConflictError, match="not created by pulumi-tdx"):
        domain.create(qemu_conn, unique, xml.render_and_validate(spec), OWNER)
    assert domain.lookup(qemu_conn, unique) is not None  # untouched
    other = Owner("someone", "else", "x")
    with pytest.raises(ConflictError):
        domain.create(qemu_conn, unique, xml.render_and_validate(spec), other)
