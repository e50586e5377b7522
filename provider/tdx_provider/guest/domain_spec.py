"""From checked TrustDomain inputs to the domain XML: the engine's DomainSpec, the backing
chain as libvirt's storage API sees it, and the validated render."""

from __future__ import annotations

from typing import Any

import libvirt

from tdx_provider.checking import is_unknown
from tdx_provider.guest import xml
from tdx_provider.guest.inputs import effective_policy
from tdx_provider.metadata import Owner
from tdx_provider.readers.storage import Volume
from tdx_provider.validation import pci_address

# Stand-ins while a disk is made in the same update (its path is not known at preview).
PLACEHOLDER_OVERLAY = "/var/lib/libvirt/images/overlay-not-yet-created.qcow2"
PLACEHOLDER_SEED = "/var/lib/libvirt/images/seed-not-yet-created"


def spec_from(props: dict[str, Any], overlay_path: str,
              chain: tuple[xml.BackingLayer, ...] = ()) -> xml.DomainSpec:
    """The engine's DomainSpec for these (checked) inputs."""
    qgs = props.get("qgs")
    seed = props.get("seed")
    return xml.DomainSpec(
        name=props["name"],
        owner=Owner.from_dict(props.get("owner") or {}),
        memory_mib=props["memory_mib"],
        vcpus=props["vcpus"],
        disk=xml.Disk(overlay_path, chain),
        tdx=props["tdx"],
        domain_type=props["domain_type"],
        firmware=props.get("firmware"),
        kernel=props.get("kernel"),
        initrd=props.get("initrd"),
        cmdline=props.get("cmdline"),
        gpus=tuple(pci_address("gpus", g) for g in props.get("gpus") or []),
        ssh=xml.SshForward(props["ssh_host_port"], props["ssh_bind_address"]),
        network=props.get("network"),
        vsock=props["vsock"],
        cid=props.get("cid"),
        qgs=xml.QuoteGenerationService(**qgs) if qgs else None,
        console_log=props.get("console_log"),
        shutdown_timeout=props["shutdown_timeout"],
        tdx_policy=effective_policy(props),
        mr_config_id=props.get("mr_config_id"),
        mr_owner=props.get("mr_owner"),
        mr_owner_config=props.get("mr_owner_config"),
        seed=xml.SeedDisk(seed["path"], seed.get("instance_id")) if seed else None,
    )


def render_document(inputs: dict[str, Any], chain: tuple[xml.BackingLayer, ...] = ()) -> str:
    """The domain XML these checked inputs render to, validated with the target host's schema
    (disks made in this same update stand in as placeholders)."""
    overlay = inputs.get("overlay")
    path = PLACEHOLDER_OVERLAY if is_unknown(overlay) or not overlay else overlay
    seed = inputs.get("seed")
    if seed is not None and is_unknown(seed):  # made in this same update: its path is unknown
        known = seed if isinstance(seed, dict) else {}
        seed = {"path": known.get("path") if not is_unknown(known.get("path"))
                else PLACEHOLDER_SEED,
                "instance_id": known.get("instance_id")
                if not is_unknown(known.get("instance_id")) else None}
        inputs = {**inputs, "seed": seed}
    return xml.render_and_validate(spec_from(inputs, path, chain), inputs.get("template"),
                                   xml.schema_for_uri(inputs["uri"]))


def backing_chain(conn: libvirt.virConnect, path: str) -> tuple[xml.BackingLayer, ...]:
    """The overlay's backing chain as libvirt's storage API sees it (works remotely)."""
    layers = []
    current = path
    for _ in range(16):
        try:
            vol = conn.storageVolLookupByPath(current)
        except libvirt.libvirtError:
            break
        below = Volume.parse(vol.XMLDesc(0)).backing_store
        if below is None or not below.path:
            break
        layers.append(xml.BackingLayer(below.path, below.format or "raw"))
        current = below.path
    return tuple(layers)
