"""Base images: imported once into a pool, verified by SHA-256 while they stream, read-only.

The import and its ledger record happen under :func:`.exclusion.pool_lock`; an import an
interrupted run left is redone, and a finished one of the same owner and content is adopted."""

from __future__ import annotations

import hashlib

import libvirt

from tdx_provider import retry
from tdx_provider.connection import lookup_volume as lookup
from tdx_provider.errors import ConflictError, InputError, InUseError
from tdx_provider.metadata import Owner
from tdx_provider.storage import disk_users, ledger, streams
from tdx_provider.storage.exclusion import pool_lock
from tdx_provider.storage.images import Source
from tdx_provider.storage.recorded import create_recorded, discard_created
from tdx_provider.storage.volume_info import BASE_MODE, VolumeInfo, info, volume_xml
from tdx_provider.storage.volume_users import describe_user, volumes_backed_by


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
    holders = volumes_backed_by(conn, path) + [describe_user(d, path, (pool_name, vol.name()))
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
