"""Two hosts, one stack: an explicit ``tdx`` provider per libvirt host, and on each a pool, a
base image, an overlay and a guest (the native provider plugin, ``pulumi-resource-tdx``).

Stack config (``pulumi config set <key> <value>``):

- ``hosts`` (required): the two hosts' libvirt URIs, comma-separated, e.g.
  ``qemu:///system,qemu+ssh://root@host-b/system``. File inputs (image source, kernel,
  firmware) are paths on the host that runs each guest.
- ``baseImage`` (required): the image, at this path on every host.
- ``prefix`` (default ``two-hosts``): names of the pools, volumes and domains.
- ``poolPath`` (default ``/var/lib/pulumi-tdx/two-hosts``): each host's pool lives in
  ``<poolPath>/<host index>``.
- ``tdx`` (default true), ``domainType`` (default ``kvm``), ``firmware``, ``kernel``,
  ``initrd``, ``cmdline``, ``memoryMib`` (default 2048), ``vcpus`` (default 2), ``network``
  (default ``default``; ``none`` for none), ``vsock`` (default true), ``consoleLog`` (a
  directory: ``<consoleLog>/<domain name>.log``).

Outputs: ``hosts`` (index -> URI), ``ssh_ports`` and ``states`` (index -> value).
"""

import pulumi

from pulumi_tdx import native as tdx

config = pulumi.Config()
uris = [u.strip() for u in config.require("hosts").split(",") if u.strip()]
prefix = config.get("prefix") or "two-hosts"
pool_path = config.get("poolPath") or "/var/lib/pulumi-tdx/two-hosts"
network = config.get("network") or "default"
console_dir = config.get("consoleLog")

ssh_ports, states = {}, {}
for index, uri in enumerate(uris):
    host = tdx.Provider(f"host-{index}", uri=uri)
    on_host = pulumi.ResourceOptions(provider=host)
    name = f"{prefix}-{index}"
    pool = tdx.Pool(f"pool-{index}", name=name, path=f"{pool_path}/{index}", opts=on_host)
    base = tdx.BaseImage(f"base-{index}", pool=pool, name=f"{name}-base",
                         source=config.require("baseImage"), opts=on_host)
    disk = tdx.Overlay(f"disk-{index}", pool=pool, base_image=base, name=f"{name}-disk",
                       opts=on_host)
    td = tdx.TrustDomain(
        f"td-{index}", overlay=disk, name=f"{name}-td",
        memory_mib=config.get_int("memoryMib") or 2048, vcpus=config.get_int("vcpus") or 2,
        tdx=config.get_bool("tdx") is not False, domain_type=config.get("domainType") or "kvm",
        firmware=config.get("firmware"), kernel=config.get("kernel"),
        initrd=config.get("initrd"), cmdline=config.get("cmdline"),
        vsock=config.get_bool("vsock") is not False,
        network=None if network == "none" else network,
        console_log=f"{console_dir}/{name}-td.log" if console_dir else None,
        opts=on_host)
    ssh_ports[str(index)] = td.ssh_port
    states[str(index)] = td.state

pulumi.export("hosts", {str(i): uri for i, uri in enumerate(uris)})
pulumi.export("ssh_ports", ssh_ports)
pulumi.export("states", states)
