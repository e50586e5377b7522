"""What libvirt's KVM domain capabilities say about TDX and firmware, and which QGS form
(``quoteGenerationService``) the host's libvirt parses.

The domain capabilities reflect the installed libvirt, QEMU and kernel together, and work for
remote hosts too: they are the decisive readiness check (:mod:`.libvirt_checks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import libvirt

from tdx_provider.errors import InputError, LibvirtOperationError
from tdx_provider.host.readiness import format_version, version_tuple
from tdx_provider.readers import capabilities

# Upstream libvirt took <launchSecurity type='tdx'> with <quoteGenerationService path='...'/> in
# 11.6.0 (2025-08). A libvirt older than that which knows TDX is a patched downstream build:
# Canonical's (10.0 in its TDX PPA), whose QGS form is <SocketAddress type='vsock' .../>.
UPSTREAM_TDX_SINCE = (11, 6, 0)
# Our TD template is q35: its loader list is the one that matters (i440fx lists fewer).
DOMCAPS_MACHINE = "q35"


@dataclass(frozen=True)
class DomainCapabilities:
    """What libvirt's KVM domain capabilities say about TDX and firmware."""

    tdx_known: bool
    tdx_supported: bool
    loaders: tuple[str, ...]
    evidence: str  # the elements that decided, as libvirt printed them

    def tdx_firmware(self) -> str | None:
        """The loader to use for a TD: an Intel TDX image first, then any TDX-named one."""
        for wanted in ("inteltdx", "tdx"):
            for loader in self.loaders:
                if wanted in Path(loader).name.lower():
                    return loader
        return None


def parse_domain_capabilities(xml: str) -> DomainCapabilities:
    caps = capabilities.DomainCapabilities.parse(xml)
    known, supported = _tdx_support(caps)
    loaders = tuple(value.text for value in caps.loaders if value.text)
    shown = [f"<{feature.tag} supported='{feature.supported}'/>" if feature.supported is not None
             else f"<{feature.tag}/>" for feature in (caps.tdx, caps.launch_security)
             if feature is not None]
    return DomainCapabilities(known, supported, loaders, " ".join(shown) or "no <tdx> element")


def read_domain_capabilities(conn: libvirt.virConnect) -> DomainCapabilities:
    """KVM q35 domain capabilities of the host (works for remote hosts)."""
    try:
        xml = conn.getDomainCapabilities(None, "x86_64", DOMCAPS_MACHINE, "kvm")
    except libvirt.libvirtError as exc:
        raise LibvirtOperationError(
            f"libvirt cannot report KVM domain capabilities: {exc}") from exc
    return parse_domain_capabilities(xml)


def is_upstream_tdx(libvirt_version: int) -> bool:
    """True for libvirt >= 11.6.0, which has upstream TDX (QGS ``path=``)."""
    return version_tuple(libvirt_version) >= UPSTREAM_TDX_SINCE


def check_qgs_dialect(qgs: dict[str, object], libvirt_version: int) -> None:
    """Raise InputError("qgs") when the QGS form is not the one this libvirt parses.

    Upstream libvirt (>= 11.6) takes only ``path``; its parser silently drops a vsock
    ``<SocketAddress>``. An older libvirt that knows TDX is Canonical's patched build, which
    takes only the vsock form; upstream's ``path`` attribute predates nothing it knows.
    """
    shown = format_version(libvirt_version)
    since = ".".join(str(part) for part in UPSTREAM_TDX_SINCE)
    if "path" not in qgs and is_upstream_tdx(libvirt_version):
        raise InputError(
            "qgs", f"the vsock form (vsock_cid/vsock_port, Canonical's libvirt) is not understood "
            f"by libvirt {shown} (upstream >= {since}): it would silently drop the "
            "<SocketAddress> and leave the TD without a quote generation service; give the QGS "
            "unix socket instead, e.g. {'path': '/var/run/tdx-qgs/qgs.socket'}")
    if "path" in qgs and not is_upstream_tdx(libvirt_version):
        raise InputError(
            "qgs", f"libvirt {shown} predates <quoteGenerationService path=...> (upstream "
            f"libvirt {since}); a libvirt older than {since} runs TDX only as Canonical's "
            "patched build, which takes the vsock form {'vsock_cid': 2, 'vsock_port': 4050}")


def domcaps_tdx_support(xml: str) -> tuple[bool, bool]:
    """(libvirt knows TDX at all, libvirt says TDX is supported) from domain capabilities."""
    return _tdx_support(capabilities.DomainCapabilities.parse(xml))


def _tdx_support(caps: capabilities.DomainCapabilities) -> tuple[bool, bool]:
    feature, launch = caps.tdx, caps.launch_security
    sectypes = {value.text for value in launch.sectypes} if launch is not None else set()
    known = feature is not None or "tdx" in sectypes
    supported = (feature is not None and feature.supported == "yes") or (
        launch is not None and launch.supported == "yes" and "tdx" in sectypes
    )
    return known, supported

