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
        checker.field("base_image", _base_image_ref)
        checker.field(
            "capacity", lambda f, v: validation.integer(f, v, minimum=1), optional=True
        )
        if checker.known("uri", "pool", "base_image"):
            checker.run("uri", lambda: _resolve_base_name(checker.inputs))
        if checker.known("uri", "capacity") and checker.inputs.get("capacity"):
            checker.run("capacity", lambda: _check_capacity(checker.inputs))
        if checker.known("uri", "pool", "name") and not checker.failures:
            _path_of(checker.inputs)
        return CheckResult(checker.inputs, checker.failures)

    @adapter
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        new_capacity = news.get("capacity")
        if (
            new_capacity is not None
            and not is_unknown(new_capacity)
            and new_capacity < (olds.get("capacity") or 0)
        ):
            from tdx_provider.errors import InputError

            raise InputError(
                "capacity", f"shrinking overlay {olds.get('name')!r} from {olds['capacity']} to "
                f"{new_capacity} bytes would lose data; grow it, or replace it by changing its "
                "name"
            )
        return diff(olds, news, replace_keys=REPLACE_KEYS, update_keys=UPDATE_KEYS,
                    optional=OPTIONAL_KEYS, delete_before_replace=not news.get("auto_named"))

    @adapter
    def create(self, props: dict[str, Any]) -> CreateResult:
        from tdx_provider.connection import connect
        from tdx_provider.storage import volume

        with connect(props["uri"]) as conn:
            # a name only when its base did not exist yet at check (made in this same update)
            base_path = volume.resolve_base(conn, props["pool"], props["base_image"], "base_image")
            info = volume.create_overlay(
                conn, props["pool"], props["name"], base_path, owner_of(props),
                capacity=props.get("capacity"),
            )
        return CreateResult(info.key, _outputs({**props, "base_image": base_path}, info))

    @adapter
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from tdx_provider.connection import connect
        from tdx_provider.storage import volume

        with connect(props["uri"]) as conn:
            info = volume.read(conn, props["pool"], props["name"])
            if info is not None:  # the stack still declares it: an operator's release ends
                volume.reclaim(conn, props["pool"], props["name"], owner_of(props))
        if info is None:
            return ReadResult(None, {})
        return ReadResult(info.key, _outputs(props, info))

    @adapter
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        from tdx_provider.connection import connect
        from tdx_provider.storage import volume

        with connect(news["uri"]) as conn:
            volume.reclaim(conn, news["pool"], news["name"], owner_of(news))
            info = volume.grow(conn, news["pool"], news["name"], news["capacity"])
        return UpdateResult(_outputs(news, info))

    @adapter
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        from tdx_provider.connection import connect
        from tdx_provider.storage import volume

        with connect(props["uri"]) as conn:
            volume.delete(conn, props["pool"], props["name"])


def _path_of(inputs: dict[str, Any]) -> None:
    """The overlay's path as a checked input, once its pool exists. Preview shows an update's
    outputs as its inputs, so without this a growth in place would make ``Overlay.path``
    unknown at preview, and every TrustDomain on it would show a replace."""
    from tdx_provider.connection import connect
    from tdx_provider.storage import volume

    try:
        with connect(inputs["uri"]) as conn:
            inputs["path"] = volume.expected_path(conn, inputs["pool"], inputs["name"])
    except Exception:  # only a preview nicety: the path is then unknown until create
        inputs["path"] = None


def _base_image_ref(field: str, value: Any) -> str:
    """An absolute path of the base volume, or its volume name in ``pool``."""
    from tdx_provider import validation

    if isinstance(value, str) and value.startswith("/"):
        return validation.absolute_path(field, value, must_exist=False)
    return validation.name(field, value)


def _resolve_base_name(inputs: dict[str, Any]) -> None:
    """A base given by volume name becomes its path, so every form of the same base (the
    BaseImage, its path, its name) is one value and changing between them is no diff. A name
    whose volume does not exist yet (made in this same update) stays a name until create."""
    from tdx_provider.connection import connect
    from tdx_provider.storage import volume

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
    import libvirt

    from tdx_provider.connection import connect
    from tdx_provider.errors import InputError

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
        raise InputError(
            "capacity",
            f"{inputs['capacity']} bytes is below the base image's size {base_capacity} bytes",
        )
