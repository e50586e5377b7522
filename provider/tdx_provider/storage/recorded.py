"""Creating a volume whose ledger entry was just written, and undoing a create of ours: the
ledger and the pool never disagree about what is ours (see :mod:`.ledger`)."""

from __future__ import annotations

import contextlib

import libvirt

from tdx_provider import retry
from tdx_provider.storage import ledger


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
