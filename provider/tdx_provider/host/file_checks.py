"""Host readiness read from files: BIOS and kernel settings that libvirt does not spell out.

Each check is a small function over a filesystem root, so tests point it at a fixture tree
(tests/fixtures/sysfs-*); only a local host's files are read (see :func:`.checks.check_host`).
"""

from __future__ import annotations

from pathlib import Path

from tdx_provider.host.readiness import Check, host_path

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


def check_kvm_tdx(root: Path) -> Check:
    """kvm_intel's ``tdx`` parameter is Y (TDX enabled in firmware and in KVM)."""
    name = "kvm_tdx"
    shown = host_path(KVM_TDX_PARAM)
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
        return Check(name, "unknown", f"cannot read {host_path(CPUINFO)}: {exc}")
    if "tdx_host_platform" in flags:
        return Check(name, "pass", "CPU flag tdx_host_platform is present")
    if "tdx_guest" in flags:
        return Check(
            name, "fail", "this machine is itself a TDX guest (flag tdx_guest), not a TDX host"
        )
    return Check(
        name, "fail",
        f"CPU flag tdx_host_platform missing from {host_path(CPUINFO)}: TDX is not enabled in "
        "the BIOS, the CPU lacks TDX, or the kernel did not initialise the TDX module",
    )


def check_tdx_firmware(root: Path) -> Check:
    """A firmware image that can boot a TD (by name; the file's contents are not inspected)."""
    name = "tdx_firmware"
    for candidate in TDX_FIRMWARE_CANDIDATES:
        if (root / candidate).is_file():
            shown = host_path(candidate)
            if "inteltdx" in candidate.name:
                return Check(name, "pass", f"found {shown}")
            return Check(
                name, "pass",
                f"found {shown}; TDX-capable only if it is a TDX build (such as Canonical's TDX "
                "PPA): a generic OVMF at that path does not prove TDX support",
            )
    candidates = ", ".join(host_path(candidate) for candidate in TDX_FIRMWARE_CANDIDATES)
    return Check(name, "fail", f"no TDX firmware (TDVF/OVMF) at any of {candidates}")


def check_vhost_vsock(root: Path) -> Check:
    """``/dev/vhost-vsock``: needed only by trust domains with a vsock device."""
    name = "vhost_vsock"
    if (root / VHOST_VSOCK).exists():
        return Check(name, "pass", f"{host_path(VHOST_VSOCK)} is present", required=False)
    return Check(
        name, "fail",
        f"{host_path(VHOST_VSOCK)} is missing (modprobe vhost_vsock); domains with a vsock "
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
            f"no IOMMU groups in {host_path(IOMMU_GROUPS)} (enable VT-d and boot with "
            "intel_iommu=on)"
        )
    if not any((root / module).is_dir() for module in VFIO_MODULES):
        problems.append("vfio_pci/vfio_iommu_type1 not loaded (modprobe vfio_pci)")
    if problems:
        return Check(
            name, "fail", "GPU passthrough not possible: " + "; ".join(problems), required=False
        )
    return Check(name, "pass", "IOMMU groups present and VFIO loaded", required=False)
