"""``TrustDomain``: an Intel TDX trust domain (or, with ``tdx=False``, a regular VM)."""

from __future__ import annotations

from tdx_provider import defaults, validation
from tdx_provider.guest import inputs as td

from .common import AUTO_NAMED, OWNER, URI
from .fields import (
    BOOLEAN,
    INTEGER,
    STRING,
    Change,
    Field,
    ResourceSpec,
    array,
    obj,
    output,
)

QGS = obj(
    "QuoteGenerationService",
    "Where the TD's quote generation service listens: a unix socket ``path`` (upstream "
    "libvirt >= 11.6) or ``vsock_cid``/``vsock_port`` (Canonical's libvirt, usually 2/4050).",
    Field("path", STRING, "Unix socket of the QGS."),
    Field("vsock_cid", INTEGER, "vsock CID of the QGS (2: the host)."),
    Field("vsock_port", INTEGER, "vsock port of the QGS (usually 4050)."),
)
SEED_DISK = obj(
    "SeedDisk", "A cloud-init seed volume attached read-only as the second virtio disk.",
    Field("path", STRING, "Path of the seed volume (``CloudInitSeed.path``).", required=True),
    Field("instance_id", STRING, "The seed's instance-id (``CloudInitSeed.instance_id``): a new "
          "seed is then visible in the diff."),
)


def _launch(name: str, type_: object, description: str, **kw: object) -> Field:
    """A launch-time measurement input: a TD cannot change it after it starts."""
    return Field(name, type_, description, added_later=True, **kw)  # type: ignore[arg-type]


