"""Orphan cleanup: remove the overlays (and cloud-init seeds) of ours that nothing needs.

``tdxctl pool-cleanup`` runs it; the rules are in :func:`cleanup_pool`. Each candidate the pass
looks at becomes a :class:`CleanupRow` saying what happened to it and why, so that an operator
sees why a volume stays.
"""

from __future__ import annotations

from dataclasses import dataclass

import libvirt

from tdx_provider import retry
from tdx_provider.errors import InUseError, TdxError
from tdx_provider.metadata import Owner, owner_matches
from tdx_provider.storage import disk_users, exclusion, ledger, volume
from tdx_provider.storage import pool as pools
from tdx_provider.storage.inventory import select_pools

DECLARED = ("declared by its stack; `tdxctl pool-cleanup --owner PROJECT/STACK` removes it "
            "once that stack is gone")

# Actions of a row: what the pass did (or, dry, would do) with a candidate.
REMOVED, WOULD_REMOVE, KEPT, FAILED = "removed", "would remove", "kept", "failed"


@dataclass(frozen=True)
class CleanupRow:
    """One candidate volume and what became of it; ``reason`` says why it was kept or failed."""

    action: str
    pool: str
    volume: str
    owner: str
    reason: str | None = None


def running_pools(conn: libvirt.virConnect, name: str | None) -> list[libvirt.virStoragePool]:
    """The named pool (an error unless it runs), or every running pool."""
    selected = select_pools(conn, name)
    if name is not None and not selected[0].isActive():
        raise TdxError(f"storage pool {name!r} is not running; `tdxctl pool-start {name}` "
                       "starts it")
    return [pool for pool in selected if pool.isActive()]


def cleanup_pools(conn: libvirt.virConnect, name: str | None, dry_run: bool,
                  owner: str | None = None) -> list[CleanupRow]:
    """:func:`cleanup_pool` over the named pool, or over every running pool."""
    return [row for pool in running_pools(conn, name)
            for row in cleanup_pool(conn, pool, dry_run, owner)]


def cleanup_pool(conn: libvirt.virConnect, pool: libvirt.virStoragePool,
                 dry_run: bool, owner: str | None = None) -> list[CleanupRow]:
    """Remove (or, dry, name) the orphaned overlays of the pool (and cloud-init seeds, by the
    same rules).

    An overlay is orphaned when the ledger lists it as ours, no domain uses it (running or
    defined; persistent or live definition; as a disk or in a backing chain), no volume is
    backed by it, and its stack gave it up: ``tdxctl delete`` released
    it with the domain that used it, or ``owner`` (``PROJECT[/STACK[/RESOURCE]]``) says that
    stack is gone. Anything else a stack declares is kept, even without a domain: a spare
    disk, or an overlay whose domain ``pulumi up`` has not made yet. Base images and volumes
    the ledger does not list are never candidates.

    The pass holds the pool (:func:`exclusion.pool_lock`), so it never sees a create half
    done, and :func:`volume.delete` re-checks users, so a domain defined meanwhile keeps its
    overlay.
    """
    name = pool.name()
    used = disk_users.scan(conn)  # outside the lock: no writer of the pool waits for it
    if dry_run:
        pools.read(conn, name)
        return _cleanup_rows(conn, pool, used, owner, dry_run=True)
    with exclusion.pool_lock(conn, name) as locked:
        retry.transient(lambda: locked.refresh(0))  # volumes removed out of band: no candidates
        return _cleanup_rows(conn, locked, used, owner, dry_run=False)


def _cleanup_rows(conn: libvirt.virConnect, pool: libvirt.virStoragePool,
                  used: list[disk_users.DomainDisks], owner: str | None,
                  dry_run: bool) -> list[CleanupRow]:
    name = pool.name()
    entries = ledger.read(pool)
    present = set(pools.volume_names(pool))
    rows = []
    for vol_name, entry in sorted(entries.items()):
        if entry.kind not in ledger.RELEASABLE or vol_name not in present:
            continue
        vol = volume.lookup(pool, vol_name)
        if vol is None:
            continue
        given_up = entry.released or (
            owner is not None and owner_matches(Owner.parse(entry.owner), owner))
        users = sorted(d.name for d in used if d.uses(vol.path(), (name, vol_name)))
        if users:  # in use: a given-up one is listed, so the operator sees why it stays
            if given_up:
                rows.append(CleanupRow(KEPT, name, vol_name, entry.owner,
                                       f"used by domain(s) {', '.join(users)}"))
            continue
        if not given_up:
            rows.append(CleanupRow(KEPT, name, vol_name, entry.owner, DECLARED))
            continue
        backed = volume.volumes_backed_by(conn, vol.path())
        if backed:
            rows.append(CleanupRow(KEPT, name, vol_name, entry.owner,
                                   f"backs {', '.join(backed)}"))
        elif dry_run:
            rows.append(CleanupRow(WOULD_REMOVE, name, vol_name, entry.owner))
        else:
            rows.append(_remove_orphan(conn, name, vol_name, entry))
    return rows


def _remove_orphan(conn: libvirt.virConnect, pool: str, name: str,
                   entry: ledger.Entry) -> CleanupRow:
    try:
        volume.delete(conn, pool, name)
    except InUseError as exc:  # taken into use since we looked
        return CleanupRow(KEPT, pool, name, entry.owner, str(exc))
    except (libvirt.libvirtError, TdxError) as exc:
        return CleanupRow(FAILED, pool, name, entry.owner, str(exc))
    return CleanupRow(REMOVED, pool, name, entry.owner)
