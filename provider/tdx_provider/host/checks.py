"""Host readiness for TDX trust domains: which checks run, and the verdict.

Each check is a small function over a filesystem root (:mod:`.file_checks`, so tests can point
it at a fixture tree) or a libvirt connection (:mod:`.libvirt_checks`). ``check_host`` runs them
all; ``require_tdx`` raises when a check that a trust domain cannot do without does not pass.

The decisive check is what libvirt itself says in its KVM domain capabilities: it reflects the
installed libvirt, QEMU and kernel together, and it works for remote hosts too. The file checks
add concrete reasons (BIOS/kernel settings) that libvirt does not spell out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import libvirt

from tdx_provider.errors import HostNotReadyError

# check_qgs_dialect and read_domain_capabilities: the adapters (dynamic/, tdxctl/) take them
# from here until issue 19's rewrite; their home is host/domcaps.py.
from tdx_provider.host.domcaps import check_qgs_dialect, read_domain_capabilities  # noqa: F401
from tdx_provider.host.file_checks import (
    check_cpu_flag,
    check_iommu_vfio,
    check_kvm_tdx,
    check_tdx_firmware,
    check_vhost_vsock,
)
from tdx_provider.host.libvirt_checks import (
    check_gpus,
    check_libvirt_tdx,
    check_libvirt_version,
    check_qemu_version,
    check_qgs_form,
    check_tdx_loader,
)
from tdx_provider.host.readiness import Check, HostReport

REMOTE_REASON = "remote host: not inspected"

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

