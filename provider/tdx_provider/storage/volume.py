"""Storage volumes: base images (imported, read-only) and qcow2 overlays backed by them.

Every create, resize and delete, with its ledger record, happens under
:func:`exclusion.pool_lock` (exclusive across processes and machines), and libvirt's
transient refusals are retried (:mod:`retry`)."""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass, replace

import libvirt
from lxml import etree

from tdx_provider import retry
from tdx_provider.connection import is_no_such
from tdx_provider.connection import lookup_volume as lookup
from tdx_provider.errors import ConflictError, InputError, InUseError, LibvirtOperationError
from tdx_provider.metadata import Owner
from tdx_provider.readers.storage import Volume
from tdx_provider.storage import disk_users, ledger, streams
from tdx_provider.storage import pool as pools
from tdx_provider.storage.exclusion import pool_lock
from tdx_provider.storage.images import Source

BASE_MODE = "0644"
OVERLAY_MODE = "0600"


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    pool: str
    path: str
    key: str
    format: str
    capacity: int
    allocation: int
    backing_path: str | None


def info(pool_name: str, vol: libvirt.virStorageVol) -> VolumeInfo:
    doc = Volume.parse(vol.XMLDesc(0))
    _type, capacity, allocation = vol.info()
    return VolumeInfo(
        name=vol.name(),
        pool=pool_name,
        path=vol.path(),
        key=vol.key(),
        format=doc.format,
        capacity=capacity,
        allocation=allocation,
        backing_path=doc.backing_path,
    )


def read(conn: libvirt.virConnect, pool_name: str, name: str) -> VolumeInfo | None:
    pool = pools.lookup(conn, pool_name)
    if pool is None or not pool.isActive():
        return None
    vol = lookup(pool, name)
    return info(pool_name, vol) if vol is not None else None


def volume_xml(
    name: str, capacity: int, fmt: str, mode: str, backing: VolumeInfo | None = None
) -> str:
    root = etree.Element("volume")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "capacity", unit="bytes").text = str(capacity)
    if backing is None:
        etree.SubElement(root, "allocation", unit="bytes").text = "0"
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "format", type=fmt)
    perms = etree.SubElement(target, "permissions")
    etree.SubElement(perms, "mode").text = mode
    if backing is not None:
        store = etree.SubElement(root, "backingStore")
        etree.SubElement(store, "path").text = backing.path
        etree.SubElement(store, "format", type=backing.format)
    return etree.tostring(root, encoding="unicode")


def _hash_volume(conn: libvirt.virConnect, vol: libvirt.virStorageVol) -> str:
    digest = hashlib.sha256()
    for chunk in streams.download(conn, vol):
        digest.update(chunk)
    return digest.hexdigest()


def hash_source(source: str) -> str:
    """SHA-256 of an image source, streamed."""
    digest = hashlib.sha256()
    with Source(source) as src:
        for chunk in src.chunks():
            digest.update(chunk)
    return digest.hexdigest()


def discard_created(pool: libvirt.virStoragePool, vol: libvirt.virStorageVol) -> None:
    """Undo a create of ours that failed after libvirt made the volume: the volume this call
    created (its handle, never a name looked up again), then its ledger entry."""
    with contextlib.suppress(libvirt.libvirtError):
        retry.transient(lambda: vol.delete(0))
    with contextlib.suppress(libvirt.libvirtError):
        ledger.forget(pool, vol.name())


def create_recorded(pool: libvirt.virStoragePool, name: str, xml: str,
            before: ledger.Entry | None) -> libvirt.virStorageVol:
    """``createXML`` of a volume whose ledger entry was just written over ``before``.

    When libvirt refuses, it made nothing, so nothing is deleted: a volume or file of that name
    that exists now is not this call's (a file libvirt had not listed yet, say), and deleting it
    by name would delete someone's data. Only the ledger entry goes back to what it was. An
    interrupt (not a refusal) keeps the entry: whatever libvirt made is then recognisably ours,
    and the next run adopts or redoes it."""
    try:
        return retry.transient(lambda: pool.createXML(xml, 0))
    except libvirt.libvirtError:
        with contextlib.suppress(libvirt.libvirtError):
            if before is None:
                ledger.forget(pool, name)
            else:
                ledger.record(pool, name, before)
        raise


