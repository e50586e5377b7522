"""Fleet: N trust domains, each on its own overlay of one shared base image.

Config: ``count`` (default 3), ``baseImage`` (required), ``tdx`` (default true), ``domainType``,
``firmware``, ``kernel``/``initrd``/``cmdline``, ``memoryMib`` (default 2048), ``vcpus``
(default 2), ``network`` (``none`` for no libvirt network), ``vsock`` (default true),
``poolName``/``poolPath``, ``sshUser`` (default ``root``), ``sshPublicKey`` (when set, each
domain gets a cloud-init seed: host name ``td-N``, ``sshUser`` with that key).

Outputs: ``ssh`` and ``cid`` per domain (``td-0`` ...), ready to paste, and ``fleet``, one row
per domain (name, state, ssh_port, cid, ip).
"""

import pulumi

from pulumi_tdx import BaseImage, CloudInitSeed, Overlay, Pool, SeedUser, TrustDomain

config = pulumi.Config()
count = config.get_int("count") or 3
network = config.get("network") or "default"
tdx = config.get_bool("tdx")
vsock = config.get_bool("vsock")
ssh_user = config.get("sshUser") or "root"
ssh_key = config.get("sshPublicKey")

pool = Pool("pool", name=config.get("poolName") or "tdx-fleet",
            path=config.get("poolPath") or "/var/lib/pulumi-tdx/fleet")
base = BaseImage("base", pool=pool, source=config.require("baseImage"))

fleet = {}
for index in range(count):
    disk = Overlay(f"disk-{index}", pool=pool, base_image=base)
    seed = CloudInitSeed(
        f"seed-{index}", pool=pool, hostname=f"td-{index}",
        users=[SeedUser(ssh_user, ssh_authorized_keys=[ssh_key], sudo=ssh_user != "root")],
    ) if ssh_key else None
    fleet[f"td-{index}"] = TrustDomain(
        f"td-{index}",
        overlay=disk,
        memory_mib=config.get_int("memoryMib") or 2048,
        vcpus=config.get_int("vcpus") or 2,
        tdx=True if tdx is None else tdx,
        domain_type=config.get("domainType") or "kvm",
        firmware=config.get("firmware"),
        kernel=config.get("kernel"),
        initrd=config.get("initrd"),
        cmdline=config.get("cmdline"),
        network=None if network == "none" else network,
        vsock=True if vsock is None else vsock,
        seed=seed,
    )


def ssh_command(port: int | None) -> str | None:
    return f"ssh -p {port} {ssh_user}@127.0.0.1" if port else None


pulumi.export("ssh", {key: td.ssh_port.apply(ssh_command) for key, td in fleet.items()})
pulumi.export("cid", {key: td.cid for key, td in fleet.items()})
# One row per domain: what an operator needs to reach it.
pulumi.export("fleet", {
    key: pulumi.Output.all(td.name, td.state, td.ssh_port, td.cid, td.ip).apply(
        lambda v: {"name": v[0], "state": v[1], "ssh_port": v[2], "cid": v[3], "ip": v[4]}
    )
    for key, td in fleet.items()
})
