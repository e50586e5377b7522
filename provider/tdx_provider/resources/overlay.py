"""Overlay: a qcow2 volume backed by a base image; grows in place, never shrinks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import libvirt

from tdx_provider.checking import Checker, is_unknown
from tdx_provider.connection import connect
from tdx_provider.errors import InputError
from tdx_provider.specs import OVERLAY
from tdx_provider.storage import volume

from . import volumes
from .base import Resource, State, owner_of


def _outputs(props: dict[str, Any], info: Any) -> dict[str, Any]:
    return {**props, "name": info.name, "pool": info.pool, "path": info.path, "key": info.key,
            "capacity": info.capacity, "backing_path": info.backing_path}


class OverlayResource(Resource):
    spec = OVERLAY

    def check_more(self, olds: dict[str, Any], checker: Checker, *, readiness: bool,
                   root: Path) -> None:
        if checker.known("uri", "pool", "base_image"):
            checker.run("uri", lambda: _resolve_base_name(checker.inputs))
        if checker.known("uri", "capacity") and checker.inputs.get("capacity"):
            checker.run("capacity", lambda: _check_capacity(checker.inputs))
        volumes.fill_path(checker)

    def refuse(self, olds: dict[str, Any], news: dict[str, Any]) -> None:
        new = news.get("capacity")
        if new is not None and not is_unknown(new) and new < (olds.get("capacity") or 0):
            raise InputError(
                "capacity", f"shrinking overlay {olds.get('name')!r} from {olds['capacity']} to "
                f"{new} bytes would lose data; grow it, or replace it by changing its name")

    def create(self, props: dict[str, Any]) -> State:
        with connect(props["uri"]) as conn:
            # a name only when its base did not exist yet at check (made in this same update)
            base_path = volume.resolve_base(conn, props["pool"], props["base_image"],
                                            "base_image")
            info = volume.create_overlay(conn, props["pool"], props["name"], base_path,
                                         owner_of(props), capacity=props.get("capacity"))
        return State(info.key, _outputs({**props, "base_image": base_path}, info))

    def read(self, id_: str, props: dict[str, Any]) -> State | None:
        found = volumes.read(id_, props, reclaim=True)
        if found is None:
            return None
        props, info = found
        if info.backing_path is not None:
            props.setdefault("base_image", info.backing_path)  # imported
        return State(info.key, _outputs(props, info))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        with connect(news["uri"]) as conn:
            volume.reclaim(conn, news["pool"], news["name"], owner_of(news))
            info = volume.grow(conn, news["pool"], news["name"], news["capacity"])
        return _outputs(news, info)

    def delete(self, id_: str, props: dict[str, Any]) -> str | None:
        volumes.delete(props)
        return None


def _resolve_base_name(inputs: dict[str, Any]) -> None:
    """A base given by volume name becomes its path, so every form of the same base (the
    BaseImage, its path, its name) is one value and changing between them is no diff. A name
    whose volume does not exist yet (made in this same update) stays a name until create."""
    if inputs["base_image"].startswith("/"):
        return
    with connect(inputs["uri"]) as conn:
        path = volume.path_in_pool(conn, inputs["pool"], inputs["base_image"])
    if path is not None:
        inputs["base_image"] = path


def _check_capacity(inputs: dict[str, Any]) -> None:
    """At preview: an overlay may not be smaller than its base image. The base's size comes
    from the BaseImage (known at preview when its source is local, even before it exists) or
    from libvirt (a base given by path)."""
    base_capacity = inputs.get("base_capacity")
    if is_unknown(base_capacity) or not isinstance(base_capacity, int):
        if is_unknown(inputs.get("base_image")) or not inputs["base_image"].startswith("/"):
            return  # made in this same update from a source we cannot size at preview
        with connect(inputs["uri"]) as conn:
            try:
                base = conn.storageVolLookupByPath(inputs["base_image"])
            except libvirt.libvirtError:
                return  # the base image is created in this same update
            base_capacity = base.info()[1]
    if inputs["capacity"] < base_capacity:
        raise InputError("capacity", f"{inputs['capacity']} bytes is below the base image's "
                         f"size {base_capacity} bytes")


OVERLAY_RESOURCE = OverlayResource()
