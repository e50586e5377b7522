"""libvirt ``dir`` storage pools: ensure (define, build, start, autostart, refresh), read and
delete."""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass

import libvirt
from lxml import etree

from . import ledger
from .connection import is_no_such, pool_lock
from .errors import ConflictError, InUseError, LibvirtOperationError
from .metadata import Owner

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
    return etree.fromstring(pool.XMLDesc(0)).findtext("target/path") or ""


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
    a pool of that name elsewhere, is a conflict that names it. On failure, what this call
    made is removed.
    """
    uri = conn.getURI()
    with pool_lock(uri, name):
        existing = lookup(conn, name)
        if existing is not None:
            existing_path = target_path(existing)
            if os.path.normpath(existing_path) != os.path.normpath(path):
                raise ConflictError(
                    f"pool {name!r} already exists at {existing_path!r}, not at {path!r}; "
                    "choose another name or path"
                )
            _start(existing, autostart)
            ours = owner is not None and existing.UUIDString() == owned_uuid(name, owner)
            return info(existing), not ours
        other = find_by_path(conn, path)
        if other is not None:
            raise ConflictError(
                f"path {path!r} is already the target of pool {other.name()!r} "
                "(libvirt refuses two dir pools on one directory); use that pool or another path"
            )
        mark = owned_uuid(name, owner) if owner is not None else None
        pool = conn.storagePoolDefineXML(pool_xml(name, path, mark), 0)
        try:
            pool.build(0)  # for a dir pool: mkdir -p with the pool's permissions
            _start(pool, autostart)
        except BaseException:
            with contextlib.suppress(libvirt.libvirtError):
                if pool.isActive():
                    pool.destroy()
                pool.undefine()
            raise
        return info(pool), False


def _start(pool: libvirt.virStoragePool, autostart: bool) -> None:
    if not pool.isActive():
        pool.create(0)
    pool.setAutostart(1 if autostart else 0)
    pool.refresh(0)


def set_autostart(conn: libvirt.virConnect, name: str, autostart: bool) -> PoolInfo:
    pool = require(conn, name)
    pool.setAutostart(1 if autostart else 0)
    return info(pool)


def read(conn: libvirt.virConnect, name: str) -> PoolInfo | None:
    pool = lookup(conn, name)
    if pool is None:
        return None
    if pool.isActive():
        with pool_lock(conn.getURI(), name), contextlib.suppress(libvirt.libvirtError):
            pool.refresh(0)
    return info(pool)


def delete(conn: libvirt.virConnect, name: str, *, undefine: bool = True) -> None:
    """Stop and undefine the pool. Refused while it holds volumes (they are named); the
    directory is removed only when empty. A pool that is already gone is success."""
    with pool_lock(conn.getURI(), name):
        pool = lookup(conn, name)
        if pool is None:
            return
        if not pool.isActive():
            pool.create(0)
        pool.refresh(0)
        volumes = sorted(v for v in pool.listVolumes() if v != ledger.LEDGER_VOLUME)
        if volumes:
            raise InUseError(
                f"pool {name!r} still holds volumes {', '.join(volumes)}; "
                "delete or move them first (pulumi-tdx never deletes volumes it did not create)"
            )
        with contextlib.suppress(libvirt.libvirtError):
            if not ledger.read(pool):
                pool.storageVolLookupByName(ledger.LEDGER_VOLUME).delete(0)
        if not undefine:
            return
        pool.destroy()
        with contextlib.suppress(libvirt.libvirtError):
            pool.delete(0)  # removes the directory only if it is empty
        pool.undefine()
