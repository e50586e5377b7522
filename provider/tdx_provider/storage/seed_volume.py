"""cloud-init seed volumes: a small raw volume holding the ``cidata`` image, in a pool.

The image is streamed into the pool through the libvirt storage API (volume create + upload,
so remote URIs work) under :func:`exclusion.pool_lock`, and recorded in the pool's ledger as
kind ``seed`` with its owner and the SHA-256 of the image. The entry is written before the
volume, without a digest until the upload finished, so whatever an interrupted run leaves is
recognisably ours. Deleting one is :func:`volume.delete` (refused while a domain names it).
"""

from __future__ import annotations

import hashlib

import libvirt

from tdx_provider import retry
from tdx_provider.connection import lookup_volume as lookup
from tdx_provider.errors import ConflictError, InUseError
from tdx_provider.metadata import Owner
from tdx_provider.storage import disk_users, ledger, streams, volume
from tdx_provider.storage.exclusion import pool_lock

# The seed may carry user-data secrets: readable by QEMU (libvirt labels it), not by others.
SEED_MODE = "0600"
KIND: ledger.Kind = "seed"


def create(conn: libvirt.virConnect, pool_name: str, name: str, image: bytes,
           owner: Owner) -> tuple[volume.VolumeInfo, str]:
    """Create seed volume ``name`` holding ``image``; return (info, sha256 of the image).

    A volume of that name is taken over only when the ledger records it as ``owner``'s seed
    (left by an interrupted run) and no domain uses it; it is then written anew. Anything else
    of that name is a conflict naming its holder. A failure leaves nothing behind."""
    digest = hashlib.sha256(image).hexdigest()
    with pool_lock(conn, pool_name) as pool:
        existing = lookup(pool, name)
        if existing is not None:
            _discard_leftover(conn, pool, existing, owner)
        before = ledger.read(pool).get(name)
        ledger.record(pool, name, ledger.Entry(KIND, str(owner)))  # no digest: unfinished
        xml = volume.volume_xml(name, len(image), "raw", SEED_MODE)
        vol = volume.create_recorded(pool, name, xml, before)  # a refusal deletes nothing
        try:
            streams.upload(conn, vol, [image], len(image))
            ledger.record(pool, name, ledger.Entry(KIND, str(owner), digest))
        except BaseException:
            volume.discard_created(pool, vol)
            raise
        return volume.info(pool_name, vol), digest


def _discard_leftover(conn: libvirt.virConnect, pool: libvirt.virStoragePool,
                      vol: libvirt.virStorageVol, owner: Owner) -> None:
    entry = ledger.read(pool).get(vol.name())
    if entry is None or entry.kind != KIND or entry.owner != str(owner):
        holder = f"owned by {entry.owner}" if entry else "not created by pulumi-tdx"
        raise ConflictError(f"volume {vol.name()!r} already exists in pool {pool.name()!r} "
                            f"({holder}); choose another name or remove it")
    users = disk_users.users(conn, vol.path(), (pool.name(), vol.name()))
    if users:
        raise InUseError(f"seed {vol.name()!r} is left from an earlier run and domain(s) "
                         f"{', '.join(d.name for d in users)} use it; delete those first")
    retry.transient(lambda: vol.delete(0))


def download(conn: libvirt.virConnect, vol: libvirt.virStorageVol) -> bytes:
    """The seed image as stored (through the storage API: works remotely)."""
    return b"".join(streams.download(conn, vol))
