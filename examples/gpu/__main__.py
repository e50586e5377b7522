"""GPU: one trust domain with PCI GPUs passed through as managed hostdevs.

Config: ``gpus`` (required, comma-separated BDFs such as ``0000:3b:00.0,0000:86:00.0``),
``uri`` (default ``qemu:///system``), ``baseImage`` (required), ``firmware`` (required for
TDX), ``tdx`` (default true), ``gpuSetupCommand`` (optional, space-separated argv run once
before the first start with the BDFs appended, e.g. a CC-mode switch tool), ``dmaEntryLimit``
(default 0x200000), ``memoryMib`` (default 65536), ``vcpus`` (default 16), ``network``,
``sshUser`` (default ``root``).

Outputs: ``ssh`` (a command ready to paste), ``cid``, ``name``, ``gpus``, ``ssh_port``.

Every BDF is checked at preview against the host's PCI node devices (libvirt nodedev API).
"""

import pulumi

from pulumi_tdx import BaseImage, Overlay, Pool, TrustDomain

config = pulumi.Config()
uri = config.get("uri") or "qemu:///system"
gpus = [bdf.strip() for bdf in config.require("gpus").split(",") if bdf.strip()]
setup = config.get("gpuSetupCommand")
network = config.get("network") or "default"
tdx = config.get_bool("tdx")

pool = Pool("pool", name=config.get("poolName") or "tdx-gpu",
            path=config.get("poolPath") or "/var/lib/pulumi-tdx/gpu", uri=uri)
base = BaseImage("base", pool=pool, source=config.require("baseImage"), uri=uri)
disk = Overlay("disk", pool=pool, base_image=base, uri=uri)
td = TrustDomain(
    "gpu-td",
    overlay=disk,
    memory_mib=config.get_int("memoryMib") or 65536,
    vcpus=config.get_int("vcpus") or 16,
    tdx=True if tdx is None else tdx,
    firmware=config.get("firmware"),
    gpus=gpus,
    gpu_setup_command=setup.split() if setup else None,
    dma_entry_limit=int(config.get("dmaEntryLimit") or "0x200000", 0),
    network=None if network == "none" else network,
    uri=uri,
)

pulumi.export("name", td.name)
pulumi.export("gpus", gpus)
pulumi.export("ssh_port", td.ssh_port)
pulumi.export("cid", td.cid)
ssh_user = config.get("sshUser") or "root"
pulumi.export(
    "ssh", td.ssh_port.apply(lambda port: f"ssh -p {port} {ssh_user}@127.0.0.1" if port else None)
)
