"""Host readiness as libvirt reports it: versions, TDX in the KVM domain capabilities, the
firmware libvirt offers, the QGS form it parses, and the GPUs it sees. These work for remote
hosts too."""

from __future__ import annotations

import libvirt

from tdx_provider.errors import LibvirtOperationError
from tdx_provider.host import gpu
from tdx_provider.host.domcaps import is_upstream_tdx, read_domain_capabilities
from tdx_provider.host.readiness import Check, format_version, version_tuple

# The oldest builds we know to run TDX: Canonical's TDX PPA (libvirt 10.0, QEMU 8.2, patched);
# upstream QEMU has TDX from 10.1 and upstream libvirt from 11.6. Informational only: the
# domain-capabilities check is what decides.
LIBVIRT_TDX_MINIMUM = (10, 0, 0)
QEMU_TDX_MINIMUM = (8, 2, 0)


def _version_check(name: str, what: str, version: int, minimum: tuple[int, int, int],
                   known: str) -> Check:
    """Pass when ``version`` (libvirt's packed number) is at least ``minimum``."""
    shown = format_version(version)
    if version_tuple(version) >= minimum:
        return Check(name, "pass", f"{what} {shown}", required=False)
    return Check(name, "fail", f"{what} {shown} is older than any TDX-capable {what} we know "
                 f"({known})", required=False)


def check_libvirt_version(conn: libvirt.virConnect) -> Check:
    """The libvirt daemon's version (informational)."""
    name = "libvirt_version"
    try:
        version = conn.getLibVersion()
    except libvirt.libvirtError as exc:
        return Check(name, "unknown", f"cannot read the libvirt version: {exc}", required=False)
    return _version_check(name, "libvirt", version, LIBVIRT_TDX_MINIMUM,
                          "Canonical's 10.0 with TDX patches, upstream 11.6")


def check_qemu_version(conn: libvirt.virConnect) -> Check:
    """The hypervisor behind the connection and its version (informational)."""
    name = "qemu_version"
    try:
        driver = conn.getType()
        version = conn.getVersion()
    except libvirt.libvirtError as exc:
        return Check(name, "unknown", f"cannot read the hypervisor version: {exc}", required=False)
    if driver.upper() != "QEMU":
        return Check(
            name, "fail", f"connection uses libvirt's {driver} driver, not QEMU", required=False
        )
    return _version_check(name, "QEMU", version, QEMU_TDX_MINIMUM,
                          "Canonical's 8.2 with TDX patches, upstream 10.1")


def _libvirt_version_text(conn: libvirt.virConnect) -> str:
    try:
        return format_version(conn.getLibVersion())
    except libvirt.libvirtError:
        return "(unknown version)"


def check_libvirt_tdx(conn: libvirt.virConnect) -> Check:
    """libvirt's KVM domain capabilities advertise TDX launch security."""
    name = "libvirt_tdx"
    try:
        caps = read_domain_capabilities(conn)
    except LibvirtOperationError as exc:
        return Check(name, "fail", str(exc))
    if caps.tdx_supported:
        return Check(name, "pass", f"libvirt advertises TDX launch security for KVM "
                     f"({caps.evidence})")
    if caps.tdx_known:
        return Check(
            name, "fail",
            f"libvirt {_libvirt_version_text(conn)} knows TDX but its KVM domain capabilities "
            f"say {caps.evidence}: QEMU or KVM on this host cannot run a TD (kvm_intel needs "
            "tdx=Y, and QEMU must be built with TDX)",
        )
    version = _libvirt_version_text(conn)
    return Check(
        name, "fail",
        f"libvirt {version} does not know <launchSecurity type='tdx'> (needs a TDX-enabled "
        "libvirt, upstream >= 11.6 or Canonical's)",
    )


def check_tdx_loader(conn: libvirt.virConnect) -> Check:
    """A TDX firmware among the loaders libvirt offers (the default ``firmware`` of a TD)."""
    name = "tdx_loader"
    try:
        caps = read_domain_capabilities(conn)
    except LibvirtOperationError as exc:
        return Check(name, "unknown", str(exc), required=False)
    firmware = caps.tdx_firmware()
    if firmware:
        return Check(name, "pass", f"libvirt offers {firmware} (used when firmware is omitted)",
                     required=False)
    offered = ", ".join(caps.loaders) or "none"
    return Check(name, "fail", f"no TDX firmware among libvirt's loaders ({offered}); give "
                 "firmware explicitly", required=False)


def check_qgs_form(conn: libvirt.virConnect) -> Check:
    """Which quoteGenerationService form this libvirt parses (informational): upstream (>= 11.6)
    takes ``path``; an older libvirt whose domain capabilities know TDX is Canonical's patched
    build, which takes the vsock form; any other knows no TDX at all."""
    name = "qgs_form"
    try:
        version = conn.getLibVersion()
    except libvirt.libvirtError as exc:
        return Check(name, "unknown", f"cannot read the libvirt version: {exc}", required=False)
    shown = format_version(version)
    if is_upstream_tdx(version):
        return Check(name, "pass", f"libvirt {shown} is upstream TDX: qgs takes 'path'",
                     required=False)
    try:
        known = read_domain_capabilities(conn).tdx_known
    except LibvirtOperationError as exc:
        return Check(name, "unknown", str(exc), required=False)
    if known:
        return Check(name, "pass", f"libvirt {shown} knows TDX before upstream did (Canonical's "
                     "patched build): qgs takes vsock_cid/vsock_port", required=False)
    return Check(name, "fail", f"libvirt {shown} knows no TDX: no quoteGenerationService form",
                 required=False)


def check_gpus(conn: libvirt.virConnect) -> Check:
    """GPUs libvirt sees, with BDF and IOMMU group (informational; none is fine)."""
    name = "gpus"
    try:
        gpus = gpu.list_gpus(conn)
    except LibvirtOperationError as exc:
        return Check(name, "unknown", str(exc), required=False)
    if not gpus:
        return Check(name, "pass", "no GPUs found", required=False)
    return Check(name, "pass", "; ".join(_describe_gpu(device) for device in gpus), required=False)


def _describe_gpu(device: gpu.PciDevice) -> str:
    group = "no IOMMU group" if device.iommu_group is None else f"IOMMU group {device.iommu_group}"
    driver = f", driver {device.driver}" if device.driver else ""
    label = device.product or f"{device.vendor_id}:{device.product_id}"
    return f"{device.address} {label} ({group}{driver})"

