"""Shared SDK plumbing: the owner tag, the default URI and the resource types."""

from __future__ import annotations

import pulumi

from tdx_provider import defaults

DEFAULT_URI = defaults.URI


def owner(resource_name: str) -> dict[str, str]:
    """Project/stack/resource of the declaring program: our mark on every libvirt object."""
    return {"project": pulumi.get_project(), "stack": pulumi.get_stack(), "resource": resource_name}


# Every SDK class is a ``pulumi.dynamic.Resource`` subclass declared with ``module=MODULE``
# and its own name, so previews show ``pulumi-python:dynamic/tdx:TrustDomain`` and so on.
MODULE = "tdx"
# The type all four had before they declared their own: state written by pulumi-tdx 0.1.0.
LEGACY_TYPE = "pulumi-python:dynamic:Resource"


def with_legacy_alias(opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    """``opts`` plus an alias to :data:`LEGACY_TYPE`: a stack made before the resources had
    their own types sees no create, replace or delete on its first ``up`` with this code."""
    alias = pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=LEGACY_TYPE)])
    return pulumi.ResourceOptions.merge(opts, alias)
