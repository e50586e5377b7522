"""The tiny test guest boots under real libvirt (qemu:///system, TCG) and behaves as documented.

Proves what the other libvirt/e2e tests rely on: the guest reaches userspace, sees its disk
through a qcow2 backing chain, answers SSH-port probes through a QEMU user-network host forward,
powers off on ACPI, and (with IGNORE_ACPI_ARG) ignores ACPI so that only a forced stop works.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import libvirt
import libvirt_qemu
import pytest

from tdx_provider.guest import introspect
from tests.support import guest as tg
from tests.support.cleanup import remove_domain
from tests.support.runs import is_stale, run_prefix

pytestmark = pytest.mark.libvirt

URI = "qemu:///system"
NAME_BASE = "ptdx-test-guest-"
NAME_PREFIX = run_prefix(NAME_BASE)
# The guest reaches userspace in ~4 s under TCG; generous because CI hosts run tests in parallel.
BOOT_TIMEOUT = 90.0
BANNER_TIMEOUT = 30.0
ACPI_POWEROFF_TIMEOUT = 30.0
# How long a guest that ignores ACPI must stay up after shutdown() to count as ignoring it.
IGNORE_ACPI_WINDOW = 5.0
POLL = 0.1


def domain_xml(name: str, guest: tg.TestGuest, disk: Path, console: Path, cmdline: str) -> str:
    """A TCG q35 domain: direct kernel boot, one virtio disk, serial console to a file, and a
    QEMU user network (not a libvirt network) forwarding an ephemeral localhost port to :22.

    The NIC's ``-device`` is JSON on purpose: QEMU 7.2 creates keyval ``-device`` options before
    JSON ones (libvirt's), so ``virtio-net-pci,netdev=n0`` would take PCI slot 1 and libvirt's
    pcie-root-port at 0x1 would then fail. As JSON it is created last, in a free slot."""
    return f"""\
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{escape(name)}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{escape(str(guest.kernel))}</kernel>
    <initrd>{escape(str(guest.initrd))}</initrd>
    <cmdline>{escape(cmdline)}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <!-- a panic or reboot must end the domain, not loop: the test's deadline then reports it -->
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{escape(str(disk))}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'>
      <source path='{escape(str(console))}'/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-netdev'/>
    <qemu:arg value='user,id=n0,hostfwd=tcp:127.0.0.1:0-:22'/>
    <qemu:arg value='-device'/>
    <qemu:arg value='{{"driver":"virtio-net-pci","netdev":"n0"}}'/>
  </qemu:commandline>
</domain>
"""


@dataclass
class Booted:
    dom: libvirt.virDomain
    console: Path
    started: float  # time.monotonic() just before dom.create()

    def console_text(self) -> str:
        try:
            return self.console.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_console(self, marker: str, timeout: float) -> float:
        """Poll the console file until ``marker`` appears; return seconds since start."""
        deadline = time.monotonic() + timeout
        while True:
            if marker in self.console_text():
                return time.monotonic() - self.started
            if not self.dom.isActive():
                pytest.fail(f"domain stopped before {marker!r}; console:\n{self.console_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {marker!r} within {timeout} s; console:\n{self.console_text()}")
            time.sleep(POLL)

    def state(self) -> int:
        return int(self.dom.state()[0])


@pytest.fixture(scope="module")
def conn() -> Iterator[libvirt.virConnect]:
    c = libvirt.open(URI)
    # Leftovers of an interrupted run would only waste memory and CPU: remove them.
    for dom in c.listAllDomains(0):
        if is_stale(dom.name(), NAME_BASE):
            remove_domain(dom)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def boot(conn: libvirt.virConnect, tmp_path: Path) -> Iterator[Callable[[str], Booted]]:
    """Factory: define and start a test-guest domain with the given kernel cmdline."""
    guest = tg.test_guest()
    domains: list[libvirt.virDomain] = []

    def _boot(cmdline: str) -> Booted:
        name = f"{NAME_PREFIX}{uuid.uuid4().hex[:8]}"
        # A throwaway overlay: the guest never writes to the shared base image.
        overlay = tmp_path / f"{name}.qcow2"
        subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-b",
                str(guest.base_image),
                "-F",
                "qcow2",
                str(overlay),
            ],
            check=True,
        )
        console = tmp_path / f"{name}.console.log"
        dom = conn.defineXML(domain_xml(name, guest, overlay, console, cmdline))
        domains.append(dom)
        started = time.monotonic()
        dom.create()
        return Booted(dom=dom, console=console, started=started)

    try:
        yield _boot
    finally:
        for dom in domains:
            remove_domain(dom)


def ssh_banner_port(dom: libvirt.virDomain) -> int:
    out = libvirt_qemu.qemuMonitorCommand(
        dom, "info usernet", libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP
    )
    port = introspect.ssh_port_from_usernet(out)
    assert port is not None, f"no TCP host forward to guest port 22 in:\n{out}"
    return port


def test_guest_boots_serves_ssh_banner_and_powers_off_on_acpi(
    boot: Callable[[str], Booted],
) -> None:
    g = boot(tg.CMDLINE)

    boot_s = g.wait_console(tg.USERSPACE_MARKER, BOOT_TIMEOUT)
    print(f"\nuserspace marker after {boot_s:.2f} s")
    console = g.console_text()
    assert tg.DISK_MARKER in console
    assert tg.IGNORING_ACPI_MARKER not in console

    port = ssh_banner_port(g.dom)
    # Twice: the guest must keep serving connections, as a readiness probe may try several times.
    for _ in range(2):
        assert tg.read_banner(port, BANNER_TIMEOUT) == tg.SSH_BANNER

    t0 = time.monotonic()
    g.dom.shutdown()
    deadline = t0 + ACPI_POWEROFF_TIMEOUT
    while g.state() != libvirt.VIR_DOMAIN_SHUTOFF:
        if time.monotonic() > deadline:
            pytest.fail(
                f"not shut off {ACPI_POWEROFF_TIMEOUT} s after ACPI shutdown; console:\n"
                f"{g.console_text()}"
            )
        time.sleep(POLL)
    print(f"ACPI shutdown -> shut off in {time.monotonic() - t0:.2f} s")
    assert g.dom.state()[1] == libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN
    assert tg.ACPI_POWEROFF_MARKER in g.console_text()


def test_guest_ignoring_acpi_needs_force_off(boot: Callable[[str], Booted]) -> None:
    g = boot(f"{tg.CMDLINE} {tg.IGNORE_ACPI_ARG}")

    g.wait_console(tg.USERSPACE_MARKER, BOOT_TIMEOUT)
    assert tg.IGNORING_ACPI_MARKER in g.console_text()

    g.dom.shutdown()
    window_end = time.monotonic() + IGNORE_ACPI_WINDOW
    while time.monotonic() < window_end:
        assert g.state() == libvirt.VIR_DOMAIN_RUNNING, (
            f"guest stopped although it ignores ACPI; console:\n{g.console_text()}"
        )
        time.sleep(POLL)

    g.dom.destroy()
    assert g.state() == libvirt.VIR_DOMAIN_SHUTOFF
    assert g.dom.state()[1] == libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED
    assert tg.ACPI_POWEROFF_MARKER not in g.console_text()
