"""``Overlay``: a qcow2 volume backed by a base image; grows in place, never shrinks."""

from __future__ import annotations

from typing import Any

from tdx_provider import validation

from .common import AUTO_NAME, AUTO_NAMED, OWNER, POOL_NAME, URI
from .fields import INTEGER, STRING, Change, Field, ResourceSpec, output


def base_image_ref(field: str, value: Any) -> str:
    """An absolute path of the base volume, or its volume name in ``pool``."""
    if isinstance(value, str) and value.startswith("/"):
        return validation.absolute_path(field, value, must_exist=False)
    return validation.name(field, value)


OVERLAY = ResourceSpec(
    "Overlay",
    "A qcow2 overlay (mode 0600) backed by a base volume, never a copy of it. Changing "
    "``base_image``, ``name`` or ``pool`` replaces it. Delete is refused while a domain, "
    "running or defined, uses it (a disk hot-plugged into a running domain alone counts too).",
    (
        POOL_NAME,
        Field("base_image", STRING, "The base volume: its path, its volume name in ``pool``, or "
              "the ``BaseImage`` resource. All three forms of one base are the same value (a "
              "name is resolved through libvirt at preview), so changing between them is no "
              "change.", required=True, validate=base_image_ref),
        AUTO_NAME,
        Field("capacity", INTEGER, "Virtual size in bytes; default: the base image's. Growing "
              "is in place; shrinking is refused at preview.", change=Change.UPDATE,
              keep_when_none=True, validate=lambda f, v: validation.integer(f, v, minimum=1)),
        URI,
        OWNER,
        AUTO_NAMED,
        # known at preview for a local source (the BaseImage's), so a too-small capacity fails
        Field("base_capacity", INTEGER, "Virtual size of the base image, when known at "
              "preview.", change=Change.NONE, internal=True, output=False),
        output("path", STRING, "Path of the overlay: give it to ``TrustDomain(overlay=…)``.",
               always=True),
        output("key", STRING, "libvirt's key of the volume.", always=True),
        output("backing_path", STRING, "Path of the volume backing it.", always=True),
    ),
    id_description="The volume's libvirt key.",
)
