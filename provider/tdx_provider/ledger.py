"""The pool ledger: which volumes of a pool we created, of what kind, for whom.

Storage volumes cannot carry metadata, so each pool we use holds one small JSON volume,
``pulumi-tdx-ledger.json``. It is read and written through libvirt streams (so it works on
remote URIs) and only under :func:`tdx_provider.connection.pool_lock`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

import libvirt
from lxml import etree

from . import streams
from .connection import is_no_such

LEDGER_VOLUME = "pulumi-tdx-ledger.json"
Kind = Literal["base", "overlay"]


@dataclass(frozen=True)
class Entry:
    kind: Kind
    owner: str
    sha256: str | None = None


def _volume(pool: libvirt.virStoragePool) -> libvirt.virStorageVol | None:
    try:
        return pool.storageVolLookupByName(LEDGER_VOLUME)
    except libvirt.libvirtError as exc:
        if is_no_such(exc):
            return None
        raise


def read(pool: libvirt.virStoragePool) -> dict[str, Entry]:
    vol = _volume(pool)
    if vol is None:
        return {}
    raw = b"".join(streams.download(pool.connect(), vol)).strip()
    if not raw:
        return {}
    data = json.loads(raw)
    return {name: Entry(**entry) for name, entry in data.get("volumes", {}).items()}


def _write(pool: libvirt.virStoragePool, entries: dict[str, Entry]) -> None:
    body = json.dumps(
        {"version": 1, "volumes": {n: asdict(e) for n, e in sorted(entries.items())}},
        indent=1,
    ).encode()
    vol = _volume(pool)
    if vol is None:
        vol = pool.createXML(_volume_xml(max(len(body), 4096)), 0)
    capacity = vol.info()[1]
    if len(body) > capacity:
        vol.resize(len(body) * 2, 0)
        capacity = vol.info()[1]
    # Upload does not truncate: pad with JSON whitespace up to the volume's size.
    padded = body + b" " * (capacity - len(body))
    streams.upload(pool.connect(), vol, [padded], len(padded))


def _volume_xml(capacity: int) -> str:
    vol = etree.Element("volume")
    etree.SubElement(vol, "name").text = LEDGER_VOLUME
    etree.SubElement(vol, "capacity", unit="bytes").text = str(capacity)
    target = etree.SubElement(vol, "target")
    etree.SubElement(target, "format", type="raw")
    perms = etree.SubElement(target, "permissions")
    etree.SubElement(perms, "mode").text = "0644"
    return etree.tostring(vol, encoding="unicode")


def record(pool: libvirt.virStoragePool, name: str, entry: Entry) -> None:
    entries = read(pool)
    entries[name] = entry
    _write(pool, entries)


def forget(pool: libvirt.virStoragePool, name: str) -> None:
    entries = read(pool)
    if entries.pop(name, None) is not None:
        _write(pool, entries)
