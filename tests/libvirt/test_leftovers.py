"""What an interrupted run leaves is recognisably ours, and only ours is adopted.

Against a real libvirtd. The e2e tier (tests/e2e/test_faults.py) shows the same through the
Pulumi CLI with real interruptions; these pin each rule down at the engine, fast:

- a pool we create carries a UUID derived from its owner: a rerun of the same resource takes
  it as its own (deleted on destroy), anything else with that name and path stays adopted;
- a volume's ledger entry is written before the volume, so a volume whose create never
  returned is adopted by the same owner; a failed create forgets its entry;
- a base import that never finished (no digest in the ledger) is redone by the same owner,
  and a conflict for anybody else; a finished base of another owner is a conflict too;
- a leftover domain of ours is redefined under its own UUID (not refused as a duplicate).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from tdx_provider.errors import ConflictError, InUseError
from tdx_provider.guest import domain, xml
from tdx_provider.metadata import Owner
from tdx_provider.storage import ledger, pool, streams, volume
from tests.support import guest as tg
from tests.support.cleanup import remove_prefixed

pytestmark = pytest.mark.libvirt
OURS = Owner("proj", "stack", "res")
THEIRS = Owner("proj", "another-stack", "res")


@pytest.fixture
def scratch_pool(qemu_conn: libvirt.virConnect, unique: str, scratch_dir: Path) -> Iterator[str]:
    pool.ensure(qemu_conn, unique, str(scratch_dir / "pool"), autostart=False, owner=OURS)
    yield unique
    remove_prefixed(qemu_conn, unique)


# --- pools ------------------------------------------------------------------------------------


def test_a_pool_we_create_is_ours_on_the_next_run_and_only_for_its_owner(
    qemu_conn: libvirt.virConnect, unique: str, scratch_dir: Path
) -> None:
    path = str(scratch_dir / "p")
    try:
        info, adopted = pool.ensure(qemu_conn, unique, path, autostart=False, owner=OURS)
        assert not adopted
        assert info.uuid == pool.owned_uuid(unique, OURS)
        assert pool.ensure(qemu_conn, unique, path, autostart=False, owner=OURS)[1] is False
        assert pool.ensure(qemu_conn, unique, path, autostart=False, owner=THEIRS)[1] is True
        assert pool.ensure(qemu_conn, unique, path, autostart=False)[1] is True
    finally:
        remove_prefixed(qemu_conn, unique)


def test_a_pool_someone_else_defined_on_that_name_and_path_stays_adopted(
    qemu_conn: libvirt.virConnect, unique: str, scratch_dir: Path
) -> None:
    path = str(scratch_dir / "p")
    try:
        foreign = qemu_conn.storagePoolDefineXML(pool.pool_xml(unique, path), 0)
        foreign.build(0)
        assert foreign.UUIDString() != pool.owned_uuid(unique, OURS)
        info, adopted = pool.ensure(qemu_conn, unique, path, autostart=False, owner=OURS)
        assert adopted and info.uuid == foreign.UUIDString()
    finally:
        remove_prefixed(qemu_conn, unique)


def test_owned_uuids_differ_per_owner_and_name() -> None:
    assert pool.owned_uuid("p", OURS) == pool.owned_uuid("p", OURS)
    assert len({pool.owned_uuid("p", OURS), pool.owned_uuid("p", THEIRS),
                pool.owned_uuid("q", OURS)}) == 3
    uuid.UUID(pool.owned_uuid("p", OURS))


# --- overlays ---------------------------------------------------------------------------------


def test_an_overlay_whose_create_never_returned_is_adopted_by_its_owner(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: tg.TestGuest
) -> None:
    base, _ = volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OURS)
    lib_pool = qemu_conn.storagePoolLookupByName(scratch_pool)
    # what an interrupted create leaves: the entry (written first) and the volume
    ledger.record(lib_pool, "disk", ledger.Entry("overlay", str(OURS)))
    lib_pool.createXML(volume.volume_xml("disk", base.capacity, "qcow2", volume.OVERLAY_MODE,
                                          backing=base), 0)
    key = lib_pool.storageVolLookupByName("disk").key()
    assert volume.create_overlay(qemu_conn, scratch_pool, "disk", base.path, OURS).key == key
    with pytest.raises(ConflictError, match="owned by proj/stack/res"):
        volume.create_overlay(qemu_conn, scratch_pool, "disk", base.path, THEIRS)


def test_a_failed_overlay_create_forgets_its_ledger_entry(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: tg.TestGuest
) -> None:
    base, _ = volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OURS)
    with pytest.raises(libvirt.libvirtError):
        volume.create_overlay(qemu_conn, scratch_pool, "bad/name", base.path, OURS)
    assert sorted(ledger.read(qemu_conn.storagePoolLookupByName(scratch_pool))) == ["base"]


# --- base images ------------------------------------------------------------------------------


def leave_unfinished_import(conn: libvirt.virConnect, pool_name: str, name: str,
                            owner: Owner) -> libvirt.virStorageVol:
    """An import interrupted half-way: the entry without a digest, half the bytes."""
    lib_pool = conn.storagePoolLookupByName(pool_name)
    ledger.record(lib_pool, name, ledger.Entry("base", str(owner)))
    vol = lib_pool.createXML(volume.volume_xml(name, 1 << 20, "raw", volume.BASE_MODE), 0)
    streams.upload(conn, vol, [b"\x01" * 4096], 4096)
    return vol


def test_an_unfinished_import_of_ours_is_redone(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: tg.TestGuest
) -> None:
    leave_unfinished_import(qemu_conn, scratch_pool, "base", OURS)
    info, digest = volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image),
                                      OURS)
    assert digest == hashlib.sha256(guest.base_image.read_bytes()).hexdigest()
    assert Path(info.path).read_bytes() == guest.base_image.read_bytes()
    entry = ledger.read(qemu_conn.storagePoolLookupByName(scratch_pool))["base"]
    assert (entry.owner, entry.sha256) == (str(OURS), digest)


def test_an_unfinished_import_of_another_owner_is_a_conflict_naming_it(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: tg.TestGuest
) -> None:
    vol = leave_unfinished_import(qemu_conn, scratch_pool, "base", THEIRS)
    key = vol.key()
    with pytest.raises(ConflictError, match="owned by proj/another-stack/res"):
        volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OURS)
    assert qemu_conn.storagePoolLookupByName(scratch_pool).storageVolLookupByName(
        "base").key() == key  # untouched


def test_an_unfinished_import_that_something_uses_is_not_deleted(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: tg.TestGuest
) -> None:
    vol = leave_unfinished_import(qemu_conn, scratch_pool, "base", OURS)
    base = volume.info(scratch_pool, vol)
    qemu_conn.storagePoolLookupByName(scratch_pool).createXML(
        volume.volume_xml("child", base.capacity, "qcow2", volume.OVERLAY_MODE, backing=base), 0)
    with pytest.raises(InUseError, match=f"{scratch_pool}/child"):
        volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OURS)


def test_a_finished_base_of_another_owner_is_a_conflict_naming_it(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: tg.TestGuest
) -> None:
    volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), THEIRS)
    with pytest.raises(ConflictError, match="owned by proj/another-stack/res"):
        volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OURS)
    entry = ledger.read(qemu_conn.storagePoolLookupByName(scratch_pool))["base"]
    assert entry.owner == str(THEIRS)  # not taken over


# --- domains ----------------------------------------------------------------------------------


def test_a_leftover_domain_of_ours_is_redefined_under_its_own_uuid(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: tg.TestGuest, unique: str,
    scratch_dir: Path,
) -> None:
    base, _ = volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OURS)
    disk = volume.create_overlay(qemu_conn, scratch_pool, "disk", base.path, OURS)
    spec = xml.DomainSpec(
        name=unique, owner=OURS, memory_mib=128, vcpus=1, tdx=False, domain_type="qemu",
        disk=xml.Disk(disk.path, (xml.BackingLayer(base.path, base.format),)),
        kernel=str(guest.kernel), initrd=str(guest.initrd), cmdline=tg.CMDLINE, vsock=False,
        network=None, console_log=str(scratch_dir / "c.log"), shutdown_timeout=0,
    )
    document = xml.render_and_validate(spec)
    leftover = qemu_conn.defineXML(document)  # defined, never started: an interrupted create
    info = domain.create(qemu_conn, unique, document, OURS)
    assert info.uuid == leftover.UUIDString()
    assert info.state == "running"
    assert [d.name() for d in qemu_conn.listAllDomains(0)].count(unique) == 1
    domain.delete(qemu_conn, unique, timeout=0)
