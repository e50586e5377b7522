"""``Overlay``: a qcow2 volume whose backing store is a base image."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi.dynamic

from tdx_provider.dynamic.overlay import OverlayProvider

from ._util import DEFAULT_URI, MODULE, owner, with_legacy_alias
from .base_image import BaseImage
from .pool import Pool


@dataclass
class OverlayArgs:
    pool: pulumi.Input[str]
    """Name of the pool (or pass the ``Pool`` resource)."""
    base_image: pulumi.Input[str]
    """The base volume: its path, its volume name in ``pool``, or the ``BaseImage`` resource. All
    three forms of one base are the same value (a name is resolved through libvirt at preview),
    so changing between them is no change."""
    name: pulumi.Input[str] | None = None
    """Volume name; default: resource name plus a random suffix."""
    capacity: pulumi.Input[int] | None = None
    """Virtual size in bytes; default: the base image's. Growing is in place; shrinking is refused
    at preview."""
    uri: pulumi.Input[str] = DEFAULT_URI
    """libvirt connection URI (remote URIs such as ``qemu+ssh://host/system`` work). With the native
    provider, the provider's ``uri`` when omitted."""


class Overlay(pulumi.dynamic.Resource, module=MODULE, name="Overlay"):
    """A qcow2 overlay (mode 0600) backed by a base volume, never a copy of it. Changing
    ``base_image``, ``name`` or ``pool`` replaces it. Delete is refused while a domain, running
    or defined, uses it (a disk hot-plugged into a running domain alone counts too)."""

    name: pulumi.Output[str]
    pool: pulumi.Output[str]
    path: pulumi.Output[str]
    """Path of the overlay: give it to ``TrustDomain(overlay=…)``."""
    key: pulumi.Output[str]
    capacity: pulumi.Output[int]
    backing_path: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        pool: pulumi.Input[str] | Pool,
        base_image: pulumi.Input[str] | BaseImage,
        name: pulumi.Input[str] | None = None,
        capacity: pulumi.Input[int] | None = None,
        uri: pulumi.Input[str] = DEFAULT_URI,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        args = OverlayArgs(
            pool=pool.name if isinstance(pool, Pool) else pool,
            base_image=base_image.path if isinstance(base_image, BaseImage) else base_image,
            name=name, capacity=capacity, uri=uri,
        )
        props = {**vars(args), "owner": owner(resource_name), "path": None, "key": None,
                 "backing_path": None,
                 # known at preview for a local source, so a too-small capacity fails there
                 "base_capacity": base_image.capacity if isinstance(base_image, BaseImage)
                 else None}
        super().__init__(OverlayProvider(), resource_name, props, with_legacy_alias(opts))
