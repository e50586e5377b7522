"""Which domains name a disk file, answered without waiting on a domain that libvirt holds.

Why
    Before it deletes or reclaims a volume, the engine refuses while any domain names the
    volume as a disk: ours or anyone else's, running or only defined, as a disk's source or
    in its backing chain. A running domain's disks are those of its persistent definition and
    of its live one, so a disk hot-plugged with ``--live`` alone counts, and so does every
    layer of the backing chain that libvirt resolved for it. Reading every domain's XML is
    the plain way to check. But every libvirt call that enumerates domains locks each
    domain object in turn: ``listAllDomains``, ``listDefinedDomains``, ``listDomainsID``, the
    counts, ``getAllDomainStats``. libvirtd holds a domain's lock for as long as QEMU takes to
    exit after its guest powers off, 1.2-2 s here on libvirt 9.0 and 12.8 alike (``make
    bench``, section ``stall``). A plain scan therefore waits for any shutdown on the host,
    related or not.

    Waiting also costs others. Each request blocked on a held domain keeps one of libvirtd's
    workers. Probed on 9.0 with six such requests held, another client's ``vol.path()``
    waited 1.05 s, while lookups were still served. No listing call avoids the lock, so the
    scan is scoped instead: it asks nothing about a domain it knows libvirt holds, and judges
    that domain by what it already knows, when that knowledge cannot be out of date.

How
    One :class:`~.disk_index.DiskIndex` per process and URI, kept current by libvirt's events,
    knows every domain and the disks of its definitions (:mod:`.disk_index` says how, and what
    that gives up while libvirt holds a domain); :mod:`.domain_disks` reads one domain's disks.

Fallback
    A plain scan on the caller's connection is used in two cases. One is a ``test:///<file>``
    URI: every open of it is a new in-memory host, so a second connection would see another
    host. The other is an index whose connection cannot be opened.
"""

from __future__ import annotations

import threading

import libvirt

from tdx_provider.storage.disk_index import DiskIndex, in_background

# DomainDisks and VolumeRef: the adapters (tdxctl/) take them from here until issue 19's rewrite.
from tdx_provider.storage.domain_disks import DomainDisks, VolumeRef, plain_scan

_indexes: dict[str, DiskIndex] = {}
_indexes_lock = threading.Lock()


def _shares_state(uri: str) -> bool:
    """True when a second connection to ``uri`` sees the same host as the first."""
    return not uri.startswith("test:") or uri.rstrip("/") == "test:///default"


def index_for(uri: str) -> DiskIndex | None:
    """This process's index of ``uri``; None where only a plain scan is right (see
    Fallback above)."""
    if not _shares_state(uri):
        return None
    with _indexes_lock:
        index = _indexes.get(uri)
        if index is not None and not index.broken.is_set():
            return index
        if index is not None:
            index.close()
        try:
            index = _indexes[uri] = DiskIndex(uri)
        except libvirt.libvirtError:
            _indexes.pop(uri, None)
            return None
        return index


def warm(uri: str) -> None:
    """Start ``uri``'s index now (its first listing runs in the background)."""
    in_background(lambda: index_for(uri), name="tdx-disk-index")


def scan(conn: libvirt.virConnect) -> list[DomainDisks]:
    """Every domain of ``conn``'s host with the disks its definitions name."""
    index = index_for(conn.getURI())
    return plain_scan(conn) if index is None else index.scan()


def users(conn: libvirt.virConnect, path: str, volume: VolumeRef | None = None
          ) -> list[DomainDisks]:
    """Domains, defined or running, whose disks read ``path`` (or the libvirt volume
    ``volume``, ``(pool, name)``), in their persistent or live definition, as a source or in
    a backing chain; sorted by name."""
    return sorted((d for d in scan(conn) if d.uses(path, volume)), key=lambda d: d.name)
