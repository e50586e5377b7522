"""The pool lock's record volumes: what a holder writes into one, and the libvirt calls that
create, read, rewrite and delete them (:mod:`.exclusion` builds the lock from these).

A record is a small raw volume whose content is the holder's JSON, padded to a fixed size so a
rewrite never changes its length. Creating one is exclusive in libvirtd; that is the lock.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import time
from dataclasses import asdict, dataclass

import libvirt
from lxml import etree

from tdx_provider import retry
from tdx_provider.connection import is_no_such, lookup_volume
from tdx_provider.storage import streams

RECORD_BYTES = 4096


@dataclass(frozen=True)


class Holder:
    """What the lock volume records about the process that holds it."""

    token: str
    host: str
    pid: int
    program: str
    since: str
    beat: int = 0

    @classmethod
    def me(cls) -> Holder:
        return cls(token=secrets.token_hex(8), host=socket.gethostname(), pid=os.getpid(),
                   program=os.path.basename(sys.argv[0] if sys.argv else "") or "python",
                   since=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def encode(self) -> bytes:
        body = json.dumps(asdict(self)).encode()
        return body + b" " * (RECORD_BYTES - len(body))


def describe(record: bytes) -> str:
    """The holder as a human reads it, from the raw record (which may be empty or torn)."""
    try:
        data = json.loads(record)
        return (f"{data['program']} pid {data['pid']} on {data['host']} "
                f"(holding since {data['since']})")
    except (ValueError, KeyError, TypeError):
        return "an unknown holder (the lock records nothing readable)"


def volume_xml(name: str) -> str:
    """The small raw volume a record lives in."""
    vol = etree.Element("volume")
    etree.SubElement(vol, "name").text = name
    etree.SubElement(vol, "capacity", unit="bytes").text = str(RECORD_BYTES)
    etree.SubElement(vol, "allocation", unit="bytes").text = "0"
    target = etree.SubElement(vol, "target")
    etree.SubElement(target, "format", type="raw")
    perms = etree.SubElement(target, "permissions")
    etree.SubElement(perms, "mode").text = "0644"
    return etree.tostring(vol, encoding="unicode")


def _exists(exc: libvirt.libvirtError) -> bool:
    return (exc.get_error_code() == libvirt.VIR_ERR_STORAGE_VOL_EXIST
            or "already exists" in str(exc) or "File exists" in str(exc))


def try_create(pool: libvirt.virStoragePool, name: str
               ) -> tuple[libvirt.virStorageVol | None, bool]:
    """Create volume ``name``: (it, False); (None, unlisted) when it already exists (someone
    else holds it). ``unlisted``: libvirt refused because the file exists although its list of
    the pool's volumes has no such name (only a refresh makes it a volume that can be read)."""
    try:
        return retry.transient(lambda: pool.createXML(volume_xml(name), 0)), False
    except libvirt.libvirtError as exc:
        if _exists(exc):
            return None, exc.get_error_code() != libvirt.VIR_ERR_STORAGE_VOL_EXIST
        raise


def read(pool: libvirt.virStoragePool, name: str) -> bytes | None:
    """The record in volume ``name``; None when the volume is gone."""
    vol = lookup_volume(pool, name)
    if vol is None:
        return None
    try:
        return retry.transient(
            lambda: b"".join(streams.download(pool.connect(), vol))).rstrip(b" \0\n")
    except libvirt.libvirtError as exc:
        if is_no_such(exc):
            return None
        raise


def write(pool: libvirt.virStoragePool, vol: libvirt.virStorageVol, holder: Holder) -> None:
    data = holder.encode()
    retry.transient(lambda: streams.upload(pool.connect(), vol, [data], len(data)))


def delete(pool: libvirt.virStoragePool, name: str) -> None:
    vol = lookup_volume(pool, name)
    if vol is None:
        return
    try:
        retry.transient(lambda: vol.delete(0))
    except libvirt.libvirtError as exc:
        if not is_no_such(exc):
            raise


def token(record: bytes | None) -> str | None:
    """The holder's token in a record; None when the record is empty or torn."""
    try:
        found = json.loads(record or b"").get("token")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None
