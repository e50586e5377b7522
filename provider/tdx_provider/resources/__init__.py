"""The engine's resource controllers: check, diff, create, read, update, delete per resource,
called by every adapter (Pulumi dynamic providers, the native provider plugin, ``tdxctl``)."""

from __future__ import annotations

from .base import Checked, Diff, Resource, State
from .base_image import BASE_IMAGE_RESOURCE
from .cloud_init_seed import CLOUD_INIT_SEED_RESOURCE
from .overlay import OVERLAY_RESOURCE
from .pool import POOL_RESOURCE
from .trust_domain import TRUST_DOMAIN_RESOURCE

RESOURCES: dict[str, Resource] = {
    r.spec.name: r for r in (POOL_RESOURCE, BASE_IMAGE_RESOURCE, OVERLAY_RESOURCE,
                             CLOUD_INIT_SEED_RESOURCE, TRUST_DOMAIN_RESOURCE)
}

__all__ = ["RESOURCES", "Checked", "Diff", "Resource", "State"]
