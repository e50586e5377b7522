"""BaseImage: a read-only base volume imported into a pool."""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider

from ._common import Checker, adapter, auto_name, diff, owner_of

REPLACE_KEYS = ("source", "sha256", "name", "pool", "format", "uri")
# None means "not pinned": the detected format and the computed digest are then accepted.
OPTIONAL_KEYS = ("sha256", "format")


def _outputs(props: dict[str, Any], info: Any, sha256: str) -> dict[str, Any]:
    return {
        **props,
        "name": info.name,
        "pool": info.pool,
        "path": info.path,
        "key": info.key,
        "format": info.format,
        "capacity": info.capacity,
        "allocation": info.allocation,
        "sha256": sha256,
    }


def _validate_format(field: str, value: Any) -> str:
    from tdx_provider.errors import InputError

    if value not in ("qcow2", "raw"):
        raise InputError(
            field, f"must be 'qcow2' or 'raw' (got {value!r}), or omitted to detect it"
        )
    return value


def _probe_local_source(olds: dict[str, Any], checker: Checker) -> None:
    """At preview, for a local source: its virtual size becomes ``capacity`` (so an Overlay of
    this same update can be checked against it), and a pinned ``sha256`` is verified when an
    import is about to happen (not on every later run: the volume was verified when made)."""
    from tdx_provider.errors import InputError
    from tdx_provider.storage import images, volume

    inputs = checker.inputs
    with images.Source(inputs["source"]) as src:
        inputs["capacity"] = (src.header.virtual_size if src.header.format == "qcow2"
                              else src.size)
    wanted = inputs.get("sha256")
    will_import = (olds.get("source"), olds.get("sha256")) != (inputs["source"], wanted)
    if wanted is None or not checker.known("sha256") or not will_import:
        return
    actual = volume.hash_source(inputs["source"])
    if actual != wanted:
        raise InputError("sha256", f"{inputs['source']!r} has sha256 {actual}, expected "
                         f"{wanted}; pin the digest of the image you mean, or fix the source")


class BaseImageProvider(ResourceProvider):
    @adapter
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        from tdx_provider import validation
        from tdx_provider.storage import images

        checker = Checker(news)
        resource = (news.get("owner") or {}).get("resource", "base")
        checker.inputs["name"], checker.inputs["auto_named"] = auto_name(resource, olds, news)
        checker.field("uri", validation.uri)
        checker.field("pool", validation.name)
        checker.field("name", validation.name)
        checker.field("source", images.validate_source)
        checker.field("sha256", validation.sha256_hex, optional=True)
        checker.field("format", _validate_format, optional=True)
        if checker.known("source") and images.local_path(checker.inputs["source"]) is not None:
            checker.run("source", lambda: _probe_local_source(olds, checker))
        return CheckResult(checker.inputs, checker.failures)

    @adapter
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff(olds, news, replace_keys=REPLACE_KEYS, optional=OPTIONAL_KEYS,
                    delete_before_replace=not news.get("auto_named"))

    @adapter
    def create(self, props: dict[str, Any]) -> CreateResult:
        from tdx_provider.connection import connect
        from tdx_provider.storage import volume

        with connect(props["uri"]) as conn:
            info, sha256 = volume.import_base(
                conn, props["pool"], props["name"], props["source"], owner_of(props),
                sha256=props.get("sha256"), fmt=props.get("format"),
            )
        return CreateResult(info.key, _outputs(props, info, sha256))

    @adapter
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from tdx_provider.connection import connect
        from tdx_provider.storage import volume

        with connect(props["uri"]) as conn:
            info = volume.read(conn, props["pool"], props["name"])
        if info is None:
            return ReadResult(None, {})
        return ReadResult(info.key, _outputs(props, info, props["sha256"]))

    @adapter
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        from tdx_provider.connection import connect
        from tdx_provider.storage import volume

        with connect(props["uri"]) as conn:
            volume.delete(conn, props["pool"], props["name"])
