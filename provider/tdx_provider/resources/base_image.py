"""BaseImage: import a qcow2 or raw image into a pool, verified and read-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tdx_provider.checking import Checker
from tdx_provider.connection import connect
from tdx_provider.errors import InputError
from tdx_provider.specs import BASE_IMAGE
from tdx_provider.storage import images, volume

from . import volumes
from .base import Resource, State, owner_of


def _outputs(props: dict[str, Any], info: Any, sha256: str | None) -> dict[str, Any]:
    return {**props, "name": info.name, "pool": info.pool, "path": info.path, "key": info.key,
            "format": info.format, "capacity": info.capacity, "allocation": info.allocation,
            "sha256": sha256}


class BaseImageResource(Resource):
    spec = BASE_IMAGE

    def check_more(self, olds: dict[str, Any], checker: Checker, *, readiness: bool,
                   root: Path) -> None:
        """``source`` is checked on the machine that runs Pulumi whatever ``uri`` is: the
        provider process reads it there and streams it into the host's pool, so that is where
        it must exist (unlike a TrustDomain's firmware, kernel and initrd, which QEMU opens on
        the host and which are asked of its libvirt: :mod:`storage.host_files`)."""
        if checker.known("source") and images.local_path(checker.inputs["source"]) is not None:
            checker.run("source", lambda: _probe_local_source(olds, checker))

    def create(self, props: dict[str, Any]) -> State:
        with connect(props["uri"]) as conn:
            info, sha256 = volume.import_base(
                conn, props["pool"], props["name"], props["source"], owner_of(props),
                sha256=props.get("sha256"), fmt=props.get("format"),
            )
        return State(info.key, _outputs(props, info, sha256))

    def read(self, id_: str, props: dict[str, Any]) -> State | None:
        found = volumes.read(id_, props, reclaim=False)
        if found is None:
            return None
        props, info = found
        props.setdefault("source", info.path)  # imported: the volume is its own source
        return State(info.key, _outputs(props, info, props.get("sha256")))

    def delete(self, id_: str, props: dict[str, Any]) -> str | None:
        volumes.delete(props)
        return None


def _probe_local_source(olds: dict[str, Any], checker: Checker) -> None:
    """At preview, for a local source: its virtual size becomes ``capacity`` (so an Overlay of
    this same update can be checked against it), and a pinned ``sha256`` is verified when an
    import is about to happen (not on every later run: the volume was verified when made)."""
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


BASE_IMAGE_RESOURCE = BaseImageResource()
