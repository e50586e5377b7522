"""pulumi-tdx through the native provider plugin (``pulumi-resource-tdx``): the same resources
and snake_case arguments as :mod:`pulumi_tdx`, as ``tdx:index:*`` custom resources.

    from pulumi_tdx import native as tdx

    host = tdx.Provider("host-b", uri="qemu+ssh://root@host-b/system")
    pool = tdx.Pool("pool", name="tdx", path="/var/lib/pulumi-tdx/pool",
                    opts=pulumi.ResourceOptions(provider=host))

What differs from the dynamic flavour: defaults are the provider's (an omitted argument is not
sent), ``uri`` defaults to the provider's (``tdx:uri`` config or an explicit
:class:`Provider`), and ``pulumi import`` works. Inputs, outputs and defaults:
``docs/resources.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

from pulumi_tdx.cloud_init_seed import SeedUser
from pulumi_tdx.trust_domain import QuoteGenerationService
from tdx_provider import defaults

from ._base import NativeResource, check_names

__all__ = ["BaseImage", "CloudInitSeed", "Overlay", "Pool", "Provider", "QuoteGenerationService",
           "SeedUser", "TrustDomain"]


class Provider(pulumi.ProviderResource):
    """An explicit ``tdx`` provider: one libvirt host (``uri``) per instance."""

    uri: pulumi.Output[str]

    def __init__(self, resource_name: str, *, uri: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tdx", resource_name, {"uri": uri}, opts)


class Pool(NativeResource):
    """A libvirt ``dir`` storage pool (``tdx:index:Pool``)."""

    _token = "tdx:index:Pool"
    name: pulumi.Output[str]
    path: pulumi.Output[str]
    uuid: pulumi.Output[str]
    state: pulumi.Output[str]
    capacity: pulumi.Output[int]

    def __init__(self, resource_name: str, *, name: pulumi.Input[str], path: pulumi.Input[str],
                 autostart: pulumi.Input[bool] | None = None,
                 shared: pulumi.Input[bool] | None = None, uri: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(resource_name, {"name": name, "path": path, "autostart": autostart,
                                         "shared": shared, "uri": uri}, opts)


def _pool(pool: Any) -> Any:
    return pool.name if isinstance(pool, Pool) else pool


class BaseImage(NativeResource):
    """A read-only base volume imported into a pool (``tdx:index:BaseImage``)."""

    _token = "tdx:index:BaseImage"
    path: pulumi.Output[str]
    capacity: pulumi.Output[int]
    sha256: pulumi.Output[str]

    def __init__(self, resource_name: str, *, pool: pulumi.Input[str] | Pool,
                 source: pulumi.Input[str], name: pulumi.Input[str] | None = None,
                 sha256: pulumi.Input[str] | None = None,
                 format: pulumi.Input[str] | None = None, uri: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(resource_name, {"pool": _pool(pool), "source": source, "name": name,
                                         "sha256": sha256, "format": format, "uri": uri}, opts)


class Overlay(NativeResource):
    """A qcow2 overlay backed by a base volume (``tdx:index:Overlay``)."""

    _token = "tdx:index:Overlay"
    name: pulumi.Output[str]
    path: pulumi.Output[str]
    capacity: pulumi.Output[int]
    backing_path: pulumi.Output[str]

    def __init__(self, resource_name: str, *, pool: pulumi.Input[str] | Pool,
                 base_image: pulumi.Input[str] | BaseImage,
                 name: pulumi.Input[str] | None = None,
                 capacity: pulumi.Input[int] | None = None,
                 uri: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        base = isinstance(base_image, BaseImage)
        super().__init__(resource_name, {
            "pool": _pool(pool), "base_image": base_image.path if base else base_image,  # type: ignore[union-attr]
            "name": name, "capacity": capacity, "uri": uri,
            # known at preview for a local source, so a too-small capacity fails there
            "base_capacity": base_image.capacity if base else None,  # type: ignore[union-attr]
        }, opts)


class CloudInitSeed(NativeResource):
    """A NoCloud ``cidata`` seed volume (``tdx:index:CloudInitSeed``)."""

    _token = "tdx:index:CloudInitSeed"
    path: pulumi.Output[str]
    instance_id: pulumi.Output[str]

    def __init__(self, resource_name: str, *, pool: pulumi.Input[str] | Pool,
                 hostname: pulumi.Input[str] | None = None,
                 users: Sequence[SeedUser | Mapping[str, Any]] | None = None,
                 ssh_authorized_keys: pulumi.Input[Sequence[str]] | None = None,
                 user_data: pulumi.Input[str] | None = None,
                 network_config: pulumi.Input[Mapping[str, Any] | str] | None = None,
                 name: pulumi.Input[str] | None = None, uri: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(resource_name, {
            "pool": _pool(pool), "hostname": hostname,
            "users": [u.to_dict() if isinstance(u, SeedUser) else dict(u) for u in users]
            if users is not None else None,
            "ssh_authorized_keys": ssh_authorized_keys,
            "user_data": pulumi.Output.secret(user_data) if user_data is not None else None,
            "network_config": network_config, "name": name, "uri": uri,
        }, pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
            additional_secret_outputs=["user_data"] if user_data is None
            else ["user_data", "instance_id"])))


class TrustDomain(NativeResource):
    """An Intel TDX trust domain, or with ``tdx=False`` a regular VM (``tdx:index:TrustDomain``)."""

    _token = "tdx:index:TrustDomain"
    name: pulumi.Output[str]
    uuid: pulumi.Output[str]
    state: pulumi.Output[str]
    ssh_port: pulumi.Output[int]
    ip: pulumi.Output[str | None]
    mrtd: pulumi.Output[str | None]

    def __init__(self, resource_name: str, *, overlay: pulumi.Input[str] | Overlay,
                 memory_mib: pulumi.Input[int], vcpus: pulumi.Input[int],
                 seed: CloudInitSeed | pulumi.Input[str] | None = None,
                 qgs: QuoteGenerationService | pulumi.Input[Mapping[str, Any]] | None = None,
                 opts: pulumi.ResourceOptions | None = None, **inputs: Any) -> None:
        """``inputs``: the other inputs of ``docs/resources.md`` by their snake_case names
        (``name``, ``tdx``, ``firmware``, ``kernel``, ``domain_type``, ``ssh_host_port``, ...)."""
        check_names(self._token, inputs)
        super().__init__(resource_name, {
            "network": defaults.NETWORK,  # the SDKs' default; None (dropped on the wire): none
            **inputs,
            "overlay": overlay.path if isinstance(overlay, Overlay) else overlay,
            "memory_mib": memory_mib, "vcpus": vcpus,
            "seed": {"path": seed.path, "instance_id": seed.instance_id}
            if isinstance(seed, CloudInitSeed) else seed,
            "qgs": qgs.to_dict() if isinstance(qgs, QuoteGenerationService) else qgs,
        }, opts)
