"""Who uses a volume: domains whose disks read it (:mod:`.disk_users`) and volumes backed by
it; a volume in use is not deleted."""

from __future__ import annotations

import os

import libvirt

from tdx_provider.errors import InUseError
from tdx_provider.readers.storage import Volume
from tdx_provider.storage import disk_users
from tdx_provider.storage.domain_disks import DomainDisks, VolumeRef


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


def describe_user(domain: DomainDisks, path: str, ref: VolumeRef) -> str:
    """The domain's name, saying so when it reads the volume only below another disk."""
    return domain.name if domain.names(path, ref) else f"{domain.name} (in a backing chain)"


def refuse_if_used(conn: libvirt.virConnect, pool_name: str, name: str, path: str) -> None:
    users = disk_users.users(conn, path, (pool_name, name))
    if users:
        named = ", ".join(describe_user(d, path, (pool_name, name)) for d in users)
        raise InUseError(f"volume {name!r} is used by domain(s) {named}; delete those first")
