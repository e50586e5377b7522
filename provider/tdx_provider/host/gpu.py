"""GPU passthrough: validate PCI addresses against the host's node devices and prepare VFIO.

Detaching the devices from their host drivers is not done here: the trust domain's hostdevs are
``managed='yes'``, so libvirt detaches them to vfio-pci on start and reattaches them on stop.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import libvirt

from tdx_provider.connection import is_no_such
from tdx_provider.errors import InputError, LibvirtOperationError, TdxError
from tdx_provider.readers.capabilities import NodeDevice
from tdx_provider.validation import PciAddress
from tdx_provider.validation import argv as validate_argv

NVIDIA_VENDOR_ID = "0x10de"
DMA_ENTRY_LIMIT_PARAM = Path("sys/module/vfio_iommu_type1/parameters/dma_entry_limit")
DMA_ENTRY_LIMIT_MAX = 0xFFFFFFFF

_DISPLAY_CLASS = 0x03  # PCI base class "display controller" (VGA 0x0300, 3D 0x0302, ...)
_AUDIO_SUBCLASS = 0x0403  # the HDMI audio function that sits beside consumer GPUs
_HINT_LIMIT = 6
_STDERR_TAIL_LINES = 10
_STDERR_TAIL_CHARS = 1000
_REAP_TIMEOUT = 5.0  # after killing a timed-out setup command, how long to collect its stderr


@dataclass(frozen=True)
class PciDevice:
    """A PCI device as libvirt's node device API reports it."""

    address: PciAddress
    vendor_id: str
    product_id: str
    vendor: str
    product: str
    driver: str | None
    iommu_group: int | None
    nodedev_name: str
    pci_class: int | None = None  # e.g. 0x030200; None when libvirt does not report it

    @property
    def is_gpu(self) -> bool:
        """A display/3D controller, or an NVIDIA function that is not an audio function."""
        if self.pci_class is not None and self.pci_class >> 16 == _DISPLAY_CLASS:
            return True
        if self.vendor_id != NVIDIA_VENDOR_ID:
            return False
        return self.pci_class is None or self.pci_class >> 8 != _AUDIO_SUBCLASS


# --- node device XML -------------------------------------------------------------------------


def _parse_uint(text: str) -> int:
    """Decimal (libvirt, sysfs) or 0x-prefixed hex (ids, classes)."""
    text = text.strip()
    try:
        return int(text, 10)
    except ValueError:
        return int(text, 0)


def parse_pci_device(xml: str) -> PciDevice | None:
    """Parse a node device's XMLDesc; None when it is not a PCI device."""
    device = NodeDevice.parse(xml)
    pci = device.pci
    if pci is None:
        return None
    address = PciAddress(
        domain=pci.domain or 0, bus=pci.bus or 0, slot=pci.slot or 0, function=pci.function or 0
    )
    return PciDevice(
        address=address,
        vendor_id=((pci.vendor.id if pci.vendor is not None else None) or "").lower(),
        product_id=((pci.product.id if pci.product is not None else None) or "").lower(),
        vendor=(pci.vendor.name if pci.vendor is not None else None) or "",
        product=(pci.product.name if pci.product is not None else None) or "",
        driver=device.driver or None,
        iommu_group=pci.iommu_group,
        nodedev_name=device.name or address.nodedev_name,
        pci_class=pci.pci_class,
    )


# --- lookups ---------------------------------------------------------------------------------


def list_pci_devices(conn: libvirt.virConnect) -> list[PciDevice]:
    """Every PCI node device of the host, sorted by address."""
    try:
        nodedevs = conn.listAllDevices(libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV)
        parsed = [parse_pci_device(nodedev.XMLDesc(0)) for nodedev in nodedevs]
    except libvirt.libvirtError as exc:
        raise LibvirtOperationError(f"cannot list the host's PCI node devices: {exc}") from exc
    return sorted((device for device in parsed if device is not None), key=lambda d: d.address)


def list_gpus(conn: libvirt.virConnect) -> list[PciDevice]:
    """PCI display/3D controllers (class 0x03xxxx) and NVIDIA devices, sorted by address."""
    return [device for device in list_pci_devices(conn) if device.is_gpu]


def _available_gpus_hint(conn: libvirt.virConnect) -> str:
    try:
        gpus = list_gpus(conn)
    except LibvirtOperationError:
        return "see `virsh nodedev-list --cap pci`"
    if not gpus:
        return "libvirt lists no GPUs here; see `virsh nodedev-list --cap pci`"
    shown = ", ".join(str(gpu.address) for gpu in gpus[:_HINT_LIMIT])
    more = ", …" if len(gpus) > _HINT_LIMIT else ""
    return f"GPUs libvirt lists here: {shown}{more}"


