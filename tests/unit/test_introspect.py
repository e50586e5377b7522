"""Parsers behind the live outputs: HMP ``info usernet``, live domain XML, ``domifaddr``."""

from __future__ import annotations

from typing import Any

import libvirt
import pytest

from tdx_provider.guest.introspect import (
    HostForward,
    cid_from_xml,
    first_ipv4,
    parse_usernet,
    ssh_port_from_usernet,
)

IPV4 = libvirt.VIR_IP_ADDR_TYPE_IPV4
IPV6 = libvirt.VIR_IP_ADDR_TYPE_IPV6

# HMP "info usernet" of QEMU 7.2 (libslirp 4.7) for a guest with
# -netdev user,id=ptdx-ssh,hostfwd=tcp:127.0.0.1:0-:22, an SSH session in, and the guest's
# own outbound SSH and DNS traffic. Newest sockets come first; the forward's listening socket
# shows the host port the kernel picked.
USERNET_QEMU_7_2 = """\
Hub -1 (ptdx-ssh):
  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ
  TCP[ESTABLISHED]   24       127.0.0.1 42017       10.0.2.15    22     0     0
  TCP[ESTABLISHED]   22       10.0.2.15 51234    140.82.121.4    22     0    36
  TCP[HOST_FORWARD]  13       127.0.0.1 42017       10.0.2.15    22     0     0
  UDP[236 sec]       21       10.0.2.15 36524        10.0.2.3    53     0     0
"""

# Only a forward to a web server in the guest, plus an outbound connection to port 22.
USERNET_NO_SSH_FORWARD = """\
Hub -1 (ptdx-ssh):
  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ
  TCP[ESTABLISHED]   22       10.0.2.15 51234    140.82.121.4    22     0     0
  TCP[HOST_FORWARD]  13       127.0.0.1 38080       10.0.2.15  8080     0     0
  UDP[HOST_FORWARD]  14       127.0.0.1 40022       10.0.2.15    22     0     0
"""


# --- info usernet ----------------------------------------------------------------------------


def test_parse_usernet_returns_only_host_forward_rows() -> None:
    assert parse_usernet(USERNET_QEMU_7_2) == [
        HostForward(
            protocol="tcp",
            host_address="127.0.0.1",
            host_port=42017,
            guest_address="10.0.2.15",
            guest_port=22,
        )
    ]


def test_parse_usernet_keeps_udp_forwards_and_lowercases_the_protocol() -> None:
    forwards = parse_usernet(USERNET_NO_SSH_FORWARD)
    assert [(f.protocol, f.host_port, f.guest_port) for f in forwards] == [
        ("tcp", 38080, 8080),
        ("udp", 40022, 22),
    ]


def test_ssh_port_is_the_host_side_of_the_tcp_forward_to_guest_port_22() -> None:
    assert ssh_port_from_usernet(USERNET_QEMU_7_2) == 42017


def test_ssh_port_survives_crlf_line_endings_from_the_monitor() -> None:
    assert ssh_port_from_usernet(USERNET_QEMU_7_2.replace("\n", "\r\n")) == 42017


def test_ssh_port_from_a_forward_bound_to_all_addresses() -> None:
    text = USERNET_QEMU_7_2.replace(
        "TCP[HOST_FORWARD]  13       127.0.0.1 42017",
        "TCP[HOST_FORWARD]  13               * 2222 ",
    )
    assert parse_usernet(text)[0].host_address == "*"
    assert ssh_port_from_usernet(text) == 2222


def test_ssh_port_is_none_when_forwards_go_to_other_guest_ports_only() -> None:
    assert ssh_port_from_usernet(USERNET_NO_SSH_FORWARD) is None


def test_ssh_port_ignores_established_connections_to_a_remote_port_22() -> None:
    text = "\n".join(line for line in USERNET_QEMU_7_2.splitlines() if "HOST_FORWARD" not in line)
    assert ssh_port_from_usernet(text) is None


@pytest.mark.parametrize("text", ["", "\n", "Hub -1 (ptdx-ssh):\n"])
def test_ssh_port_is_none_for_empty_output(text: str) -> None:
    assert parse_usernet(text) == []
    assert ssh_port_from_usernet(text) is None


# --- vsock CID from live XML -----------------------------------------------------------------


def live_domain(devices: str) -> str:
    return (
        "<domain type='kvm' id='3'><name>td-1</name><memory unit='KiB'>2097152</memory>"
        f"<vcpu>2</vcpu><devices>{devices}</devices></domain>"
    )


def test_cid_is_read_from_a_live_vsock_with_an_automatic_address() -> None:
    xml = live_domain(
        "<vsock model='virtio'><cid auto='yes' address='3'/><alias name='vsock0'/></vsock>"
    )
    assert cid_from_xml(xml) == 3


def test_cid_is_read_from_a_fixed_address() -> None:
    assert (
        cid_from_xml(live_domain("<vsock model='virtio'><cid auto='no' address='42'/></vsock>"))
        == 42
    )


@pytest.mark.parametrize(
    "devices",
    [
        "",
        "<vsock model='virtio'><cid auto='yes'/></vsock>",
        "<vsock model='virtio'><cid auto='yes' address=''/></vsock>",
    ],
    ids=["no-vsock", "no-address-yet", "empty-address"],
)
def test_cid_is_none_when_the_domain_has_no_assigned_cid(devices: str) -> None:
    assert cid_from_xml(live_domain(devices)) is None


# --- first IPv4 from interfaceAddresses() ----------------------------------------------------


def iface(hwaddr: str | None, *addrs: tuple[int, str, int]) -> dict[str, Any]:
    return {
        "hwaddr": hwaddr,
        "addrs": [{"type": kind, "addr": addr, "prefix": prefix} for kind, addr, prefix in addrs],
    }


def test_first_ipv4_skips_ipv6_and_loopback() -> None:
    interfaces = {
        "lo": iface("00:00:00:00:00:00", (IPV4, "127.0.0.1", 8), (IPV6, "::1", 128)),
        "vnet0": iface(
            "52:54:00:12:34:56",
            (IPV6, "fe80::5054:ff:fe12:3456", 64),
            (IPV4, "192.168.122.45", 24),
        ),
    }
    assert first_ipv4(interfaces) == "192.168.122.45"


def test_first_ipv4_takes_interfaces_in_name_order() -> None:
    interfaces = {
        "vnet1": iface("52:54:00:00:00:02", (IPV4, "10.0.0.2", 24)),
        "vnet0": iface("52:54:00:00:00:01", (IPV4, "10.0.0.1", 24)),
    }
    assert first_ipv4(interfaces) == "10.0.0.1"


@pytest.mark.parametrize(
    "interfaces",
    [
        {},
        {"vnet0": iface("52:54:00:12:34:56")},
        {"vnet0": {"hwaddr": "52:54:00:12:34:56", "addrs": None}},
        {"vnet0": iface("52:54:00:12:34:56", (IPV6, "2001:db8::5", 64))},
        {"lo": iface(None, (IPV4, "127.0.0.1", 8)), "vnet0": iface(None, (IPV4, "0.0.0.0", 0))},
    ],
    ids=["no-interfaces", "no-addresses", "addrs-none", "ipv6-only", "loopback-unspecified"],
)
def test_first_ipv4_is_none_without_a_usable_ipv4(interfaces: dict[str, Any]) -> None:
    assert first_ipv4(interfaces) is None
