"""Overlay: a qcow2 volume backed by a base image; grows in place, never shrinks."""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import (
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from ._common import Checker, adapter, auto_name, diff, is_unknown, owner_of

REPLACE_KEYS = ("base_image", "name", "pool", "uri")
UPDATE_KEYS = ("capacity",)
OPTIONAL_KEYS = ("capacity",)  # None: the base image's virtual size


def _outputs(props: dict[str, Any], info: Any) -> dict[str, Any]:
    return {
        **props,
        "name": info.name,
        "pool": info.pool,
        "path": info.path,
        "key": info.key,
        "capacity": info.capacity,
        "backing_path": info.backing_path,
    }


class OverlayProvider(ResourceProvider):
    @adapter
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        from tdx_provider import validation

        checker = Checker(news)
        resource = (news.get("owner") or {}).get("resource", "overlay")
        checker.inputs["name"], checker.inputs["auto_named"] = auto_name(resource, olds, news)
        checker.field("uri", validation.uri)
        checker.field("pool", validation.name)
        checker.field("name", validation.name)
        checker.field(
            "base_image", lambda f, v: validation.absolute_path(f, v, must_exist=False)
        )
        checker.field(
            "capacity", lambda f, v: validation.integer(f, v, minimum=1), optional=True
        )
        if checker.known("uri", "capacity") and checker.inputs.get("capacity"):
            checker.run("capacity", lambda: _check_capacity(checker.inputs))
        return CheckResult(checker.inputs, checker.failures)

    @adapter
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        new_capacity = news.get("capacity")
        if (
            new_capacity is not None
            and not is_unknown(new_capacity)
            and new_capacity < (olds.get("capacity") or 0)
        ):
            raise ValueError(
                f"capacity: shrinking overlay {olds.get('name')!r} from {olds['capacity']} to "
                f"{new_capacity} bytes would lose data; it is refused (grow it, or replace it by "
                "changing its name)"
            )
        return diff(olds, news, replace_keys=REPLACE_KEYS, update_keys=UPDATE_KEYS,
                    optional=OPTIONAL_KEYS, delete_before_replace=not news.get("auto_named"))

    @adapter
    def create(self, props: dict[str, Any]) -> CreateResult:
        from tdx_provider import volume
        from tdx_provider.connection import connect

        with connect(props["uri"]) as conn:
            info = volume.create_overlay(
                conn, props["pool"], props["name"], props["base_image"], owner_of(props),
                capacity=props.get("capacity"),
            )
        return CreateResult(info.key, _outputs(props, info))

    @adapter
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from tdx_provider import volume
        from tdx_provider.connection import connect

        with connect(props["uri"]) as conn:
            info = volume.read(conn, props["pool"], props["name"])
        if info is None:
            return ReadResult(None, {})
        return ReadResult(info.key, _outputs(props, info))

    @adapter
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        from tdx_provider import volume
        from tdx_provider.connection import connect

        with connect(news["uri"]) as conn:
            info = volume.grow(conn, news["pool"], news["name"], news["capacity"])
        return UpdateResult(_outputs(news, info))

    @adapter
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        from tdx_provider import volume
        from tdx_provider.connection import connect

        with connect(props["uri"]) as conn:
            volume.delete(conn, props["pool"], props["name"])


def _check_capacity(inputs: dict[str, Any]) -> None:
    """At preview: an overlay may not be smaller than its base image. The base's size comes
    from the BaseImage (known at preview when its source is local, even before it exists) or
    from libvirt (a base given by path)."""
    import libvirt

    from tdx_provider.connection import connect
    from tdx_provider.errors import InputError

    base_capacity = inputs.get("base_capacity")
    if is_unknown(base_capacity) or not isinstance(base_capacity, int):
        if is_unknown(inputs.get("base_image")):
            return  # made in this same update from a source we cannot size at preview
        with connect(inputs["uri"]) as conn:
            try:
                base = conn.storageVolLookupByPath(inputs["base_image"])
            except libvirt.libvirtError:
                return  # the base image is created in this same update
            base_capacity = base.info()[1]
    if inputs["capacity"] < base_capacity:
        raise InputError(
            "capacity",
            f"{inputs['capacity']} bytes is below the base image's size {base_capacity} bytes",
        )
