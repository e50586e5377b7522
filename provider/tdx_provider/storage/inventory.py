"""What a host's storage pools hold: state and sizes, and per volume its kind (from the ledger),
backing volume, the domains that use it and its owner.

``tdxctl pool-info`` prints these reports. Volume values are read best-effort
(:func:`probe.probe`): a volume deleted while we look is left out, an unreadable ledger or
domain list leaves kinds or users unknown (None) and says so in :attr:`PoolReport.warnings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import libvirt

from tdx_provider.errors import TdxError
from tdx_provider.probe import probe
from tdx_provider.storage import disk_users, ledger, volume
from tdx_provider.storage import pool as pools


@dataclass(frozen=True)
class VolumeRow:
    """One volume of a pool; None where it could not be read."""

    name: str
    kind: str | None  # ledger kind, "ledger", "lock" or "other" (not in the ledger)
    capacity: int
    allocation: int
    backing: str | None  # ``name`` (same pool), ``pool/name``, or a path that is no volume
    used_by: list[str] | None  # domains naming it as a disk's source
    owner: str | None


@dataclass(frozen=True)
class PoolReport:
    """A pool's state and sizes and its volumes (None when the pool is not running)."""

    name: str
    state: str
    path: str
    autostart: bool
    capacity: int
    allocation: int
    available: int
    volumes: list[VolumeRow] | None
    warnings: list[str] = field(default_factory=list)  # what could not be read


def select_pools(conn: libvirt.virConnect, name: str | None) -> list[libvirt.virStoragePool]:
    """The named pool, or every pool by name; a missing named pool is an error."""
    if name is None:
        return sorted(conn.listAllStoragePools(0), key=lambda p: p.name())
    found = pools.lookup(conn, name)
    if found is None:
        raise TdxError(f"storage pool {name!r} does not exist on {conn.getURI()}")
    return [found]


def volume_kind(name: str, entries: Mapping[str, ledger.Entry] | None) -> str | None:
    """What a volume is to us: its ledger kind, our ledger or lock, or "other"; None when the
    ledger could not be read."""
    if name == ledger.LEDGER_VOLUME:
        return "ledger"
    if name in ledger.INTERNAL_VOLUMES:
        return "lock"
    if entries is None:
        return None
    entry = entries.get(name)
    return entry.kind if entry else "other"


def backing_name(conn: libvirt.virConnect, pool_name: str, path: str | None) -> str | None:
    """The backing volume as ``name`` (same pool) or ``pool/name``; the path if not a volume."""
    if not path:
        return None
    try:
        vol = conn.storageVolLookupByPath(path)
        holder = vol.storagePoolLookupByVolume().name()
    except libvirt.libvirtError:
        return path
    return vol.name() if holder == pool_name else f"{holder}/{vol.name()}"


def volume_row(conn: libvirt.virConnect, pool_name: str, vol: libvirt.virStorageVol,
               entries: Mapping[str, ledger.Entry] | None,
               domains: list[disk_users.DomainDisks] | None) -> VolumeRow | None:
    """One volume's row; None when the volume vanished while we looked.
    ``domains``: every domain's disks (one scan for all rows); None when it could not be read."""
    info = probe(lambda: volume.info(pool_name, vol))
    if info is None:
        return None
    entry = entries.get(info.name) if entries else None
    users = None if domains is None else [  # as a disk's source (BACKING shows the chains)
        d for d in domains if d.names(info.path, (pool_name, info.name))]
    return VolumeRow(
        name=info.name,
        kind=volume_kind(info.name, entries),
        capacity=info.capacity,
        allocation=info.allocation,
        backing=backing_name(conn, pool_name, info.backing_path),
        used_by=sorted(d.name for d in users) if users is not None else None,
        owner=entry.owner if entry else None,
    )


def pool_report(conn: libvirt.virConnect, pool: libvirt.virStoragePool) -> PoolReport:
    """Pool state and sizes (refreshing a running pool), and its volumes when it runs."""
    info = pools.read(conn, pool.name())
    if info is None:
        raise TdxError(f"storage pool {pool.name()!r} disappeared")
    volumes: list[VolumeRow] | None = None
    warnings: list[str] = []
    if info.state == "running":
        entries = probe(lambda: ledger.read(pool))
        if entries is None:
            warnings.append(f"cannot read the ledger of pool {pool.name()!r}; "
                            "volume kinds unknown")
        listed = sorted(pool.listAllVolumes(0), key=lambda v: v.name())
        domains = probe(lambda: disk_users.scan(conn))
        rows = (volume_row(conn, info.name, vol, entries, domains) for vol in listed)
        volumes = [row for row in rows if row is not None]
    return PoolReport(
        name=info.name, state=info.state, path=info.path, autostart=info.autostart,
        capacity=info.capacity, allocation=info.allocation, available=info.available,
        volumes=volumes, warnings=warnings,
    )


def pool_reports(conn: libvirt.virConnect, name: str | None) -> list[PoolReport]:
    """The report of the named pool, or of every pool."""
    return [pool_report(conn, pool) for pool in select_pools(conn, name)]
