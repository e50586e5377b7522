"""The libvirt hosts the libvirt and e2e tiers run against (``make setup`` starts both).

- ``debian``: this machine's system libvirtd (Debian 12: libvirt 9.0, QEMU 7.2).
- ``upstream``: a current upstream libvirt (Debian sid: libvirt 12.x, QEMU 11.x) chrooted under
  ``$PULUMI_TDX_UPSTREAM_ROOT`` by ``scripts/setup-upstream-host.sh``, reached through its own
  socket (``$PULUMI_TDX_UPSTREAM_URI``). For our provider it is another machine
  (``connection.is_local_uri`` is False): firmware, kernel and initrd are looked up through
  its libvirt (``storage/host_files``), never on this machine.
  ``/var/tmp`` and the test-guest cache are bind-mounted at the same paths inside, so pools,
  console logs, kernel and initrd that tests place there are the same files on both hosts.

A host that does not answer is a failure with the command that fixes it, never a skip.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import libvirt

from tests.support.guest import cache_root

SYSTEM_SOCKET = "/var/run/libvirt/libvirt-sock"


class HostMissingError(RuntimeError):
    """A libvirt host of the matrix does not answer."""


@dataclass(frozen=True)
class LibvirtHost:
    """One libvirt daemon of the test matrix."""

    __test__: ClassVar[bool] = False

    name: str  # the pytest id: "debian" or "upstream"
    uri: str

    @property
    def socket(self) -> str:
        """The daemon's unix socket (the system default when the URI names none)."""
        return parse_qs(urlsplit(self.uri).query).get("socket", [SYSTEM_SOCKET])[0]

    @property
    def unix_uri(self) -> str:
        """The same daemon as a client elsewhere would reach it (a forwarded socket, the unix
        transport): for the provider another machine (``is_local_uri`` is False)."""
        return f"qemu+unix:///system?socket={self.socket}"

    def version(self) -> tuple[str, str]:
        """(libvirt, hypervisor) versions as ``major.minor.micro``, or HostMissingError."""
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as exc:
            raise HostMissingError(
                f"libvirt host {self.name!r} does not answer at {self.uri}: {exc}; run `make setup`"
                " (scripts/setup-upstream-host.sh starts the upstream host)"
            ) from exc
        try:
            return _dotted(conn.getLibVersion()), _dotted(conn.getVersion())
        finally:
            conn.close()


def _dotted(version: int) -> str:
    return f"{version // 1_000_000}.{version // 1000 % 1000}.{version % 1000}"


def upstream_root() -> Path:
    """Where the sid root lives (same default as scripts/env.sh)."""
    return Path(os.environ.get("PULUMI_TDX_UPSTREAM_ROOT") or cache_root() / "upstream-sid")


def upstream_uri() -> str:
    return os.environ.get("PULUMI_TDX_UPSTREAM_URI") or (
        f"qemu:///system?socket={upstream_root()}/run/libvirt/libvirt-sock"
    )


DEBIAN = LibvirtHost("debian", "qemu:///system")


@cache
def hosts() -> tuple[LibvirtHost, ...]:
    """Every host of the matrix, in test order."""
    return (DEBIAN, LibvirtHost("upstream", upstream_uri()))


HOST_IDS = ("debian", "upstream")


def by_name(name: str) -> LibvirtHost:
    return {h.name: h for h in hosts()}[name]


def answering(host: LibvirtHost) -> bool:
    """For sweeps only: a host that does not answer holds nothing of ours to remove."""
    try:
        host.version()
    except HostMissingError:
        return False
    return True
