"""Where guest disks come from: verified base images in the site's pools."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel

from .resources import Resource
from .rule import rule, string_list


def base_image_checksum(image: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    if not image.get("sha256"):
        yield (f"{image.label()}: {image.shown('sha256')} is not set, so the image from "
               f"{image.get('source')!r} is imported unverified. Pin its SHA-256 (sha256sum "
               "of the file).")


def in_allowed_pools(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    allowed = config.get("allowed_pools") or []
    if not allowed:
        return
    prop = "name" if resource.kind == "Pool" else "pool"
    pool = resource.get(prop)
    if pool not in allowed:
        yield (f"{resource.label()}: {resource.shown(prop)} {pool!r} is not one of the rule's "
               f"allowed_pools ({', '.join(allowed)}).")


BASE_IMAGE_CHECKSUM = rule(
    name="base-image-checksum",
    description=("A base image is imported with a pinned SHA-256 (sha256): the image is the "
                 "guest's root of trust on disk, and the TD's measurement does not cover it."),
    level=EnforcementLevel.MANDATORY, kinds=("BaseImage",), check=base_image_checksum,
)

ALLOWED_POOLS = rule(
    name="storage-in-allowed-pools",
    description=("Pools, base images, overlays and cloud-init seeds live in the storage pools "
                 "the site set up for guest disks (allowed_pools; empty: any)."),
    level=EnforcementLevel.MANDATORY, kinds=("Pool", "BaseImage", "Overlay", "CloudInitSeed"),
    check=in_allowed_pools,
    config={"allowed_pools": string_list("libvirt pool names guest disks may live in.")},
)