def import_base(
    conn: libvirt.virConnect,
    pool_name: str,
    name: str,
    source: str,
    owner: Owner,
    sha256: str | None = None,
    fmt: str | None = None,
) -> tuple[VolumeInfo, str]:
    """Import ``source`` as volume ``name``; return (info, sha256 of the content).

    The content is hashed while it streams; a given ``sha256`` is verified and a mismatch
    leaves nothing behind. An existing volume of that name is adopted only when our ledger
    records it for ``owner`` and its content matches; an import of ours that never finished
    (interrupted) is redone.

    The ledger entry is written before the volume (without a digest until the content is
    verified), so that whatever an interrupted run leaves is recognisably ours.
    """
    with pool_lock(conn, pool_name) as pool:
        existing = lookup(pool, name)
        if existing is not None and not _unfinished_import(pool, existing, owner):
            return _adopt_base(conn, pool, existing, source, owner, sha256)
        if existing is not None:
            _discard_unfinished(conn, pool_name, existing)
        with Source(source) as src:
            if fmt is not None and fmt != src.header.format:
                raise InputError("format", f"is {fmt!r} but {source!r} is {src.header.format}")
            if src.header.backing_file:
                raise InputError("source", f"{source!r} is a qcow2 with a backing file of its own")
            capacity = src.header.virtual_size if src.header.format == "qcow2" else src.size
            xml = volume_xml(name, max(capacity, 1), src.header.format, BASE_MODE)
            before = ledger.read(pool).get(name)
            ledger.record(pool, name, ledger.Entry("base", str(owner)))  # no digest: unfinished
            digest = hashlib.sha256()
            vol = create_recorded(pool, name, xml, before)
            try:
                streams.upload(conn, vol, src.chunks(), src.size, on_chunk=digest.update)
                actual = digest.hexdigest()
                if sha256 is not None and actual != sha256:
                    raise InputError(
                        "sha256", f"{source!r} has sha256 {actual}, expected {sha256}; nothing kept"
                    )
                ledger.record(pool, name, ledger.Entry("base", str(owner), actual))
            except BaseException:
                discard_created(pool, vol)
                raise
        return info(pool_name, vol), actual


def _unfinished_import(
    pool: libvirt.virStoragePool, vol: libvirt.virStorageVol, owner: Owner
) -> bool:
    """True when ``owner``'s import of this base never finished (no verified digest)."""
    entry = ledger.read(pool).get(vol.name())
    return (entry is not None and entry.kind == "base" and entry.sha256 is None
            and entry.owner == str(owner))


def _discard_unfinished(conn: libvirt.virConnect, pool_name: str,
                        vol: libvirt.virStorageVol) -> None:
    path = vol.path()
    users = disk_users.users(conn, path, (pool_name, vol.name()))
    holders = volumes_backed_by(conn, path) + [_user(d, path, (pool_name, vol.name()))
                                               for d in users]
    if holders:
        raise InUseError(f"volume {vol.name()!r} is an unfinished import but "
                         f"{', '.join(holders)} use(s) it; delete those first")
    retry.transient(lambda: vol.delete(0))


def _adopt_base(
    conn: libvirt.virConnect,
    pool: libvirt.virStoragePool,
    vol: libvirt.virStorageVol,
    source: str,
    owner: Owner,
    sha256: str | None,
) -> tuple[VolumeInfo, str]:
    entry = ledger.read(pool).get(vol.name())
    if entry is None or entry.kind != "base":
        raise ConflictError(
            f"volume {vol.name()!r} already exists in pool {pool.name()!r} and was not created by "
            "pulumi-tdx; choose another name or remove it"
        )
    if entry.owner != str(owner):
        raise ConflictError(
            f"volume {vol.name()!r} already exists in pool {pool.name()!r} (owned by "
            f"{entry.owner}); choose another name or remove it"
        )
    existing_sha = entry.sha256 or _hash_volume(conn, vol)
    wanted = sha256 or hash_source(source)
    if existing_sha != wanted:
        raise ConflictError(
            f"volume {vol.name()!r} in pool {pool.name()!r} has sha256 {existing_sha}, but the "
            f"source has {wanted}; choose another name or delete the old image"
        )
    ledger.record(pool, vol.name(), ledger.Entry("base", str(owner), existing_sha))
    return info(pool.name(), vol), existing_sha


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


def volumes_backed_by(conn: libvirt.virConnect, path: str) -> list[str]:
    """``pool/volume`` names of volumes whose backing store is ``path``."""
    wanted = os.path.normpath(path)
    holders = []
    for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
        try:
            volumes = pool.listAllVolumes(0)
        except libvirt.libvirtError:  # stopped or removed while we looked: nothing to hold
            continue
        for vol in volumes:
            try:
                backing = Volume.parse(vol.XMLDesc(0)).backing_path
            except libvirt.libvirtError:  # removed while we looked: it backs nothing now
                continue
            if backing and os.path.normpath(backing) == wanted:
                holders.append(f"{pool.name()}/{vol.name()}")
    return sorted(holders)


def _user(domain: disk_users.DomainDisks, path: str, ref: disk_users.VolumeRef) -> str:
    """The domain's name, saying so when it reads the volume only below another disk."""
    return domain.name if domain.names(path, ref) else f"{domain.name} (in a backing chain)"


def _refuse_if_used(conn: libvirt.virConnect, pool_name: str, name: str, path: str) -> None:
    users = disk_users.users(conn, path, (pool_name, name))
    if users:
        named = ", ".join(_user(d, path, (pool_name, name)) for d in users)
        raise InUseError(f"volume {name!r} is used by domain(s) {named}; delete those first")


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
        _refuse_if_used(conn, pool_name, name, checked)
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
            _refuse_if_used(conn, pool_name, name, path)
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
