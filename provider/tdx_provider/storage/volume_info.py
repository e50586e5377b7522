"""What a volume is, read from libvirt (its XML through the storage reader), and the XML a new
volume is created from."""

from __future__ import annotations

from dataclasses import dataclass

import libvirt
from lxml import etree

from tdx_provider.connection import lookup_volume as lookup
from tdx_provider.readers.storage import Volume
from tdx_provider.storage import pool as pools

BASE_MODE = "0644"
OVERLAY_MODE = "0600"


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    pool: str
    path: str
    key: str
    format: str
    capacity: int
    allocation: int
    backing_path: str | None


def info(pool_name: str, vol: libvirt.virStorageVol) -> VolumeInfo:
    doc = Volume.parse(vol.XMLDesc(0))
    _type, capacity, allocation = vol.info()
    return VolumeInfo(
        name=vol.name(),
        pool=pool_name,
        path=vol.path(),
        key=vol.key(),
        format=doc.format,
        capacity=capacity,
        allocation=allocation,
        backing_path=doc.backing_path,
    )


def read(conn: libvirt.virConnect, pool_name: str, name: str) -> VolumeInfo | None:
    pool = pools.lookup(conn, pool_name)
    if pool is None or not pool.isActive():
        return None
    vol = lookup(pool, name)
    return info(pool_name, vol) if vol is not None else None


def volume_xml(
    name: str, capacity: int, fmt: str, mode: str, backing: VolumeInfo | None = None
) -> str:
    root = etree.Element("volume")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "capacity", unit="bytes").text = str(capacity)
    if backing is None:
        etree.SubElement(root, "allocation", unit="bytes").text = "0"
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "format", type=fmt)
    perms = etree.SubElement(target, "permissions")
    etree.SubElement(perms, "mode").text = mode
    if backing is not None:
        store = etree.SubElement(root, "backingStore")
        etree.SubElement(store, "path").text = backing.path
        etree.SubElement(store, "format", type=backing.format)
    return etree.tostring(root, encoding="unicode")
