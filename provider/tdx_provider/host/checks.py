"""Host readiness for TDX trust domains.

Each check is a small function over a filesystem root (so tests can point it at a fixture tree)
and/or a libvirt connection. ``check_host`` runs them all; ``require_tdx`` raises when a check
that a trust domain cannot do without does not pass.

The decisive check is what libvirt itself says in its KVM domain capabilities: it reflects the
installed libvirt, QEMU and kernel together, and it works for remote hosts too. The file checks
add concrete reasons (BIOS/kernel settings) that libvirt does not spell out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import libvirt

from tdx_provider.errors import HostNotReadyError, InputError, LibvirtOperationError
from tdx_provider.host import gpu
from tdx_provider.readers import capabilities

Status = Literal["pass", "fail", "unknown"]

KVM_TDX_PARAM = Path("sys/module/kvm_intel/parameters/tdx")
CPUINFO = Path("proc/cpuinfo")
VHOST_VSOCK = Path("dev/vhost-vsock")
IOMMU_GROUPS = Path("sys/kernel/iommu_groups")
VFIO_MODULES = (Path("sys/module/vfio_pci"), Path("sys/module/vfio_iommu_type1"))

# Firmware images named for TDX first; then the generic name that Canonical's TDX PPA ships as a
# TDX-capable build (a distribution's ordinary OVMF.fd at the same path is not).
TDX_FIRMWARE_CANDIDATES = (
    Path("usr/share/qemu/OVMF.inteltdx.fd"),
    Path("usr/share/edk2/ovmf/OVMF.inteltdx.fd"),
    Path("usr/share/ovmf/OVMF.inteltdx.fd"),
    Path("usr/share/ovmf/OVMF.fd"),
)

# The oldest builds we know to run TDX: Canonical's TDX PPA (libvirt 10.0, QEMU 8.2, patched);
# upstream QEMU has TDX from 10.1 and upstream libvirt from 11.6. Informational only: the
# domain-capabilities check is what decides.
LIBVIRT_TDX_MINIMUM = (10, 0, 0)
QEMU_TDX_MINIMUM = (8, 2, 0)

REMOTE_REASON = "remote host: not inspected"

# Upstream libvirt took <launchSecurity type='tdx'> with <quoteGenerationService path='...'/> in
# 11.6.0 (2025-08). A libvirt older than that which knows TDX is a patched downstream build:
# Canonical's (10.0 in its TDX PPA), whose QGS form is <SocketAddress type='vsock' .../>.
UPSTREAM_TDX_SINCE = (11, 6, 0)
# Our TD template is q35: its loader list is the one that matters (i440fx lists fewer).
DOMCAPS_MACHINE = "q35"


@dataclass(frozen=True)
class Check:
    """One readiness check. ``required`` checks decide ``HostReport.tdx_ready``."""

    name: str
    status: Status
    reason: str
    required: bool = True


@dataclass
class HostReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def tdx_ready(self) -> bool:
        """True when every required check passes."""
        return not self.failures()

    def failures(self) -> list[Check]:
        """The required checks that do not pass (failed, or could not be decided)."""
        return [check for check in self.checks if check.required and check.status != "pass"]

    def get(self, name: str) -> Check:
        """The check called ``name`` (KeyError when there is none)."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)


def _host_path(relative: Path) -> str:
    """How a path under the root reads on the host, for messages."""
    return "/" + relative.as_posix()


def _version_tuple(version: int) -> tuple[int, int, int]:
    """libvirt's encoded version (major * 1,000,000 + minor * 1,000 + micro) as a tuple."""
    major, rest = divmod(version, 1_000_000)
    minor, micro = divmod(rest, 1000)
    return major, minor, micro


def _format_version(version: int) -> str:
    return ".".join(str(part) for part in _version_tuple(version))


# --- file checks -----------------------------------------------------------------------------


def check_kvm_tdx(root: Path) -> Check:
    """kvm_intel's ``tdx`` parameter is Y (TDX enabled in firmware and in KVM)."""
    name = "kvm_tdx"
    shown = _host_path(KVM_TDX_PARAM)
    try:
        value = (root / KVM_TDX_PARAM).read_text().strip()
    except FileNotFoundError:
        reason = f"kvm_intel not loaded or built without TDX ({shown} is missing)"
        return Check(name, "fail", reason)
    except OSError as exc:
        return Check(name, "unknown", f"cannot read {shown}: {exc}")
    if value in {"Y", "1"}:
        return Check(name, "pass", f"{shown} is {value}")
    return Check(
        name, "fail",
        f"{shown} is {value!r}: TDX is off in KVM (enable TDX in the BIOS and load kvm_intel "
        "with tdx=1)",
    )


def _cpu_flags(cpuinfo: str) -> set[str]:
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return flags


def check_cpu_flag(root: Path) -> Check:
    """The CPU flag ``tdx_host_platform`` (set when the TDX module is initialised)."""
    name = "cpu_tdx_flag"
    try:
        flags = _cpu_flags((root / CPUINFO).read_text())
    except OSError as exc:
        return Check(name, "unknown", f"cannot read {_host_path(CPUINFO)}: {exc}")
    if "tdx_host_platform" in flags:
        return Check(name, "pass", "CPU flag tdx_host_platform is present")
    if "tdx_guest" in flags:
        return Check(
            name, "fail", "this machine is itself a TDX guest (flag tdx_guest), not a TDX host"
        )
    return Check(
        name, "fail",
        f"CPU flag tdx_host_platform missing from {_host_path(CPUINFO)}: TDX is not enabled in "
        "the BIOS, the CPU lacks TDX, or the kernel did not initialise the TDX module",
    )


