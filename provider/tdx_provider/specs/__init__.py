"""Typed resource specs: the one source of every input's type, default, change rule, secrecy,
validation and meaning (see :mod:`.fields`)."""

from __future__ import annotations

from .base_image import BASE_IMAGE
from .cloud_init_seed import CLOUD_INIT_SEED
from .fields import Change, Field, ResourceSpec, Type
from .overlay import OVERLAY
from .pool import POOL
from .trust_domain import TRUST_DOMAIN

SPECS: dict[str, ResourceSpec] = {
    spec.name: spec for spec in (POOL, BASE_IMAGE, OVERLAY, CLOUD_INIT_SEED, TRUST_DOMAIN)
}

__all__ = ["BASE_IMAGE", "CLOUD_INIT_SEED", "OVERLAY", "POOL", "SPECS", "TRUST_DOMAIN", "Change",
           "Field", "ResourceSpec", "Type"]
