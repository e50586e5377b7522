"""libvirt ``dir`` storage pools: ensure (define, build, start, autostart, refresh), read and
delete.

Several stacks may declare the same pool. Defining a pool is atomic in libvirtd (a second
definition of the name under another UUID is refused), so when two ups race to create it one
defines it and the other adopts it; starting an already started pool is success. Changes of
the pool's content and its deletion happen under :func:`exclusion.pool_lock`.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass

import libvirt
from lxml import etree

from tdx_provider import retry
from tdx_provider.connection import is_no_such
from tdx_provider.errors import ConflictError, InUseError, LibvirtOperationError
from tdx_provider.metadata import Owner
from tdx_provider.readers.storage import Pool
from tdx_provider.storage import ledger
from tdx_provider.storage.exclusion import pool_lock

_STATES = {
    libvirt.VIR_STORAGE_POOL_INACTIVE: "inactive",
    libvirt.VIR_STORAGE_POOL_BUILDING: "building",
    libvirt.VIR_STORAGE_POOL_RUNNING: "running",
    libvirt.VIR_STORAGE_POOL_DEGRADED: "degraded",
    libvirt.VIR_STORAGE_POOL_INACCESSIBLE: "inaccessible",
}


@dataclass(frozen=True)
class PoolInfo:
    name: str
    path: str
    uuid: str
    state: str
    autostart: bool
    capacity: int
    allocation: int
    available: int


def lookup(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool | None:
    try:
        return conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        if is_no_such(exc):
            return None
        raise


def require(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool:
    pool = lookup(conn, name)
    if pool is None:
        raise LibvirtOperationError(f"storage pool {name!r} does not exist on {conn.getURI()}")
    if not pool.isActive():
        pool.create(0)
    return pool


def target_path(pool: libvirt.virStoragePool) -> str:
    return Pool.parse(pool.XMLDesc(0)).path


def info(pool: libvirt.virStoragePool) -> PoolInfo:
    state, capacity, allocation, available = pool.info()
    return PoolInfo(
        name=pool.name(),
        path=target_path(pool),
        uuid=pool.UUIDString(),
        state=_STATES.get(state, "unknown"),
        autostart=bool(pool.autostart()),
        capacity=capacity,
        allocation=allocation,
        available=available,
    )


def find_by_path(conn: libvirt.virConnect, path: str) -> libvirt.virStoragePool | None:
    wanted = os.path.normpath(path)
    for pool in conn.listAllStoragePools(0):
        if os.path.normpath(target_path(pool)) == wanted:
            return pool
    return None


# Pools cannot carry metadata; the UUID we give a pool we create is our mark on it.
POOL_UUID_NAMESPACE = uuid.UUID("6f1d3c1e-5a2b-4f7e-9c1d-70756c756d69")


def owned_uuid(name: str, owner: Owner) -> str:
    """The UUID of pool ``name`` when ``owner`` creates it: the same on every run, so a rerun
    after an interrupted create recognises the pool as its own (and not as someone else's)."""
    return str(uuid.uuid5(POOL_UUID_NAMESPACE, f"{owner}/{name}"))


def pool_xml(name: str, path: str, pool_uuid: str | None = None) -> str:
    root = etree.Element("pool", type="dir")
    etree.SubElement(root, "name").text = name
    if pool_uuid is not None:
        etree.SubElement(root, "uuid").text = pool_uuid
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "path").text = path
    perms = etree.SubElement(target, "permissions")
    etree.SubElement(perms, "mode").text = "0755"
    return etree.tostring(root, encoding="unicode")


def ensure(
    conn: libvirt.virConnect, name: str, path: str, autostart: bool,
    owner: Owner | None = None,
) -> tuple[PoolInfo, bool]:
    """Make pool ``name`` exist at ``path``, running. Returns (info, adopted).

    A pool with that name and path is adopted, unless it carries the UUID this call gives the
    pools it creates for ``owner`` (see :func:`owned_uuid`): then an interrupted earlier run of
    the same resource made it, and it is ours, not adopted. Another pool on the same path, or
    a pool of that name elsewhere, is a conflict that names it. When another client defines
    the pool between our look and our define, we adopt it. On failure, what this call made is
    removed.
    """
    for _attempt in range(3):
        existing = lookup(conn, name)
        if existing is not None:
            return _adopt(existing, name, path, autostart, owner)
        other = find_by_path(conn, path)
        if other is not None and other.name() == name:
            continue  # defined by another client between our two looks: adopt it (next round)
        if other is not None:
            raise ConflictError(
                f"path {path!r} is already the target of pool {other.name()!r} "
                "(libvirt refuses two dir pools on one directory); use that pool or another path"
            )
        mark = owned_uuid(name, owner) if owner is not None else None
        try:
            pool = conn.storagePoolDefineXML(pool_xml(name, path, mark), 0)
        except libvirt.libvirtError as exc:
            if "already exists" in str(exc) or lookup(conn, name) is not None:
                continue  # another stack defined it meanwhile: adopt it (next round)
            raise
        return _build_and_start(conn, pool, name, autostart), False
    raise ConflictError(f"pool {name!r} keeps appearing and disappearing; try again")


