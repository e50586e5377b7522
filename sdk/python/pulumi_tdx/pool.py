"""``Pool``: a libvirt ``dir`` storage pool."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi.dynamic

from tdx_provider.dynamic.pool import PoolProvider

from ._util import DEFAULT_URI, MODULE, owner, with_legacy_alias


@dataclass
class PoolArgs:
    name: pulumi.Input[str]
    """libvirt pool name, used as-is (also the resource's id)."""
    path: pulumi.Input[str]
    """Absolute directory of the pool on the libvirt host; created when missing."""
    autostart: pulumi.Input[bool] = True
    """Start the pool when libvirtd starts."""
    shared: pulumi.Input[bool] = False
    """Other stacks adopt this pool: it outlives this stack. Delete then leaves it defined and
    running (like an adopted pool) instead of refusing while other stacks' volumes remain."""
    uri: pulumi.Input[str] = DEFAULT_URI
    """libvirt connection URI (remote URIs such as ``qemu+ssh://host/system`` work). With the native
    provider, the provider's ``uri`` when omitted."""


class Pool(pulumi.dynamic.Resource, module=MODULE, name="Pool"):
    """A libvirt ``dir`` storage pool.

    Create defines, builds, starts, sets autostart and refreshes. A pool of the same name and
    path is adopted (and left defined on delete); another pool on the same path is an error.
    Delete stops and undefines; it is refused while the pool holds volumes, unless the pool is
    ``shared`` (then it stays, for the other stacks that adopted it). Several stacks may declare
    one pool at once: when two create it together, one creates and the other adopts.
    """

    name: pulumi.Output[str]
    path: pulumi.Output[str]
    uri: pulumi.Output[str]
    uuid: pulumi.Output[str]
    """libvirt UUID of the pool."""
    state: pulumi.Output[str]
    """``running``, ``inactive``, ``building``, ``degraded`` or ``inaccessible``."""
    capacity: pulumi.Output[int]
    """Bytes of the filesystem holding the pool."""
    allocation: pulumi.Output[int]
    available: pulumi.Output[int]
    adopted: pulumi.Output[bool]
    """True when the pool existed before this stack (it is then left defined on delete)."""

    def __init__(
        self,
        resource_name: str,
        *,
        name: pulumi.Input[str],
        path: pulumi.Input[str],
        autostart: pulumi.Input[bool] = True,
        shared: pulumi.Input[bool] = False,
        uri: pulumi.Input[str] = DEFAULT_URI,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        args = PoolArgs(name=name, path=path, autostart=autostart, shared=shared, uri=uri)
        props = {
            **vars(args),
            "owner": owner(resource_name),
            "uuid": None, "state": None, "capacity": None, "allocation": None,
            "available": None, "adopted": None,
        }
        super().__init__(PoolProvider(), resource_name, props, with_legacy_alias(opts))
