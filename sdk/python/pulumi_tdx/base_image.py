"""``BaseImage``: a read-only base volume imported into a pool."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi.dynamic

from tdx_provider.dynamic.base_image import BaseImageProvider

from ._util import DEFAULT_URI, MODULE, owner, with_legacy_alias
from .pool import Pool


@dataclass
class BaseImageArgs:
    pool: pulumi.Input[str]
    """Name of the pool (or pass the ``Pool`` resource)."""
    source: pulumi.Input[str]
    """Local absolute path, ``file://`` or ``http(s)://`` URL of a qcow2 or raw image."""
    name: pulumi.Input[str] | None = None
    """Volume name; default: resource name plus a random suffix."""
    sha256: pulumi.Input[str] | None = None
    """Expected SHA-256 of the source; verified while streaming (a mismatch keeps nothing). Output:
    the SHA-256 of the imported content."""
    format: pulumi.Input[str] | None = None
    """``qcow2`` or ``raw``; detected from the content when omitted."""
    uri: pulumi.Input[str] = DEFAULT_URI
    """libvirt connection URI (remote URIs such as ``qemu+ssh://host/system`` work). With the native
    provider, the provider's ``uri`` when omitted."""


class BaseImage(pulumi.dynamic.Resource, module=MODULE, name="BaseImage"):
    """A read-only (0644) base volume, imported through the libvirt storage API (upload stream),
    so it also works on a remote URI. Changing ``source``, ``sha256``, ``name``, ``format`` or
    ``pool`` replaces it. Delete is refused while volumes are backed by it or a domain's disk
    reads it through its backing chain."""

    name: pulumi.Output[str]
    pool: pulumi.Output[str]
    path: pulumi.Output[str]
    """Path of the volume on the libvirt host: give it to ``Overlay(base_image=…)``."""
    key: pulumi.Output[str]
    format: pulumi.Output[str]
    capacity: pulumi.Output[int]
    """Virtual size in bytes."""
    allocation: pulumi.Output[int]
    sha256: pulumi.Output[str]
    """SHA-256 of the imported content (computed while streaming)."""

    def __init__(
        self,
        resource_name: str,
        *,
        pool: pulumi.Input[str] | Pool,
        source: pulumi.Input[str],
        name: pulumi.Input[str] | None = None,
        sha256: pulumi.Input[str] | None = None,
        format: pulumi.Input[str] | None = None,
        uri: pulumi.Input[str] = DEFAULT_URI,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        pool_name = pool.name if isinstance(pool, Pool) else pool
        args = BaseImageArgs(pool=pool_name, source=source, name=name, sha256=sha256,
                             format=format, uri=uri)
        props = {
            **vars(args),
            "owner": owner(resource_name),
            "path": None, "key": None, "capacity": None, "allocation": None,
        }
        super().__init__(BaseImageProvider(), resource_name, props, with_legacy_alias(opts))
