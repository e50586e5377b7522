"""The inputs of a domain this stack did not define (``pulumi import``, e.g. one tdvirsh made):
what its persistent definition says, in the TrustDomain spec's terms, so that the program
declaring them previews with no change. What the definition cannot say (a TD's policy bits,
the SSH forward of a template we did not render) is left to the spec's defaults."""

from __future__ import annotations

from typing import Any

import libvirt

from tdx_provider.readers.domain import Domain


def _pci(address: Any) -> str:
    return (f"{address.domain or 0:04x}:{address.bus or 0:02x}:{address.slot or 0:02x}."
            f"{address.function or 0:x}")


def inputs_of(dom: libvirt.virDomain) -> dict[str, Any]:
    """TrustDomain inputs read from ``dom``'s persistent definition (None: not said)."""
    d = Domain.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    devices, os_, launch, mark = d.devices, d.os, d.launch_security, d.instance
    disk = next((k for k in d.disks if k.device in (None, "disk") and k.source is not None
                 and k.source.path), None)
    vsock = devices.vsock if devices is not None else None
    networks = [i.network for i in (devices.interfaces if devices is not None else [])
                if i.type == "network"]
    hostdevs = devices.hostdevs if devices is not None else []
    found: dict[str, Any] = {
        "name": d.name,
        "overlay": disk.source.path if disk is not None and disk.source is not None else None,
        "memory_mib": d.memory_mib, "vcpus": d.vcpus,
        "tdx": launch is not None and launch.type == "tdx",
        "domain_type": d.type,
        "firmware": os_.loader if os_ is not None else None,
        "kernel": os_.kernel if os_ is not None else None,
        "initrd": os_.initrd if os_ is not None else None,
        "cmdline": os_.cmdline if os_ is not None else None,
        "vsock": vsock is not None,
        "cid": vsock.cid if vsock is not None and not vsock.cid_auto else None,
        "network": networks[0] if networks else None,
        "console_log": devices.console_log if devices is not None else None,
        "gpus": [_pci(h.address) for h in hostdevs if h.type == "pci" and h.address is not None],
        "autostart": bool(dom.autostart()),
    }
    if mark is not None and mark.shutdown_timeout is not None:
        found["shutdown_timeout"] = mark.shutdown_timeout
    if mark is not None and mark.seed:
        found["seed"] = {"path": mark.seed, "instance_id": mark.seed_instance_id}
    return found
