"""Shared constants and helpers: names, paths, the guest, cleanup, timing, machine facts."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Self

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # tests.support is not an installed package
    sys.path.insert(0, str(REPO_ROOT))

import libvirt  # noqa: E402

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # we handle errors ourselves

from tests.support import guest as test_guest_support  # noqa: E402
from tests.support.cleanup import remove_prefixed, remove_stale  # noqa: E402
from tests.support.hosts import hosts  # noqa: E402
from tests.support.runs import run_prefix  # noqa: E402
from tests.support.stack import pulumi_env  # noqa: E402, F401 (re-exported)

URI = "qemu:///system"
# The lifecycle table runs on every libvirt host of the test matrix (tests/support/hosts.py):
# "debian" (URI) and "upstream" (the sid libvirt that `make setup` starts).
HOSTS: dict[str, str] = {host.name: host.uri for host in hosts()}
BASE_PREFIX = "ptdx-bench-"
PREFIX = run_prefix(BASE_PREFIX)  # unique to this run: see tests/support/runs.py
BENCH_ROOT = Path("/var/tmp/pulumi-tdx-bench")
CONSOLE_DIR = BENCH_ROOT / "console"
RESULTS_DIR = REPO_ROOT / "bench" / "results"
VENV = REPO_ROOT / ".venv"

# Every guest in every benchmark: the tiny TCG test guest, no TDX, no network, no vsock.
MEMORY_MIB = 256
VCPUS = 1
DOMAIN_TYPE = "qemu"
SHUTDOWN_TIMEOUT = 60
BOOT_TIMEOUT = 240.0
# After every console shows the userspace marker, wait this long (untimed) before teardown: the
# marker is printed right after acpid is started, and an ACPI press that lands before acpid has
# opened the input device is lost (both our delete and the floor then press again after 5 s).
BOOT_SETTLE = 1.0
CMDLINE = test_guest_support.CMDLINE
USERSPACE_MARKER = test_guest_support.USERSPACE_MARKER
ACPI_MARKER = test_guest_support.ACPI_POWEROFF_MARKER
# Printed by the guest kernel (pr_emerg, so visible at loglevel=4) as its very last line.
POWER_DOWN_MARKER = "reboot: Power down"

TestGuest = test_guest_support.TestGuest


def test_guest() -> TestGuest:
    return test_guest_support.test_guest()


def now() -> float:
    return time.monotonic()


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


@contextlib.contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` then ``t[0]`` holds the elapsed seconds."""
    box: list[float] = []
    start = time.monotonic()
    try:
        yield box
    finally:
        box.append(time.monotonic() - start)


def console_log(domain_name: str) -> Path:
    return CONSOLE_DIR / f"{domain_name}.log"


def pool_dir(pool_name: str) -> Path:
    # remove_prefixed deletes a pool's directory only when its name carries the prefix.
    return BENCH_ROOT / pool_name


def clear_libvirt(prefix: str = PREFIX, uri: str = URI) -> None:
    """Destroy and remove every libvirt object whose name starts with ``prefix``, and what
    ended benchmark runs left behind."""
    conn = libvirt.open(uri)
    try:
        remove_prefixed(conn, prefix)
        remove_stale(conn, BASE_PREFIX)
    finally:
        conn.close()


def leftovers(prefix: str = PREFIX, uri: str = URI) -> list[str]:
    """Names of domains and pools with our prefix that still exist."""
    conn = libvirt.open(uri)
    try:
        names = [d.name() for d in conn.listAllDomains(0) if d.name().startswith(prefix)]
        names += [p.name() for p in conn.listAllStoragePools(0) if p.name().startswith(prefix)]
        return sorted(names)
    finally:
        conn.close()


def reset_consoles() -> None:
    shutil.rmtree(CONSOLE_DIR, ignore_errors=True)
    CONSOLE_DIR.mkdir(parents=True, exist_ok=True)


def _command_output(*argv: str) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False,
                              timeout=30).stdout.strip()
    except OSError:
        return ""


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    versions = host_versions()
    pulumi_version = _command_output(str(VENV / "bin" / "pulumi"), "version")
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "libvirt": versions["debian"]["libvirt"],
        "qemu": versions["debian"]["qemu"],
        "hosts": versions,
        "pulumi_cli": pulumi_version,
        "kvm": "unused: guests run under TCG (domain type 'qemu'), tdx off",
        "loadavg_at_start": os.getloadavg()[0],
        "git": git_state(),
    }


def host_versions() -> dict[str, dict[str, str]]:
    """Each libvirt host's URI and its libvirt and QEMU versions (a missing host raises)."""
    found = {}
    for host in hosts():
        libvirt_version, qemu_version = host.version()
        found[host.name] = {"uri": host.uri, "libvirt": libvirt_version, "qemu": qemu_version}
    return found


def git_state() -> dict[str, Any]:
    """The commit measured, and which engine/SDK files differed from it (the tree is shared)."""
    head = _command_output("git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD")
    status = _command_output("git", "-C", str(REPO_ROOT), "status", "--porcelain", "--",
                             "provider", "sdk", "pyproject.toml", "scripts/env.sh")
    return {"commit": head,
            "uncommitted": [line.split(maxsplit=1)[-1] for line in status.splitlines()]}


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


class Poller:
    """A daemon thread that calls ``tick()`` every ``interval`` seconds while the ``with``
    block runs."""

    interval: float = 0.01
    thread_name: str = "poller"

    def __init__(self) -> None:
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.tick()
            if self._stop.wait(self.interval):
                return

    def tick(self) -> None:
        raise NotImplementedError
