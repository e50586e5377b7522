"""``CloudInitSeed``: a cloud-init NoCloud seed (``cidata``) volume for trust domains."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.dynamic

from tdx_provider.dynamic.cloud_init_seed import CloudInitSeedProvider

from ._util import DEFAULT_URI, MODULE, owner
from .pool import Pool


@dataclass
class SeedUser:
    """A user cloud-init creates on first boot (cloud-config ``users``), password locked."""

    name: str
    """Login name (lowercase letters, digits, ``_``, ``-``)."""
    ssh_authorized_keys: Sequence[str] = field(default_factory=list)
    """OpenSSH public key lines (``ssh-ed25519 AAAA… comment``); each must parse."""
    sudo: bool = False
    """Passwordless sudo (``ALL=(ALL) NOPASSWD:ALL``)."""
    groups: Sequence[str] = field(default_factory=list)
    """Supplementary groups."""
    shell: str | None = None
    """Login shell (absolute path); None: the image's default."""

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass
class CloudInitSeedArgs:
    pool: pulumi.Input[str]
    """Name of the pool (or pass the ``Pool`` resource)."""
    hostname: pulumi.Input[str] | None = None
    """The guest's host name (meta-data ``local-hostname``); an RFC 1123 name."""
    users: pulumi.Input[Sequence[Any]] = field(default_factory=list)
    """Users to create, each a ``SeedUser`` or a dict of its fields."""
    ssh_authorized_keys: pulumi.Input[Sequence[str]] = field(default_factory=list)
    """Public keys for the image's default user (``ubuntu`` on Ubuntu cloud images)."""
    user_data: pulumi.Input[str] | None = None
    """Raw user-data (``#cloud-config`` YAML, a script, MIME…) used as the whole user-data: the
    escape hatch for anything the typed inputs do not say. A secret in state and preview. Cannot
    be combined with ``users`` / ``ssh_authorized_keys`` (declare those inside it)."""
    network_config: pulumi.Input[Mapping[str, Any] | str] | None = None
    """cloud-init network configuration (version 2, netplan-like, or version 1), as a dict or YAML
    text; None: the image's default (DHCP on the first NIC)."""
    name: pulumi.Input[str] | None = None
    """Volume name; default: resource name plus a random suffix."""
    uri: pulumi.Input[str] = DEFAULT_URI
    """libvirt connection URI (remote URIs such as ``qemu+ssh://host/system`` work). With the native
    provider, the provider's ``uri`` when omitted."""


class CloudInitSeed(pulumi.dynamic.Resource, module=MODULE, name="CloudInitSeed"):
    """A NoCloud seed for cloud-init: an ISO 9660 volume labelled ``cidata`` holding
    ``user-data``, ``meta-data`` and (when declared) ``network-config``, built in process and
    streamed into ``pool`` through the libvirt storage API (mode 0600, recorded in the pool's
    ledger as kind ``seed``). Give it to ``TrustDomain(seed=…)``, which attaches it read-only on
    virtio.

    ``instance_id`` is a digest of what the seed says, so any change of its content is a new
    instance to cloud-init. Every input replaces the seed, and the new seed replaces the
    TrustDomain that uses it (its next first boot applies the new seed; the overlay is kept).
    The seed is readable by the host: it is no place for secrets a trust domain must keep from
    its host (see docs/cloud-init.md). Delete is refused while a defined domain uses it.
    """

    name: pulumi.Output[str]
    pool: pulumi.Output[str]
    path: pulumi.Output[str]
    """Path of the seed volume on the libvirt host."""
    key: pulumi.Output[str]
    capacity: pulumi.Output[int]
    """Size of the image in bytes."""
    sha256: pulumi.Output[str]
    """SHA-256 of the image as uploaded."""
    instance_id: pulumi.Output[str]
    """meta-data ``instance-id``: ``iid-ptdx-`` and 20 hex digits of a digest of the seed's
    content; known at preview. A secret when ``user_data`` is given (it is derived from it)."""
    user_data: pulumi.Output[str | None]

    def __init__(
        self,
        resource_name: str,
        *,
        pool: pulumi.Input[str] | Pool,
        hostname: pulumi.Input[str] | None = None,
        users: Sequence[SeedUser | Mapping[str, Any]] | None = None,
        ssh_authorized_keys: pulumi.Input[Sequence[str]] | None = None,
        user_data: pulumi.Input[str] | None = None,
        network_config: pulumi.Input[Mapping[str, Any] | str] | None = None,
        name: pulumi.Input[str] | None = None,
        uri: pulumi.Input[str] = DEFAULT_URI,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        args = CloudInitSeedArgs(
            pool=pool.name if isinstance(pool, Pool) else pool, hostname=hostname,
            users=[u.to_dict() if isinstance(u, SeedUser) else dict(u) for u in users or []],
            ssh_authorized_keys=ssh_authorized_keys if ssh_authorized_keys is not None else [],
            user_data=pulumi.Output.secret(user_data) if user_data is not None else None,
            network_config=network_config, name=name, uri=uri,
        )
        props = {**vars(args), "owner": owner(resource_name), "path": None, "key": None,
                 "capacity": None, "sha256": None, "instance_id": None}
        secret_outputs = ["user_data"]
        if user_data is not None:
            secret_outputs.append("instance_id")
        secrets = pulumi.ResourceOptions(additional_secret_outputs=secret_outputs)
        super().__init__(CloudInitSeedProvider(), resource_name, props,
                         pulumi.ResourceOptions.merge(opts, secrets))
