"""What an operator needs to connect, read from a live domain: SSH host port, vsock CID, IP.

Each parser works on captured text so it is unit-tested without a guest; the thin ``live_*``
functions fetch that text from libvirt and return None when it cannot be known.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import libvirt
import libvirt_qemu

from tdx_provider.readers.domain import Domain

SSH_GUEST_PORT = 22

# A HOST_FORWARD row of HMP "info usernet":
#   TCP[HOST_FORWARD]  13       127.0.0.1 42017       10.0.2.15    22     0     0
_FORWARD_RE = re.compile(
    r"^\s*(?P<proto>TCP|UDP)\[HOST_FORWARD\]\s+\S+\s+(?P<src>\S+)\s+(?P<sport>\d+)\s+"
    r"(?P<dst>\S+)\s+(?P<dport>\d+)"
)


@dataclass(frozen=True)
class HostForward:
    protocol: str
    host_address: str
    host_port: int
    guest_address: str
    guest_port: int


def parse_usernet(text: str) -> list[HostForward]:
    forwards = []
    for line in text.splitlines():
        match = _FORWARD_RE.match(line)
        if match:
            forwards.append(
                HostForward(
                    protocol=match["proto"].lower(),
                    host_address=match["src"],
                    host_port=int(match["sport"]),
                    guest_address=match["dst"],
                    guest_port=int(match["dport"]),
                )
            )
    return forwards


def ssh_port_from_usernet(text: str) -> int | None:
    for forward in parse_usernet(text):
        if forward.protocol == "tcp" and forward.guest_port == SSH_GUEST_PORT:
            return forward.host_port
    return None


def cid_from_xml(xml: str) -> int | None:
    """The vsock CID of a live domain XML (libvirt fills in the address when auto='yes')."""
    devices = Domain.parse(xml).devices
    vsock = devices.vsock if devices is not None else None
    return vsock.cid if vsock is not None else None


def first_ipv4(interfaces: dict[str, Any]) -> str | None:
    """First non-loopback IPv4 from ``virDomain.interfaceAddresses()``'s result."""
    for name in sorted(interfaces):
        for addr in interfaces[name].get("addrs") or []:
            if addr.get("type") != libvirt.VIR_IP_ADDR_TYPE_IPV4:
                continue
            ip = ipaddress.ip_address(addr.get("addr", "0.0.0.0"))
            if not ip.is_loopback and not ip.is_unspecified:
                return str(ip)
    return None


def live_ssh_port(dom: libvirt.virDomain) -> int | None:
    if not dom.isActive():
        return None
    try:
        text = libvirt_qemu.qemuMonitorCommand(
            dom, "info usernet", libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP
        )
    except libvirt.libvirtError:
        return None
    return ssh_port_from_usernet(text)


def live_cid(dom: libvirt.virDomain) -> int | None:
    if not dom.isActive():
        return None
    return cid_from_xml(dom.XMLDesc(0))


def live_ip(dom: libvirt.virDomain) -> str | None:
    """From the DHCP lease of a libvirt network, else the host's ARP table. Never blocks on
    the guest agent (a trust domain usually has none)."""
    if not dom.isActive():
        return None
    for source in (
        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP,
    ):
        try:
            ip = first_ipv4(dom.interfaceAddresses(source, 0))
        except libvirt.libvirtError:
            continue
        if ip:
            return ip
    return None