def check_tdx_firmware(root: Path) -> Check:
    """A firmware image that can boot a TD (by name; the file's contents are not inspected)."""
    name = "tdx_firmware"
    for candidate in TDX_FIRMWARE_CANDIDATES:
        if (root / candidate).is_file():
            shown = _host_path(candidate)
            if "inteltdx" in candidate.name:
                return Check(name, "pass", f"found {shown}")
            return Check(
                name, "pass",
                f"found {shown}; TDX-capable only if it is a TDX build (such as Canonical's TDX "
                "PPA): a generic OVMF at that path does not prove TDX support",
            )
    candidates = ", ".join(_host_path(candidate) for candidate in TDX_FIRMWARE_CANDIDATES)
    return Check(name, "fail", f"no TDX firmware (TDVF/OVMF) at any of {candidates}")


def check_vhost_vsock(root: Path) -> Check:
    """``/dev/vhost-vsock``: needed only by trust domains with a vsock device."""
    name = "vhost_vsock"
    if (root / VHOST_VSOCK).exists():
        return Check(name, "pass", f"{_host_path(VHOST_VSOCK)} is present", required=False)
    return Check(
        name, "fail",
        f"{_host_path(VHOST_VSOCK)} is missing (modprobe vhost_vsock); domains with a vsock "
        "device will not start",
        required=False,
    )


def _has_entries(directory: Path) -> bool:
    try:
        return any(directory.iterdir())
    except OSError:
        return False


def check_iommu_vfio(root: Path) -> Check:
    """IOMMU groups and VFIO modules: needed only for GPU passthrough."""
    name = "iommu_vfio"
    problems = []
    if not _has_entries(root / IOMMU_GROUPS):
        problems.append(
            f"no IOMMU groups in {_host_path(IOMMU_GROUPS)} (enable VT-d and boot with "
            "intel_iommu=on)"
        )
    if not any((root / module).is_dir() for module in VFIO_MODULES):
        problems.append("vfio_pci/vfio_iommu_type1 not loaded (modprobe vfio_pci)")
    if problems:
        return Check(
            name, "fail", "GPU passthrough not possible: " + "; ".join(problems), required=False
        )
    return Check(name, "pass", "IOMMU groups present and VFIO loaded", required=False)


# --- libvirt checks --------------------------------------------------------------------------


def check_libvirt_version(conn: libvirt.virConnect) -> Check:
    """The libvirt daemon's version (informational)."""
    name = "libvirt_version"
    try:
        version = conn.getLibVersion()
    except libvirt.libvirtError as exc:
        return Check(name, "unknown", f"cannot read the libvirt version: {exc}", required=False)
    shown = _format_version(version)
    if _version_tuple(version) >= LIBVIRT_TDX_MINIMUM:
        return Check(name, "pass", f"libvirt {shown}", required=False)
    return Check(
        name, "fail",
        f"libvirt {shown} is older than any TDX-capable libvirt we know (Canonical's 10.0 with "
        "TDX patches, upstream 11.6)",
        required=False,
    )


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
    shown = _format_version(version)
    if _version_tuple(version) >= QEMU_TDX_MINIMUM:
        return Check(name, "pass", f"QEMU {shown}", required=False)
    return Check(
        name, "fail",
        f"QEMU {shown} is older than any TDX-capable QEMU we know (Canonical's 8.2 with TDX "
        "patches, upstream 10.1)",
        required=False,
    )


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
    return _version_tuple(libvirt_version) >= UPSTREAM_TDX_SINCE


def check_qgs_dialect(qgs: dict[str, object], libvirt_version: int) -> None:
    """Raise InputError("qgs") when the QGS form is not the one this libvirt parses.

    Upstream libvirt (>= 11.6) takes only ``path``; its parser silently drops a vsock
    ``<SocketAddress>``. An older libvirt that knows TDX is Canonical's patched build, which
    takes only the vsock form; upstream's ``path`` attribute predates nothing it knows.
    """
    shown = _format_version(libvirt_version)
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


def _libvirt_version_text(conn: libvirt.virConnect) -> str:
    try:
        return _format_version(conn.getLibVersion())
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
    shown = _format_version(version)
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


# --- the report ------------------------------------------------------------------------------

FILE_CHECKS: tuple[tuple[str, Callable[[Path], Check]], ...] = (
    ("kvm_tdx", check_kvm_tdx),
    ("cpu_tdx_flag", check_cpu_flag),
    ("tdx_firmware", check_tdx_firmware),
    ("vhost_vsock", check_vhost_vsock),
    ("iommu_vfio", check_iommu_vfio),
)

LIBVIRT_CHECKS: tuple[Callable[[libvirt.virConnect], Check], ...] = (
    check_libvirt_version,
    check_qemu_version,
    check_libvirt_tdx,
    check_tdx_loader,
    check_qgs_form,
    check_gpus,
)


def _file_checks(root: Path, local: bool) -> list[Check]:
    if local:
        return [run(root) for _name, run in FILE_CHECKS]
    # A remote host's files are not ours to read; libvirt's own answer decides there.
    return [Check(name, "unknown", REMOTE_REASON, required=False) for name, _run in FILE_CHECKS]


def check_host(
    conn: libvirt.virConnect, root: Path = Path("/"), *, local: bool = True
) -> HostReport:
    """Run every check; file checks read under ``root`` and only when the host is ``local``."""
    return HostReport(_file_checks(root, local) + [run(conn) for run in LIBVIRT_CHECKS])


def require_tdx(conn: libvirt.virConnect, root: Path = Path("/"), *, local: bool = True) -> None:
    """Raise HostNotReadyError listing why this host cannot run a trust domain."""
    report = check_host(conn, root, local=local)
    if not report.tdx_ready:
        raise HostNotReadyError(
            "this host cannot run TDX trust domains",
            [check.reason for check in report.failures()],
        )