def _build_and_start(conn: libvirt.virConnect, pool: libvirt.virStoragePool, name: str,
                     autostart: bool) -> PoolInfo:
    try:
        retry.transient(lambda: pool.build(0))  # for a dir pool: mkdir -p with the pool's modes
        _start(pool)
        pool.setAutostart(1 if autostart else 0)
        with pool_lock(conn, name):
            retry.transient(lambda: pool.refresh(0))
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            if pool.isActive():
                pool.destroy()
            pool.undefine()
        raise
    return info(pool)


def _adopt(existing: libvirt.virStoragePool, name: str, path: str, autostart: bool,
           owner: Owner | None) -> tuple[PoolInfo, bool]:
    existing_path = target_path(existing)
    if os.path.normpath(existing_path) != os.path.normpath(path):
        raise ConflictError(
            f"pool {name!r} already exists at {existing_path!r}, not at {path!r}; "
            "choose another name or path"
        )
    _start(existing, creator_may_be_building=True)
    existing.setAutostart(1 if autostart else 0)
    with pool_lock(existing.connect(), name):
        retry.transient(lambda: existing.refresh(0))
    ours = owner is not None and existing.UUIDString() == owned_uuid(name, owner)
    return info(existing), not ours


START_WAIT = 30.0  # seconds an adopter waits for a creator that has defined but not started


def _start(pool: libvirt.virStoragePool, creator_may_be_building: bool = False) -> None:
    """Start the pool; one that is already running (another client started it) is fine. An
    adopter may find a pool that its creator has defined but not yet built: it waits."""
    deadline = time.monotonic() + (START_WAIT if creator_may_be_building else 0.0)
    attempt = 0
    while not pool.isActive():
        try:
            retry.transient(lambda: pool.create(0))
        except libvirt.libvirtError:
            if pool.isActive():
                return
            if time.monotonic() >= deadline:
                raise
            time.sleep(retry.backoff(attempt))
            attempt += 1


def set_autostart(conn: libvirt.virConnect, name: str, autostart: bool) -> PoolInfo:
    pool = require(conn, name)
    pool.setAutostart(1 if autostart else 0)
    return info(pool)


def read(conn: libvirt.virConnect, name: str) -> PoolInfo | None:
    pool = lookup(conn, name)
    if pool is None:
        return None
    if pool.isActive():
        with contextlib.suppress(libvirt.libvirtError, LibvirtOperationError), \
                pool_lock(conn, name):
            retry.transient(lambda: pool.refresh(0))
    return info(pool)


def volume_names(pool: libvirt.virStoragePool) -> list[str]:
    """The names of all the pool's volumes, from one libvirt call.

    Never ``pool.listVolumes()``: libvirt-python asks for the number of volumes, then for that
    many names, so a volume created between the two calls (a lock volume, anyone's create)
    pushes an arbitrary existing volume out of the answer. That is the vanished overlay of
    docs/reliability.md. ``listAllVolumes`` answers in one call."""
    return sorted(vol.name() for vol in pool.listAllVolumes(0))


def user_volumes(pool: libvirt.virStoragePool) -> list[str]:
    """The pool's volumes without our bookkeeping (ledger, lock)."""
    return [v for v in volume_names(pool) if v not in ledger.INTERNAL_VOLUMES]


def delete(conn: libvirt.virConnect, name: str, *, undefine: bool = True) -> None:
    """Stop and undefine the pool. Refused while it holds volumes (they are named); the
    directory is removed only when empty. A pool that is already gone is success.

    With ``undefine=False`` (an adopted pool, or one marked to outlive its stack) the pool
    stays defined and running whatever it holds; only an empty ledger is removed."""
    if lookup(conn, name) is None:
        return
    with pool_lock(conn, name) as pool:
        retry.transient(lambda: pool.refresh(0))
        volumes = user_volumes(pool)
        if volumes and undefine:
            raise InUseError(
                f"pool {name!r} still holds volumes {', '.join(volumes)}; "
                "delete or move them first (pulumi-tdx never deletes volumes it did not create)"
            )
        with contextlib.suppress(libvirt.libvirtError):
            if not ledger.read(pool):
                vol = pool.storageVolLookupByName(ledger.LEDGER_VOLUME)
                retry.transient(lambda: vol.delete(0))
        if not undefine:
            return
        # The lock volume is the last file in the directory: end the lock here, then stop.
        with contextlib.suppress(libvirt.libvirtError):
            for internal in sorted(ledger.INTERNAL_VOLUMES - {ledger.LEDGER_VOLUME}):
                with contextlib.suppress(libvirt.libvirtError):
                    vol = pool.storageVolLookupByName(internal)
                    retry.transient(lambda: vol.delete(0))  # noqa: B023 (called at once)
        retry.transient(lambda: pool.destroy())
        with contextlib.suppress(libvirt.libvirtError):
            pool.delete(0)  # removes the directory only if it is empty
        pool.undefine()
