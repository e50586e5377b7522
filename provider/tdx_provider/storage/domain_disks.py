"""The disks one domain names, read from its definitions: as a disk's source, and below it
(backing chain, block-copy target), as files or as a pool's volumes.

:mod:`.disk_users` asks this of every domain of a host before a volume is deleted or reclaimed.
"""

from __future__ import annotations

import dataclasses
import os
from typing import NamedTuple

import libvirt

from tdx_provider.connection import is_no_such
from tdx_provider.readers.domain import Domain, Source

VolumeRef = tuple[str, str]  # (pool, volume), as ``<disk type='volume'>`` names a disk


@dataclasses.dataclass(frozen=True)
class DomainDisks:
    """A domain and the disks it names: as a disk's source, files (normalised paths) and
    libvirt volumes named by pool and volume name (``disks``, ``volumes``); below a disk
    (its backing chain, a block copy's target), the same kinds (``layers``,
    ``layer_volumes``)."""

    uuid: str
    name: str
    disks: frozenset[str]
    volumes: frozenset[VolumeRef] = frozenset()
    layers: frozenset[str] = frozenset()
    layer_volumes: frozenset[VolumeRef] = frozenset()

    def uses(self, path: str, volume: VolumeRef | None = None) -> bool:
        """True when any disk of it reads the file ``path`` or the libvirt volume ``volume``
        (which may be that same file, named by pool and volume name), as its source or in
        its backing chain."""
        return self.names(path, volume) or os.path.normpath(path) in self.layers or (
            volume is not None and volume in self.layer_volumes)

    def names(self, path: str, volume: VolumeRef | None = None) -> bool:
        """True when ``path`` (or ``volume``) is the source of one of its disks."""
        return os.path.normpath(path) in self.disks or (volume is not None
                                                        and volume in self.volumes)


class Sources(NamedTuple):
    """What the disks of one domain XML name (see :class:`DomainDisks`)."""

    disks: frozenset[str]
    volumes: frozenset[VolumeRef]
    layers: frozenset[str]
    layer_volumes: frozenset[VolumeRef]

    def __or__(self, other: object) -> Sources:
        if not isinstance(other, Sources):
            return NotImplemented
        return Sources(self.disks | other.disks, self.volumes | other.volumes,
                       self.layers | other.layers, self.layer_volumes | other.layer_volumes)


def disks_of(xml: str) -> Sources:
    """The files (normalised) and libvirt volumes a domain XML's disks name, as their source
    and below it (``<backingStore>``, ``<mirror>``, at any depth)."""
    return _sources(Domain.parse(xml))


def _sources(doc: Domain) -> Sources:
    disks: set[str] = set()
    volumes: set[VolumeRef] = set()
    layers: set[str] = set()
    layer_volumes: set[VolumeRef] = set()

    def add(source: Source, files: set[str], refs: set[VolumeRef]) -> None:
        path = source.path
        if path:
            files.add(os.path.normpath(path))
        elif source.pool and source.volume:
            refs.add((source.pool, source.volume))

    for disk in doc.disks:
        if disk.source is not None:
            add(disk.source, disks, volumes)
        for source in disk.sources_below:
            add(source, layers, layer_volumes)
    return Sources(frozenset(disks), frozenset(volumes), frozenset(layers),
                   frozenset(layer_volumes))


def read_domain(dom: libvirt.virDomain) -> DomainDisks | None:
    """A domain's disks: those of its persistent definition and, while it runs, those of its
    live one (a disk hot-plugged with ``--live`` alone, the backing chains libvirt resolved);
    None when it was undefined meanwhile."""
    try:
        current = Domain.parse(dom.XMLDesc(0))  # live while it runs, else persistent
        sources = _sources(current)
        if current.id is not None:  # running (libvirt gives only a live one an id)
            sources |= disks_of(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    except libvirt.libvirtError as exc:
        if is_no_such(exc):
            return None
        raise
    return DomainDisks(dom.UUIDString(), dom.name(), *sources)


def plain_scan(conn: libvirt.virConnect) -> list[DomainDisks]:
    """Every domain's disks, read one after another (waits for any domain libvirt holds)."""
    found = (read_domain(dom) for dom in conn.listAllDomains(0))
    return [d for d in found if d is not None]
