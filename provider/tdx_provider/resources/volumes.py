"""What the three volume resources (BaseImage, Overlay, CloudInitSeed) share: finding their
volume (also from its key alone, for an import), its path at preview, delete, and reclaiming a
volume an operator released while the stack still declares it."""

from __future__ import annotations

from typing import Any

import libvirt

from tdx_provider.checking import Checker
from tdx_provider.connection import connect, is_no_such
from tdx_provider.storage import volume

from .base import owner_of


def locate(conn: libvirt.virConnect, id_: str, props: dict[str, Any]) -> tuple[str, str] | None:
    """(pool, name) of the volume: from the inputs, or from its key (an import knows only the
    id). None when no volume has that key."""
    if props.get("pool") and props.get("name"):
        return props["pool"], props["name"]
    try:
        vol = conn.storageVolLookupByKey(id_)
    except libvirt.libvirtError as exc:
        if is_no_such(exc):
            return None
        raise
    return vol.storagePoolLookupByVolume().name(), vol.name()


def read(id_: str, props: dict[str, Any], *, reclaim: bool) -> tuple[dict[str, Any],
                                                                      volume.VolumeInfo] | None:
    """The volume now (None when gone), with ``pool`` and ``name`` filled in for an import.
    ``reclaim``: the stack still declares it, so an operator's release of it ends."""
    with connect(props["uri"]) as conn:
        where = locate(conn, id_, props)
        if where is None:
            return None
        pool_name, name = where
        info = volume.read(conn, pool_name, name)
        if info is not None and reclaim and props.get("owner"):
            volume.reclaim(conn, pool_name, name, owner_of(props))
    if info is None:
        return None
    return {**props, "pool": pool_name, "name": name}, info


def delete(props: dict[str, Any]) -> None:
    with connect(props["uri"]) as conn:
        volume.delete(conn, props["pool"], props["name"])


def fill_path(checker: Checker) -> None:
    """The volume's path as a checked input, once its pool exists. Preview shows an update's
    outputs as its inputs, so without this a growth in place would make the path unknown at
    preview, and every TrustDomain on it would show a replace."""
    inputs = checker.inputs
    if not checker.known("uri", "pool", "name") or checker.failures:
        return
    try:
        with connect(inputs["uri"]) as conn:
            inputs["path"] = volume.expected_path(conn, inputs["pool"], inputs["name"])
    except Exception:  # only a preview nicety: the path is then unknown until create
        inputs["path"] = None