def _lookup_one(conn: libvirt.virConnect, address: PciAddress, field: str) -> PciDevice:
    try:
        xml = conn.nodeDeviceLookupByName(address.nodedev_name).XMLDesc(0)
    except libvirt.libvirtError as exc:
        if is_no_such(exc):
            hint = _available_gpus_hint(conn)
            raise InputError(field, f"no PCI device {address} on this host ({hint})") from exc
        raise LibvirtOperationError(f"cannot look up PCI device {address}: {exc}") from exc
    device = parse_pci_device(xml)
    if device is None:
        raise InputError(field, f"node device {address.nodedev_name} is not a PCI device")
    return device


def lookup_pci_devices(
    conn: libvirt.virConnect, addresses: Sequence[PciAddress], field: str = "gpus"
) -> list[PciDevice]:
    """The node device behind each address, in order; InputError names ``field[i]`` if missing."""
    return [
        _lookup_one(conn, address, f"{field}[{index}]") for index, address in enumerate(addresses)
    ]


# --- VFIO preparation ------------------------------------------------------------------------


def _read_uint(path: Path) -> int:
    return _parse_uint(path.read_text())


def ensure_dma_entry_limit(wanted: int, sysfs_root: Path = Path("/")) -> int | None:
    """Raise vfio_iommu_type1's ``dma_entry_limit`` to at least ``wanted``.

    Returns the value in effect afterwards, or None when vfio_iommu_type1 is not loaded (then the
    limit must be passed at load time: ``modprobe vfio_iommu_type1 dma_entry_limit=N``).
    """
    if not 0 < wanted <= DMA_ENTRY_LIMIT_MAX:
        raise InputError("dma_entry_limit", f"must be between 1 and {DMA_ENTRY_LIMIT_MAX}")
    path = sysfs_root / DMA_ENTRY_LIMIT_PARAM
    if not path.exists():
        return None
    current = _read_uint(path)
    if current >= wanted:
        return current
    try:
        path.write_text(f"{wanted}\n")
    except OSError as exc:
        raise TdxError(
            f"cannot raise /{DMA_ENTRY_LIMIT_PARAM} from {current} to {wanted}: {exc} "
            "(needs root on the libvirt host)"
        ) from exc
    updated = _read_uint(path)
    if updated < wanted:
        raise TdxError(f"/{DMA_ENTRY_LIMIT_PARAM} stayed at {updated} after writing {wanted}")
    return updated


def _as_text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def _tail(output: str | bytes | None) -> str:
    lines = _as_text(output).strip().splitlines()[-_STDERR_TAIL_LINES:]
    tail = " | ".join(line.strip() for line in lines if line.strip())
    if len(tail) > _STDERR_TAIL_CHARS:
        tail = "…" + tail[-_STDERR_TAIL_CHARS:]
    return tail or "(no stderr)"


def _exit_description(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by signal {-returncode} (exit code {returncode})"
    return f"failed with exit code {returncode}"


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _run(command: list[str], timeout: float) -> tuple[int, str]:
    """Run ``command`` in its own session; on timeout kill the whole group (scripts fork).

    Returns (exit code, stderr); raises subprocess.TimeoutExpired carrying the stderr so far.
    """
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            _stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            stderr = ""
            with contextlib.suppress(subprocess.TimeoutExpired):
                _stdout, stderr = process.communicate(timeout=_REAP_TIMEOUT)
            raise subprocess.TimeoutExpired(command, timeout, stderr=stderr) from None
        return process.returncode, stderr


def run_setup_command(
    argv: Sequence[str], bdfs: Sequence[PciAddress], timeout: float = 300
) -> None:
    """Run the user's ``gpu_setup_command`` once, with the BDFs appended as arguments."""
    command = validate_argv("gpu_setup_command", list(argv)) + [str(bdf) for bdf in bdfs]
    shown = shlex.join(command)
    try:
        returncode, stderr = _run(command, timeout)
    except subprocess.TimeoutExpired as exc:
        raise TdxError(
            f"gpu_setup_command `{shown}` did not finish within {timeout:g} s; "
            f"stderr: {_tail(exc.stderr)}"
        ) from exc
    except OSError as exc:
        raise TdxError(f"gpu_setup_command `{shown}` could not be started: {exc}") from exc
    if returncode != 0:
        raise TdxError(
            f"gpu_setup_command `{shown}` {_exit_description(returncode)}; "
            f"stderr: {_tail(stderr)}"
        )


def prepare_gpus(
    conn: libvirt.virConnect,
    addresses: Sequence[PciAddress],
    *,
    dma_entry_limit: int,
    setup_command: Sequence[str] | None,
    sysfs_root: Path = Path("/"),
) -> None:
    """Validate the GPUs, raise the VFIO DMA entry limit, then run the setup command once.

    Nothing is detached here: managed hostdevs are detached and reattached by libvirt.
    """
    if not addresses:
        return
    lookup_pci_devices(conn, addresses)
    ensure_dma_entry_limit(dma_entry_limit, sysfs_root)
    if setup_command:
        run_setup_command(setup_command, addresses)
