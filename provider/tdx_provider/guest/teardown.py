"""Operator teardown of our domains: choose them, stop them gracefully in parallel, and give up
their overlays and seeds in the ledger so that orphan cleanup may remove them.

``tdxctl delete`` runs it. A stack's own destroy does not come here: its overlays go with their
Overlay resources. Here the domain goes without its stack, so its disks stay (still declared)
and are only *released* (:func:`release_overlay`); :mod:`storage.cleanup` removes them later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

import libvirt

from tdx_provider.connection import connect
from tdx_provider.errors import TdxError
from tdx_provider.guest import domain
from tdx_provider.guest.inventory import instance_or_none
from tdx_provider.metadata import Owner, owner_matches
from tdx_provider.probe import probe
from tdx_provider.storage import disk_users, exclusion, ledger

DEFAULT_SHUTDOWN_TIMEOUT = 60  # seconds; a domain's own <ptdx:shutdown timeout> wins
MAX_PARALLEL_DELETES = 16


@dataclass(frozen=True)
class Doomed:
    """A domain that will be torn down, with the ACPI timeout it gets."""

    name: str
    owner: Owner | None
    timeout: int
    overlay: str | None = None
    seed: str | None = None


@dataclass(frozen=True)
class TeardownRow:
    """How the teardown of one domain went.

    ``result``: graceful (ACPI), forced, undefined (was not running), gone (already), or
    failed (``error``). ``overlay_kept`` / ``seed_kept``: why that disk was not released."""

    name: str
    owner: str | None
    timeout: int
    result: str
    seconds: float | None = None
    error: str | None = None
    overlay_kept: str | None = None
    seed_kept: str | None = None


def _doomed(dom: libvirt.virDomain, instance: domain.Instance | None,
            timeout: int | None) -> Doomed:
    if timeout is None:
        own = instance.shutdown_timeout if instance else None
        timeout = own if own is not None else DEFAULT_SHUTDOWN_TIMEOUT
    if instance is None:
        return Doomed(dom.name(), None, timeout)
    return Doomed(dom.name(), instance.owner, timeout, instance.overlay, instance.seed)


def select_for_delete(conn: libvirt.virConnect, uri: str, *, names: Sequence[str] = (),
                      every: bool = False, owner: str | None = None, force: bool = False,
                      timeout: int | None = None) -> tuple[list[Doomed], list[str]]:
    """(what to delete, why not): every domain of ours (``every``, narrowed by ``owner``) or
    the named domains (foreign ones only with ``force``); any problem stops all. ``timeout``
    overrides each domain's own ACPI timeout; ``uri`` names the host in problems."""
    if every:
        chosen = []
        for dom in domain.list_all(conn):
            instance = instance_or_none(dom)
            if instance and (owner is None or owner_matches(instance.owner, owner)):
                chosen.append(_doomed(dom, instance, timeout))
        return chosen, []
    chosen, problems = [], []
    for name in dict.fromkeys(names):  # each once, in the order given
        dom = domain.lookup(conn, name)
        if dom is None:
            problems.append(f"no domain named {name!r} on {uri}")
            continue
        instance = domain.instance_of(dom)
        if instance is None and not force:
            problems.append(f"domain {name!r} was not created by pulumi-tdx; "
                            "add --force to delete it anyway")
            continue
        chosen.append(_doomed(dom, instance, timeout))
    return chosen, problems


def teardown(uri: str, doomed: Doomed) -> TeardownRow:
    """The provider's graceful teardown of one domain, on a connection of this thread."""
    owner = str(doomed.owner) if doomed.owner else None
    try:
        with connect(uri) as conn:
            dom = domain.lookup(conn, doomed.name)
            was_running = dom is not None and bool(probe(dom.isActive))
            result = domain.delete(conn, doomed.name, doomed.timeout)
    except (libvirt.libvirtError, TdxError) as exc:
        return TeardownRow(doomed.name, owner, doomed.timeout, "failed", error=str(exc))
    overlay_kept = seed_kept = None
    if result.existed and doomed.owner is not None and doomed.overlay:
        overlay_kept = release_overlay(uri, doomed.overlay, doomed.name)
    if result.existed and doomed.owner is not None and doomed.seed:
        # its cloud-init seed is given up the same way
        seed_kept = release_overlay(uri, doomed.seed, doomed.name)
    if not result.existed:
        outcome = "gone"
    elif not was_running:
        outcome = "undefined"
    else:
        outcome = "graceful" if result.graceful else "forced"
    return TeardownRow(doomed.name, owner, doomed.timeout, outcome, round(result.seconds, 1),
                       None, overlay_kept, seed_kept)


def release_overlay(uri: str, path: str, deleted: str) -> str | None:
    """Mark the overlay (or cloud-init seed) of the domain ``deleted``, which teardown
    removed, as given up by its stack, so that orphan cleanup may remove it; None when done
    or already gone (its stack deleted it). While another domain uses it (persistent or live
    definition, as a disk or in a backing chain), or when that check or the release fails, it
    stays declared: the reason."""
    try:
        with connect(uri) as conn:
            try:
                vol = conn.storageVolLookupByPath(path)
                pool_name = vol.storagePoolLookupByVolume().name()
            except libvirt.libvirtError:
                return None  # gone
            users = [d.name for d in disk_users.users(conn, path, (pool_name, vol.name()))
                     if d.name != deleted]
            if users:
                return f"used by domain(s) {', '.join(users)}"
            with exclusion.pool_lock(conn, pool_name) as pool:
                ledger.release(pool, vol.name())
    except (libvirt.libvirtError, TdxError) as exc:
        return f"could not check its users or release it: {exc}"
    return None


def teardown_in_parallel(uri: str, chosen: Sequence[Doomed],
                         on_done: Callable[[TeardownRow], None] | None = None
                         ) -> list[TeardownRow]:
    """:func:`teardown` of each, up to :data:`MAX_PARALLEL_DELETES` at a time, one connection
    per thread; ``on_done`` sees each row as it finishes. The rows, by name."""
    rows = []
    with ThreadPoolExecutor(max_workers=min(len(chosen), MAX_PARALLEL_DELETES)) as executor:
        futures = [executor.submit(teardown, uri, doomed) for doomed in chosen]
        for future in as_completed(futures):
            row = future.result()
            rows.append(row)
            if on_done is not None:
                on_done(row)
    return sorted(rows, key=lambda row: row.name)
