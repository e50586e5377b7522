"""Quickstart: a pool, a base image, an overlay and one trust domain.

Stack config (``pulumi config set <key> <value>``):

- ``baseImage`` (required): path or URL of a qcow2/raw guest image.
- ``tdx`` (default true), ``domainType`` (default ``kvm``), ``firmware`` (required for TDX).
- ``kernel``/``initrd``/``cmdline``: direct boot instead of the image's bootloader.
- ``poolName`` (default ``tdx-quickstart``), ``poolPath`` (default /var/lib/pulumi-tdx/quickstart).
- ``memoryMib`` (default 4096), ``vcpus`` (default 2), ``network`` (default ``default``; ``none``
  for no libvirt network), ``vsock`` (default true), ``consoleLog``, ``shutdownTimeout``.
- ``sshUser`` (default ``root``): the guest user in the exported ``ssh`` command.
- ``sshPublicKey``: an OpenSSH public key line; when set, a cloud-init seed creates ``sshUser``
  with that key on first boot (``hostname``, default ``td-quickstart``, names the guest).

Outputs: ``ssh`` (a command ready to paste), ``cid`` (vsock CID, None without vsock), ``name``,
``state``, ``ssh_port``, ``ip``, ``overlay``.
"""

import pulumi

from pulumi_tdx import BaseImage, CloudInitSeed, Overlay, Pool, SeedUser, TrustDomain

config = pulumi.Config()
network = config.get("network") or "default"

pool = Pool(
    "pool",
    name=config.get("poolName") or "tdx-quickstart",
    path=config.get("poolPath") or "/var/lib/pulumi-tdx/quickstart",
)
base = BaseImage("base", pool=pool, source=config.require("baseImage"),
                 sha256=config.get("baseImageSha256"))
disk = Overlay("disk", pool=pool, base_image=base)
ssh_user = config.get("sshUser") or "root"
ssh_key = config.get("sshPublicKey")
seed = CloudInitSeed(
    "seed", pool=pool, hostname=config.get("hostname") or "td-quickstart",
    users=[SeedUser(ssh_user, ssh_authorized_keys=[ssh_key], sudo=ssh_user != "root")],
) if ssh_key else None
td = TrustDomain(
    "td",
    overlay=disk,
    memory_mib=config.get_int("memoryMib") or 4096,
    vcpus=config.get_int("vcpus") or 2,
    tdx=config.get_bool("tdx") if config.get_bool("tdx") is not None else True,
    domain_type=config.get("domainType") or "kvm",
    firmware=config.get("firmware"),
    kernel=config.get("kernel"),
    initrd=config.get("initrd"),
    cmdline=config.get("cmdline"),
    network=None if network == "none" else network,
    vsock=config.get_bool("vsock") if config.get_bool("vsock") is not None else True,
    console_log=config.get("consoleLog"),
    shutdown_timeout=config.get_int("shutdownTimeout") or 60,
    seed=seed,
)

pulumi.export("name", td.name)
pulumi.export("state", td.state)
pulumi.export("ssh_port", td.ssh_port)
pulumi.export("cid", td.cid)
pulumi.export("ip", td.ip)
pulumi.export(
    "ssh", td.ssh_port.apply(lambda port: f"ssh -p {port} {ssh_user}@127.0.0.1" if port else None)
)
pulumi.export("overlay", disk.path)
