"""``TrustDomain``: an Intel TDX trust domain (or a regular VM with ``tdx=False``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.dynamic

from tdx_provider import defaults
from tdx_provider.dynamic.trust_domain import TrustDomainProvider

from ._util import DEFAULT_URI, MODULE, owner, with_legacy_alias
from .cloud_init_seed import CloudInitSeed
from .overlay import Overlay


@dataclass
class QuoteGenerationService:
    """Where the TD's quote generation service listens: a unix socket ``path`` (upstream
    libvirt >= 11.6) or ``vsock_cid``/``vsock_port`` (Canonical's libvirt, usually 2/4050)."""

    path: str | None = None
    """Unix socket of the QGS."""
    vsock_cid: int | None = None
    """vsock CID of the QGS (2: the host)."""
    vsock_port: int | None = None
    """vsock port of the QGS (usually 4050)."""

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass
class TrustDomainArgs:
    overlay: pulumi.Input[str]
    """Path of the disk, normally ``Overlay.path``; its backing chain goes into the XML."""
    memory_mib: pulumi.Input[int]
    """Memory in MiB (at least 64; at most the host's)."""
    vcpus: pulumi.Input[int]
    """Virtual CPUs (at most the host's)."""
    name: pulumi.Input[str] | None = None
    """Domain name; default: resource name plus a random suffix."""
    tdx: pulumi.Input[bool] = True
    """Render a trust domain (launchSecurity tdx); False renders a regular VM. A TD on a host
    without TDX fails at preview with the reasons; it is never silently downgraded."""
    firmware: pulumi.Input[str] | None = None
    """Loader path (TDVF/OVMF). Omitted for a TD: the host's TDX firmware from libvirt's domain
    capabilities (an ``inteltdx`` image first); the path used is the ``firmware`` output."""
    kernel: pulumi.Input[str] | None = None
    """Direct kernel boot: the kernel's path on the libvirt host."""
    initrd: pulumi.Input[str] | None = None
    """The initrd's path (needs ``kernel``)."""
    cmdline: pulumi.Input[str] | None = None
    """Kernel command line (needs ``kernel``)."""
    gpus: pulumi.Input[Sequence[str]] = field(default_factory=list)
    """PCI addresses (``DDDD:BB:SS.F``) of GPUs to pass through as managed hostdevs."""
    gpu_setup_command: pulumi.Input[Sequence[str]] | None = None
    """argv run once before the first start, with the BDFs appended (never a shell)."""
    dma_entry_limit: pulumi.Input[int] = defaults.DMA_ENTRY_LIMIT
    """Raise vfio_iommu_type1's dma_entry_limit to at least this before starting with GPUs."""
    ssh_host_port: pulumi.Input[int] = 0
    """Host port forwarded to guest port 22 (QEMU user networking); 0 picks a free one."""
    ssh_bind_address: pulumi.Input[str] = defaults.SSH_BIND_ADDRESS
    """Host address the SSH forward listens on; ``0.0.0.0`` to reach it from other hosts."""
    network: pulumi.Input[str] | None = defaults.NETWORK
    """libvirt network for a second NIC. The Python SDKs default to the ``default`` network; None,
    or omitted in YAML, Go and TypeScript, means none."""
    vsock: pulumi.Input[bool] = True
    """Attach a vsock device."""
    cid: pulumi.Input[int] | None = None
    """vsock guest CID; None lets libvirt pick one. Output: the CID from the live XML (None without
    vsock)."""
    qgs: QuoteGenerationService | None = None
    """The quote generation service the TD asks for quotes."""
    domain_type: pulumi.Input[str] = "kvm"
    """``kvm``, or ``qemu`` (TCG) for hosts without usable KVM (regular VMs only)."""
    template: pulumi.Input[str] | None = None
    """Path of a Jinja2 domain template that replaces ours (same variables, tdvirsh ``-t``)."""
    console_log: pulumi.Input[str] | None = None
    """File the serial console is written to."""
    shutdown_timeout: pulumi.Input[int] = defaults.SHUTDOWN_TIMEOUT
    """Seconds delete waits for an ACPI shutdown before forcing the domain off."""
    autostart: pulumi.Input[bool] = False
    """Start the domain when libvirtd starts."""
    uri: pulumi.Input[str] = DEFAULT_URI
    """libvirt connection URI (remote URIs such as ``qemu+ssh://host/system`` work). With the native
    provider, the provider's ``uri`` when omitted."""
    debug: pulumi.Input[bool] = False
    """TD attribute DEBUG (policy bit 0): the host can read the TD's state. Allowed, shown in every
    preview; an attestation verifier sees it in the quote."""
    sept_ve_disable: pulumi.Input[bool] = True
    """TD attribute SEPT_VE_DISABLE (policy bit 28): no #VE on EPT violations (the default)."""
    tdx_policy: pulumi.Input[int | str] | None = None
    """Further TD attribute bits we do not name (e.g. ``0x40000000``, PKS); a hex string for bits
    above 2**53. Bits 0 and 28 belong to ``debug`` and ``sept_ve_disable``."""
    mr_config_id: pulumi.Input[str] | None = None
    """MRCONFIGID: 48 bytes as 96 hex digits or base64 (rendered as base64)."""
    mr_owner: pulumi.Input[str] | None = None
    """MROWNER: 48 bytes as 96 hex digits or base64."""
    mr_owner_config: pulumi.Input[str] | None = None
    """MROWNERCONFIG: 48 bytes as 96 hex digits or base64."""
    page_add_order: pulumi.Input[str] | None = None
    """How the host's QEMU/KVM adds the firmware's pages, which ``mrtd`` depends on: ``single-pass``
    or ``two-pass``; None derives it from the host's QEMU version."""
    seed: pulumi.Input[Any] | None = None
    """The cloud-init seed: a ``CloudInitSeed`` (or its volume's path), attached read-only as the
    second virtio disk (``vdb``). A different seed replaces the domain: its next first boot
    applies it. None: no seed disk."""


class TrustDomain(pulumi.dynamic.Resource, module=MODULE, name="TrustDomain"):
    """An Intel TDX trust domain on libvirt.

    Changes to ``autostart`` and ``shutdown_timeout`` are applied in place; every other input
    replaces the domain, the attestation inputs ``debug``, ``sept_ve_disable``, ``tdx_policy``
    and ``mr_*`` included (they are launch-time measurements), and ``seed``. Replacement
    deletes first when the name is fixed, GPUs are attached or the disk is kept. Delete is
    graceful: ACPI shutdown, a bounded wait, then force off and undefine.
    """

    name: pulumi.Output[str]
    uuid: pulumi.Output[str]
    state: pulumi.Output[str]
    """libvirt state: ``running``, ``shutoff``, ``paused``… (refreshed by ``pulumi refresh``)."""
    ssh_port: pulumi.Output[int | None]
    """Host port forwarded to the guest's port 22, read from the live QEMU forward."""
    cid: pulumi.Output[int | None]
    """vsock CID from the live XML (None without vsock)."""
    ip: pulumi.Output[str | None]
    """Guest IPv4 on the libvirt network (DHCP lease or ARP), None while unknown."""
    memory_mib: pulumi.Output[int]
    vcpus: pulumi.Output[int]
    mrtd: pulumi.Output[str | None]
    """The MRTD a quote of this trust domain will carry (SHA-384, lowercase hex), computed at
    preview from the local firmware file; None for regular VMs and remote hosts. See
    docs/attestation.md."""
    firmware: pulumi.Output[str | None]
    """The loader used: the ``firmware`` input, or the TDX firmware picked from the host's
    domain capabilities when it was omitted."""

    def __init__(
        self,
        resource_name: str,
        *,
        overlay: pulumi.Input[str] | Overlay,
        memory_mib: pulumi.Input[int],
        vcpus: pulumi.Input[int],
        name: pulumi.Input[str] | None = None,
        tdx: pulumi.Input[bool] = True,
        firmware: pulumi.Input[str] | None = None,
        kernel: pulumi.Input[str] | None = None,
        initrd: pulumi.Input[str] | None = None,
        cmdline: pulumi.Input[str] | None = None,
        gpus: pulumi.Input[Sequence[str]] | None = None,
        gpu_setup_command: pulumi.Input[Sequence[str]] | None = None,
        dma_entry_limit: pulumi.Input[int] = defaults.DMA_ENTRY_LIMIT,
        ssh_host_port: pulumi.Input[int] = 0,
        ssh_bind_address: pulumi.Input[str] = defaults.SSH_BIND_ADDRESS,
        network: pulumi.Input[str] | None = defaults.NETWORK,
        vsock: pulumi.Input[bool] = True,
        cid: pulumi.Input[int] | None = None,
        qgs: QuoteGenerationService | dict[str, object] | None = None,
        domain_type: pulumi.Input[str] = "kvm",
        template: pulumi.Input[str] | None = None,
        console_log: pulumi.Input[str] | None = None,
        shutdown_timeout: pulumi.Input[int] = defaults.SHUTDOWN_TIMEOUT,
        autostart: pulumi.Input[bool] = False,
        uri: pulumi.Input[str] = DEFAULT_URI,
        debug: pulumi.Input[bool] = False,
        sept_ve_disable: pulumi.Input[bool] = True,
        tdx_policy: pulumi.Input[int | str] | None = None,
        mr_config_id: pulumi.Input[str] | None = None,
        mr_owner: pulumi.Input[str] | None = None,
        mr_owner_config: pulumi.Input[str] | None = None,
        page_add_order: pulumi.Input[str] | None = None,
        seed: CloudInitSeed | pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        args = TrustDomainArgs(
            overlay=overlay.path if isinstance(overlay, Overlay) else overlay,
            memory_mib=memory_mib, vcpus=vcpus, name=name, tdx=tdx, firmware=firmware,
            kernel=kernel, initrd=initrd, cmdline=cmdline,
            gpus=gpus if gpus is not None else [],
            gpu_setup_command=gpu_setup_command, dma_entry_limit=dma_entry_limit,
            ssh_host_port=ssh_host_port, ssh_bind_address=ssh_bind_address, network=network,
            vsock=vsock, cid=cid,
            qgs=qgs.to_dict() if isinstance(qgs, QuoteGenerationService) else qgs,  # type: ignore[arg-type]
            domain_type=domain_type, template=template, console_log=console_log,
            shutdown_timeout=shutdown_timeout, autostart=autostart, uri=uri,
            debug=debug, sept_ve_disable=sept_ve_disable, tdx_policy=tdx_policy,
            mr_config_id=mr_config_id, mr_owner=mr_owner, mr_owner_config=mr_owner_config,
            page_add_order=page_add_order,
            seed={"path": seed.path, "instance_id": seed.instance_id}
            if isinstance(seed, CloudInitSeed) else seed,
        )
        props = {**vars(args), "owner": owner(resource_name), "uuid": None, "state": None,
                 "ssh_port": None, "ip": None, "mrtd": None}
        super().__init__(TrustDomainProvider(), resource_name, props, with_legacy_alias(opts))
