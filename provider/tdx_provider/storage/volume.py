"""Storage volumes: base images (imported, read-only) and qcow2 overlays backed by them.

This module is the volume API: overlays, growth, reclaim, delete and paths live here; the
import of a base image (:mod:`.base_import`), what a volume is (:mod:`.volume_info`), the
recorded create (:mod:`.recorded`) and who uses a volume (:mod:`.volume_users`) are imported
into it (``name as name``) so callers have one module to import.

Every create, resize and delete, with its ledger record, happens under
:func:`exclusion.pool_lock` (exclusive across processes and machines), and libvirt's
transient refusals are retried (:mod:`retry`)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace

import libvirt

from tdx_provider import retry
from tdx_provider.connection import is_no_such
from tdx_provider.connection import lookup_volume as lookup
from tdx_provider.errors import ConflictError, InputError, InUseError, LibvirtOperationError
from tdx_provider.metadata import Owner
from tdx_provider.storage import disk_users, ledger
from tdx_provider.storage import pool as pools
from tdx_provider.storage.base_import import hash_source as hash_source
from tdx_provider.storage.base_import import import_base as import_base
from tdx_provider.storage.exclusion import pool_lock
from tdx_provider.storage.recorded import create_recorded as create_recorded
from tdx_provider.storage.recorded import discard_created as discard_created
from tdx_provider.storage.volume_info import BASE_MODE as BASE_MODE
from tdx_provider.storage.volume_info import OVERLAY_MODE as OVERLAY_MODE
from tdx_provider.storage.volume_info import VolumeInfo as VolumeInfo
from tdx_provider.storage.volume_info import info as info
from tdx_provider.storage.volume_info import read as read
from tdx_provider.storage.volume_info import volume_xml as volume_xml
from tdx_provider.storage.volume_users import refuse_if_used
from tdx_provider.storage.volume_users import volumes_backed_by as volumes_backed_by


def create_overlay(
    conn: libvirt.virConnect,
    pool_name: str,
    name: str,
    base_path: str,
    owner: Owner,
    capacity: int | None = None,
) -> VolumeInfo:
    """Create a qcow2 overlay whose backing store is the base volume (never a copy)."""
    base = _by_path(conn, base_path, "base_image")
    if capacity is not None and capacity < base.capacity:
        raise InputError(
            "capacity", f"{capacity} bytes is below the base image's size {base.capacity} bytes"
        )
    size = capacity if capacity is not None else base.capacity
    xml = volume_xml(name, size, "qcow2", OVERLAY_MODE, backing=base)
    with pool_lock(conn, pool_name) as pool:
        existing = lookup(pool, name)
        if existing is not None:
            return _adopt_overlay(pool, existing, base, owner, size)
        # recorded first: an overlay an interrupted run leaves is recognisably ours
        before = ledger.read(pool).get(name)
        ledger.record(pool, name, ledger.Entry("overlay", str(owner)))
        return info(pool_name, create_recorded(pool, name, xml, before))


def _adopt_overlay(
    pool: libvirt.virStoragePool,
    vol: libvirt.virStorageVol,
    base: VolumeInfo,
    owner: Owner,
    capacity: int,
) -> VolumeInfo:
    current = info(pool.name(), vol)
    entry = ledger.read(pool).get(vol.name())
    if entry is None or entry.kind != "overlay" or entry.owner != str(owner):
        holder = f"owned by {entry.owner}" if entry else "not created by pulumi-tdx"
        raise ConflictError(
            f"volume {vol.name()!r} already exists in pool {pool.name()!r} ({holder}); "
            "choose another name or remove it"
        )
    if current.backing_path != base.path:
        raise ConflictError(
            f"overlay {vol.name()!r} exists but is backed by {current.backing_path!r}, "
            f"not {base.path!r}"
        )
    if entry.released:  # declared again (an operator had given it up): claim it back
        ledger.record(pool, vol.name(), ledger.Entry("overlay", str(owner)))
    if current.capacity < capacity:
        retry.transient(lambda: vol.resize(capacity, 0))
        current = info(pool.name(), vol)
    return current


def _released_by_stack(entry: ledger.Entry | None, owner: Owner) -> bool:
    if entry is None or not entry.released:
        return False
    theirs = Owner.parse(entry.owner)
    return (theirs.project, theirs.stack) == (owner.project, owner.stack)


def reclaim(conn: libvirt.virConnect, pool_name: str, name: str, owner: Owner) -> bool:
    """Take back a volume that an operator released (``tdxctl delete`` of the domain that used
    it) when ``owner``'s stack shows it still declares it: a refresh reads it, an update
    changes it, or a new domain of that stack is made on it. Without this, the stack keeps a
    volume that ``pool-cleanup`` may remove as given up. True when it was released and is now
    declared again; a volume of another stack is never touched.

    The first look reads the ledger without the pool lock (cheap, and a refresh reads every
    volume); only a released entry takes the lock, under which the decision is made again."""
    pool = pools.lookup(conn, pool_name)
    if pool is None or not pool.isActive():
        return False
    try:
        if not _released_by_stack(ledger.read(pool).get(name), owner):
            return False
    except ValueError:  # a write in flight: look again under the lock
        pass
    with pool_lock(conn, pool_name) as locked:
        entry = ledger.read(locked).get(name)
        if entry is None or not _released_by_stack(entry, owner):
            return False
        ledger.record(locked, name, replace(entry, released=False))
    return True


def reclaim_path(conn: libvirt.virConnect, path: str, owner: Owner) -> bool:
    """:func:`reclaim` for the volume at ``path``; False when no pool holds that path."""
    try:
        vol = conn.storageVolLookupByPath(path)
        pool_name = vol.storagePoolLookupByVolume().name()
    except libvirt.libvirtError:
        return False
    return reclaim(conn, pool_name, vol.name(), owner)


def _by_path(conn: libvirt.virConnect, path: str, field: str) -> VolumeInfo:
    try:
        vol = conn.storageVolLookupByPath(path)
    except libvirt.libvirtError as exc:
        reason = f"no storage volume at {path!r}: {exc.get_error_message()}"
        raise InputError(field, reason) from exc
    return info(vol.storagePoolLookupByVolume().name(), vol)


def grow(conn: libvirt.virConnect, pool_name: str, name: str, capacity: int) -> VolumeInfo:
    """Grow a volume in place. A running domain that uses it is resized live (blockResize), so
    the guest sees the new size without a restart; shrinking is refused."""
    pool = pools.require(conn, pool_name)
    vol = lookup(pool, name)
    if vol is None:
        raise LibvirtOperationError(f"volume {name!r} is gone from pool {pool_name!r}")
    current = info(pool_name, vol)
    if capacity < current.capacity:
        raise InputError("capacity", f"shrinking {name!r} from {current.capacity} to {capacity} "
                         "bytes would lose data; it is refused")
    if capacity == current.capacity:
        return current
    ref = (pool_name, name)
    users = [(d, conn.lookupByUUIDString(d.uuid))
             for d in disk_users.users(conn, current.path, ref)]
    running = [dom for d, dom in users if d.names(current.path, ref) and dom.isActive()]
    below = [d.name for d, dom in users if not d.names(current.path, ref) and dom.isActive()]
    if below:  # QEMU has it open read-only under another disk: not ours to resize
        raise InUseError(f"volume {name!r} is in the backing chain of a disk of running "
                         f"domain(s) {', '.join(below)}; growing it is refused while they run")
    with pool_lock(conn, pool_name):
        if running:
            running[0].blockResize(current.path, capacity, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
        else:
            retry.transient(lambda: vol.resize(capacity, 0))
    return info(pool_name, vol)


def delete(conn: libvirt.virConnect, pool_name: str, name: str) -> None:
    """Delete one of our volumes. Refused while a domain uses it (in its persistent or live
    definition, as a disk or in a disk's backing chain) or a volume is backed by it. A volume
    (or pool) that is already gone is success.

    Which domains use the volume comes from :mod:`disk_users`, which does not wait for a domain
    libvirt is stopping. That check runs before the pool is locked: holding the pool would not
    make it atomic anyway, since defining a domain takes no pool lock."""
    found = pools.lookup(conn, pool_name)
    if found is None:
        return
    vol = lookup(found, name) if found.isActive() else None
    checked = vol.path() if vol is not None else None
    if checked is not None:
        refuse_if_used(conn, pool_name, name, checked)
    try:
        _delete_locked(conn, pool_name, name, checked)
    except (libvirt.libvirtError, LibvirtOperationError):
        if pools.lookup(conn, pool_name) is None:
            return  # the pool went away meanwhile (another stack deleted it): gone is success
        raise


def _delete_locked(conn: libvirt.virConnect, pool_name: str, name: str,
                   checked: str | None) -> None:
    with pool_lock(conn, pool_name) as pool:
        vol = lookup(pool, name)
        if vol is None:
            with contextlib.suppress(libvirt.libvirtError):
                ledger.forget(pool, name)
            return
        path = vol.path()
        if path != checked:
            refuse_if_used(conn, pool_name, name, path)
        backed = volumes_backed_by(conn, path)
        if backed:
            raise InUseError(f"volume {name!r} backs {', '.join(backed)}; delete those first")
        try:
            retry.transient(lambda: vol.delete(0))
        except libvirt.libvirtError as exc:
            if not is_no_such(exc):
                raise
        ledger.forget(pool, name)


def path_in_pool(conn: libvirt.virConnect, pool_name: str, name: str) -> str | None:
    """Path of volume ``name`` in pool ``pool_name``; None while either does not exist."""
    pool = pools.lookup(conn, pool_name)
    if pool is None or not pool.isActive():
        return None
    vol = lookup(pool, name)
    return vol.path() if vol is not None else None


def expected_path(conn: libvirt.virConnect, pool_name: str, name: str) -> str | None:
    """Where volume ``name`` of pool ``pool_name`` is or will be (a dir pool names its files
    after its volumes); None while the pool does not exist."""
    existing = path_in_pool(conn, pool_name, name)
    if existing is not None:
        return existing
    pool = pools.lookup(conn, pool_name)
    return os.path.join(pools.target_path(pool), name) if pool is not None else None


def resolve_base(conn: libvirt.virConnect, pool_name: str, ref: str, field: str) -> str:
    """A base image given as an absolute path or as a volume name in ``pool_name``: its path."""
    if os.path.isabs(ref):
        return ref
    path = path_in_pool(conn, pool_name, ref)
    if path is None:
        raise InputError(field, f"no volume {ref!r} in pool {pool_name!r} on {conn.getURI()}; "
                         "give an existing volume's name or path, or the BaseImage")
    return path