TRUST_DOMAIN = ResourceSpec(
    "TrustDomain",
    "An Intel TDX trust domain on libvirt.\n\nChanges to ``autostart`` and "
    "``shutdown_timeout`` are applied in place; every other input replaces the domain, the "
    "attestation inputs ``debug``, ``sept_ve_disable``, ``tdx_policy`` and ``mr_*`` included "
    "(they are launch-time measurements), and ``seed``. Replacement deletes first when the name "
    "is fixed, GPUs are attached or the disk is kept. Delete is graceful: ACPI shutdown, a "
    "bounded wait, then force off and undefine.",
    (
        Field("overlay", STRING, "Path of the disk, normally ``Overlay.path``; its backing chain "
              "goes into the XML.", required=True,
              validate=lambda f, v: validation.absolute_path(f, v, must_exist=False)),
        Field("memory_mib", INTEGER, "Memory in MiB (at least 64; at most the host's).",
              required=True, validate=lambda f, v: validation.integer(f, v, minimum=64)),
        Field("vcpus", INTEGER, "Virtual CPUs (at most the host's).", required=True,
              validate=lambda f, v: validation.integer(f, v, minimum=1, maximum=4096)),
        Field("name", STRING, "Domain name; default: resource name plus a random suffix.",
              validate=validation.name),
        Field("tdx", BOOLEAN, "Render a trust domain (launchSecurity tdx); False renders a "
              "regular VM. A TD on a host without TDX fails at preview with the reasons; it is "
              "never silently downgraded.", default=True, validate=validation.boolean),
        Field("firmware", STRING, "Loader path (TDVF/OVMF). Omitted for a TD: the host's TDX "
              "firmware from libvirt's domain capabilities (an ``inteltdx`` image first); the "
              "path used is the ``firmware`` output."),
        Field("kernel", STRING, "Direct kernel boot: the kernel's path on the libvirt host."),
        Field("initrd", STRING, "The initrd's path (needs ``kernel``)."),
        Field("cmdline", STRING, "Kernel command line (needs ``kernel``).", validate=td.text),
        Field("gpus", array(STRING), "PCI addresses (``DDDD:BB:SS.F``) of GPUs to pass through "
              "as managed hostdevs.", default=[], validate=td.bdfs),
        Field("gpu_setup_command", array(STRING), "argv run once before the first start, with "
              "the BDFs appended (never a shell).", validate=validation.argv),
        Field("dma_entry_limit", INTEGER, "Raise vfio_iommu_type1's dma_entry_limit to at least "
              "this before starting with GPUs.", default=defaults.DMA_ENTRY_LIMIT,
              validate=lambda f, v: validation.integer(f, v, minimum=0)),
        Field("ssh_host_port", INTEGER, "Host port forwarded to guest port 22 (QEMU user "
              "networking); 0 picks a free one.", default=0, validate=validation.port),
        Field("ssh_bind_address", STRING, "Host address the SSH forward listens on; "
              "``0.0.0.0`` to reach it from other hosts.", default=defaults.SSH_BIND_ADDRESS,
              validate=td.bind_address),
        Field("network", STRING, "libvirt network for a second NIC. The Python SDKs default "
              "to the ``default`` network; None, or omitted in YAML, Go and TypeScript, means "
              "none.",
              default=defaults.NETWORK, sdk_default=True, validate=td.network),
        Field("vsock", BOOLEAN, "Attach a vsock device.", default=True,
              validate=validation.boolean),
        Field("cid", INTEGER, "vsock guest CID; None lets libvirt pick one. Output: the CID "
              "from the live XML (None without vsock).", keep_when_none=True, validate=td.cid),
        Field("qgs", QGS, "The quote generation service the TD asks for quotes.",
              validate=td.qgs),
        Field("domain_type", STRING, "``kvm``, or ``qemu`` (TCG) for hosts without usable KVM "
              "(regular VMs only).", default="kvm", validate=td.domain_type),
        Field("template", STRING, "Path of a Jinja2 domain template that replaces ours (same "
              "variables, tdvirsh ``-t``).", validate=td.existing_file),
        Field("console_log", STRING, "File the serial console is written to."),
        Field("shutdown_timeout", INTEGER, "Seconds delete waits for an ACPI shutdown before "
              "forcing the domain off.", default=defaults.SHUTDOWN_TIMEOUT, change=Change.UPDATE,
              validate=lambda f, v: validation.integer(f, v, minimum=0,
                                                       maximum=td.MAX_SHUTDOWN_TIMEOUT)),
        Field("autostart", BOOLEAN, "Start the domain when libvirtd starts.", default=False,
              change=Change.UPDATE, validate=validation.boolean),
        URI,
        _launch("debug", BOOLEAN, "TD attribute DEBUG (policy bit 0): the host can read the "
                "TD's state. Allowed, shown in every preview; an attestation verifier sees it "
                "in the quote.", default=False, validate=validation.boolean),
        _launch("sept_ve_disable", BOOLEAN, "TD attribute SEPT_VE_DISABLE (policy bit 28): no "
                "#VE on EPT violations (the default).", default=True,
                validate=validation.boolean),
        _launch("tdx_policy", STRING, "Further TD attribute bits we do not name (e.g. "
                "``0x40000000``, PKS); a hex string for bits above 2**53. Bits 0 and 28 belong "
                "to ``debug`` and ``sept_ve_disable``.", default=None, validate=td.raw_policy),
        _launch("mr_config_id", STRING, "MRCONFIGID: 48 bytes as 96 hex digits or base64 "
                "(rendered as base64).", default=None, validate=td.measurement),
        _launch("mr_owner", STRING, "MROWNER: 48 bytes as 96 hex digits or base64.",
                default=None, validate=td.measurement),
        _launch("mr_owner_config", STRING, "MROWNERCONFIG: 48 bytes as 96 hex digits or "
                "base64.", default=None, validate=td.measurement),
        Field("page_add_order", STRING, "How the host's QEMU/KVM adds the firmware's pages, "
              "which ``mrtd`` depends on: ``single-pass`` or ``two-pass``; None derives it from "
              "the host's QEMU version.", change=Change.UPDATE, validate=td.page_add_order),
        Field("seed", SEED_DISK, "The cloud-init seed: a ``CloudInitSeed`` (or its volume's "
              "path), attached read-only as the second virtio disk (``vdb``). A different seed "
              "replaces the domain: its next first boot applies it. None: no seed disk.",
              validate=td.seed_disk),
        OWNER,
        AUTO_NAMED,
        # computed by check (the expected measurement): a change is shown, nothing is rebuilt
        Field("mrtd", STRING, "The MRTD a quote of this trust domain will carry (SHA-384, "
              "lowercase hex), computed at preview from the local firmware file; None for "
              "regular VMs and remote hosts. See docs/attestation.md.", change=Change.UPDATE,
              internal=True),
        output("uuid", STRING, "libvirt UUID of the domain.", always=True),
        output("state", STRING, "libvirt state: ``running``, ``shutoff``, ``paused``… "
               "(refreshed by ``pulumi refresh``).", always=True),
        output("ssh_port", INTEGER, "Host port forwarded to the guest's port 22, read from the "
               "live QEMU forward."),
        output("ip", STRING, "Guest IPv4 on the libvirt network (DHCP lease or ARP), None "
               "while unknown."),
    ),
    id_description="The domain's UUID.",
)
