"""``BaseImage``: a read-only base volume imported into a pool."""

from __future__ import annotations

from typing import Any

from tdx_provider import validation
from tdx_provider.errors import InputError
from tdx_provider.storage import images

from .common import AUTO_NAME, AUTO_NAMED, OWNER, POOL_NAME, URI
from .fields import INTEGER, STRING, Field, ResourceSpec, output

FORMATS = ("qcow2", "raw")


def image_format(field: str, value: Any) -> str:
    if value not in FORMATS:
        raise InputError(field, f"must be 'qcow2' or 'raw' (got {value!r}), or omitted to "
                         "detect it")
    return str(value)


BASE_IMAGE = ResourceSpec(
    "BaseImage",
    "A read-only (0644) base volume, imported through the libvirt storage API (upload "
    "stream), so it also works on a remote URI. Changing ``source``, ``sha256``, ``name``, "
    "``format`` or ``pool`` replaces it. Delete is refused while volumes are backed by it or a "
    "domain's disk reads it through its backing chain.",
    (
        POOL_NAME,
        Field("source", STRING, "Local absolute path, ``file://`` or ``http(s)://`` URL of a "
              "qcow2 or raw image.", required=True, validate=images.validate_source),
        AUTO_NAME,
        Field("sha256", STRING, "Expected SHA-256 of the source; verified while streaming (a "
              "mismatch keeps nothing). Output: the SHA-256 of the imported content.",
              validate=validation.sha256_hex, keep_when_none=True),
        Field("format", STRING, "``qcow2`` or ``raw``; detected from the content when omitted.",
              validate=image_format, keep_when_none=True),
        URI,
        OWNER,
        AUTO_NAMED,
        output("path", STRING, "Path of the volume on the libvirt host: give it to "
               "``Overlay(base_image=…)``.", always=True),
        output("key", STRING, "libvirt's key of the volume.", always=True),
        output("capacity", INTEGER, "Virtual size in bytes."),
        output("allocation", INTEGER, "Bytes the volume takes on the host."),
    ),
    id_description="The volume's libvirt key.",
)
