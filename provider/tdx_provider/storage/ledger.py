"""The pool ledger: which volumes of a pool we created, of what kind, for whom.

Storage volumes cannot carry metadata, so each pool we use holds one small JSON volume,
``pulumi-tdx-ledger.json``. It is read and written through libvirt streams (so it works on
remote URIs). Every change is a read-modify-write, so it happens only while the writer holds
the pool (:func:`tdx_provider.storage.exclusion.pool_lock`, exclusive across processes and
machines):
no interleaving of writers can lose a record.

An entry means "a stack declares this volume" from the moment its create begins (it is written
before the volume) until its delete ends. ``released`` marks an overlay or a cloud-init seed an
operator gave up (``tdxctl delete`` of the domain that used it, or ``tdxctl pool-cleanup
--owner``): only such volumes are ever removed by ``tdxctl pool-cleanup``. A release ends
when the stack shows it still declares the volume (:func:`volume.reclaim`: a refresh, an
update, or a new domain of that stack on it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

import libvirt
from lxml import etree

from tdx_provider import retry
from tdx_provider.connection import lookup_volume
from tdx_provider.storage import exclusion, streams

LEDGER_VOLUME = "pulumi-tdx-ledger.json"
# Our own bookkeeping volumes in a pool: the ledger and the pool lock (see exclusion).
INTERNAL_VOLUMES = frozenset({LEDGER_VOLUME, exclusion.LOCK_VOLUME, exclusion.BREAK_VOLUME})
Kind = Literal["base", "overlay", "seed"]
# Kinds a stack may give up with its domain; base images are never released.
RELEASABLE: frozenset[str] = frozenset({"overlay", "seed"})


@dataclass(frozen=True)
class Entry:
    kind: Kind
    owner: str
    sha256: str | None = None
    released: bool = False


_FIELDS = frozenset(f.name for f in fields(Entry))


def _volume(pool: libvirt.virStoragePool) -> libvirt.virStorageVol | None:
    return lookup_volume(pool, LEDGER_VOLUME)


def read(pool: libvirt.virStoragePool) -> dict[str, Entry]:
    vol = _volume(pool)
    if vol is None:
        return {}
    raw = retry.transient(lambda: b"".join(streams.download(pool.connect(), vol))).strip()
    if not raw:
        return {}
    data = json.loads(raw)
    return {name: Entry(**{k: v for k, v in entry.items() if k in _FIELDS})
            for name, entry in data.get("volumes", {}).items()}


def _write(pool: libvirt.virStoragePool, entries: dict[str, Entry]) -> None:
    body = json.dumps(
        {"version": 1, "volumes": {n: _compact(e) for n, e in sorted(entries.items())}},
        indent=1,
    ).encode()
    vol = _volume(pool)
    if vol is None:
        xml = _volume_xml(max(len(body), 4096))
        vol = retry.transient(lambda: pool.createXML(xml, 0))
    capacity = vol.info()[1]
    if len(body) > capacity:
        retry.transient(lambda: vol.resize(len(body) * 2, 0))
        capacity = vol.info()[1]
    # Upload does not truncate: pad with JSON whitespace up to the volume's size.
    padded = body + b" " * (capacity - len(body))
    retry.transient(lambda: streams.upload(pool.connect(), vol, [padded], len(padded)))


def _compact(entry: Entry) -> dict[str, object]:
    """The entry as written: ``released`` only when set (older readers know the rest)."""
    data = asdict(entry)
    if not entry.released:
        del data["released"]
    return data


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


def release(pool: libvirt.virStoragePool, name: str) -> bool:
    """Mark overlay or seed ``name`` as given up by its stack; False when the ledger does not
    list it (already deleted: nothing to release)."""
    entries = read(pool)
    entry = entries.get(name)
    if entry is None or entry.kind not in RELEASABLE:
        return False
    if not entry.released:
        entries[name] = replace(entry, released=True)
        _write(pool, entries)
    return True


def forget(pool: libvirt.virStoragePool, name: str) -> None:
    entries = read(pool)
    if entries.pop(name, None) is not None:
        _write(pool, entries)
