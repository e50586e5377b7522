"""The tiny bootable test guest built by ``scripts/build-test-guest.sh`` (``make setup``).

The guest is a Debian cloud kernel plus a busybox initramfs. Its ``/init`` prints the marker
lines below on the serial console, answers TCP port 22 with :data:`SSH_BANNER`, and powers off
on the ACPI power button unless the kernel command line contains :data:`IGNORE_ACPI_ARG`.
The marker strings are a contract with the script's guest text: change both together.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

# Kernel command line for direct boot. loglevel=4 keeps the console log short but still shows
# warnings and panics; the markers are printed by /init regardless of the log level.
# no_timer_check: on a 2-core machine at load 10+, a TCG guest's kernel can fail its IO-APIC
# timer check and panic ("IO-APIC + timer doesn't work!", 2 of 8 bench guests on 2026-12-02);
# the check tests the emulated hardware, not what the tests are about.
CMDLINE = "console=ttyS0 loglevel=4 no_timer_check"
# Appended to CMDLINE: /init does not start acpid, so only a forced power-off stops the guest.
IGNORE_ACPI_ARG = "pulumi_tdx_guest.ignore_acpi=1"

# Printed after DHCP, the port-22 banner service and acpid are up: the guest is ready.
USERSPACE_MARKER = "pulumi-tdx-guest: userspace reached"
ACPI_POWEROFF_MARKER = "pulumi-tdx-guest: acpi power button, powering off"
IGNORING_ACPI_MARKER = "pulumi-tdx-guest: ignoring acpi"
# With base.qcow2 (directly or through an overlay) attached as the first virtio disk.
DISK_MARKER = "pulumi-tdx-guest: disk vda 131072 sectors, first byte a5"
# With a cloud-init seed (a volume labelled cidata) attached: "<marker> /dev/vdb: FILES", then the
# instance-id, the host name it set, and one line per SSH public key ("<marker> TYPE BASE64").
SEED_MARKER = "pulumi-tdx-guest: seed"
SEED_INSTANCE_MARKER = "pulumi-tdx-guest: seed instance-id"
HOSTNAME_MARKER = "pulumi-tdx-guest: hostname"
SSH_KEY_MARKER = "pulumi-tdx-guest: ssh key"
# The line (without CRLF) the guest sends to every connection on port 22.
SSH_BANNER = "SSH-2.0-pulumi-tdx-test-guest"


class TestGuestMissingError(RuntimeError):
    """The test guest has not been built."""

    __test__: ClassVar[bool] = False


@dataclass(frozen=True)
class TestGuest:
    """Paths of the built test guest: direct-boot kernel and initrd, and a qcow2 backing image."""

    __test__: ClassVar[bool] = False  # not a pytest test class despite the name

    kernel: Path
    initrd: Path
    base_image: Path


def cache_root() -> Path:
    """``$PULUMI_TDX_CACHE`` with the default of scripts/env.sh."""
    root = os.environ.get("PULUMI_TDX_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "pulumi-tdx")
    return Path(root)


def cache_dir() -> Path:
    """Where ``scripts/build-test-guest.sh`` puts the guest by default (same lookup)."""
    return cache_root() / "guest"


def test_guest() -> TestGuest:
    """Return the built test guest, or raise :class:`TestGuestMissingError` (never skip)."""
    directory = cache_dir()
    guest = TestGuest(
        kernel=directory / "vmlinuz",
        initrd=directory / "initramfs.cpio.gz",
        base_image=directory / "base.qcow2",
    )
    missing = [str(p) for p in (guest.kernel, guest.initrd, guest.base_image) if not p.is_file()]
    if missing:
        raise TestGuestMissingError(
            f"test guest not built (missing: {', '.join(missing)}); run `make setup` "
            f"(or `scripts/build-test-guest.sh {directory}`)"
        )
    return guest


test_guest.__test__ = False  # type: ignore[attr-defined]  # a helper, not a pytest test


POLL_SECONDS = 0.1


def read_banner(port: int, timeout: float, host: str = "127.0.0.1") -> str:
    """Connect to a forwarded port and read one line. Slirp accepts on the host side even
    before the guest listens (and then closes), so retry until a line arrives or time runs out."""
    import socket
    import time

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=5) as sock:
                line = sock.makefile("rb").readline()
            if line:
                return line.decode("ascii", errors="replace").rstrip("\r\n")
            last = EOFError("connection closed before a banner")
        except OSError as exc:
            last = exc
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"no banner on {host}:{port} within {timeout} s: {last}")


def wait_for_text(path: Path, marker: str, timeout: float) -> float:
    """Poll a console log until ``marker`` appears; return the seconds it took."""
    import time

    start = time.monotonic()
    while True:
        text = path.read_text(errors="replace") if path.exists() else ""
        if marker in text:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"no {marker!r} in {path} within {timeout} s:\n{text[-2000:]}")
        time.sleep(POLL_SECONDS)
