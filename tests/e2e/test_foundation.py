"""Foundation proofs: the Pulumi chain pickles our provider by reference, and a second
`make setup` changes nothing."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.guest import cache_dir
from tests.support.hosts import hosts, upstream_root
from tests.support.programs import program
from tests.support.stack import REPO_ROOT, Stack

pytestmark = pytest.mark.e2e


def test_dynamic_provider_is_pickled_by_reference_and_round_trips_through_libvirt(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path
) -> None:
    import libvirt

    stack = make_stack(program("pool_without_autostart"))
    stack.config({"name": e2e_id, "path": str(work_dir / "pool")})
    assert "+ 2 to create" in stack.preview().output
    stack.up()
    conn = libvirt.open("qemu:///system")
    try:
        assert conn.storagePoolLookupByName(e2e_id).isActive()
        [resource] = stack.resources()
        pickled = base64.b64decode(resource["outputs"]["__provider"]["plaintext"].strip('"'))
        # by reference: module and class name, not the class's code
        assert b"tdx_provider.dynamic.pool" in pickled and b"PoolProvider" in pickled
        assert len(pickled) < 400, len(pickled)
        stack.destroy()
        assert e2e_id not in [p.name() for p in conn.listAllStoragePools(0)]
    finally:
        conn.close()


def _fingerprint(paths: list[Path]) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in paths}


def _bin_entries() -> dict[str, str]:
    """The Pulumi entries of .venv/bin: link targets, and the text of the `pulumi` wrapper."""
    return {p.name: str(p.readlink()) if p.is_symlink() else p.read_text()
            for p in (REPO_ROOT / ".venv" / "bin").glob("pulumi*")}


def upstream_daemons() -> list[int]:
    """PIDs of the processes chrooted in the upstream root (its virtlogd and libvirtd)."""
    root = str(upstream_root())
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if str((proc / "root").readlink()) == root:
                pids.append(int(proc.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return sorted(pids)


def test_second_setup_changes_nothing() -> None:
    for host in hosts():
        host.version()  # both hosts answer before (and after) the second setup
    daemons_before = upstream_daemons()
    assert daemons_before, f"no daemon runs chrooted in {upstream_root()}"
    watched = [
        Path("/etc/libvirt/qemu.conf"),
        REPO_ROOT / ".venv" / ".pulumi-tdx-installed",
        (REPO_ROOT / ".venv" / "bin" / "pulumi").resolve(),
        (REPO_ROOT / ".venv" / "bin" / "pulumi-language-python").resolve(),
        (REPO_ROOT / ".venv" / "bin" / "pulumi-language-nodejs").resolve(),
        (REPO_ROOT / ".venv" / "bin" / "pulumi-language-go").resolve(),
        # scripts/setup-typescript.sh: npm and tsc ran once and do not run again
        REPO_ROOT / "examples" / "typescript" / "node_modules" / ".pulumi-tdx-lock",
        REPO_ROOT / "sdk" / "nodejs" / "bin" / "index.js",
        cache_dir() / "vmlinuz",
        cache_dir() / "initramfs.cpio.gz",
        cache_dir() / "base.qcow2",
        upstream_root() / ".pulumi-tdx-stamp",
        upstream_root() / "etc" / "libvirt" / "qemu.conf",
        upstream_root() / "run" / "pulumi-tdx-started",
        upstream_root() / "run" / "libvirtd.pid",
        upstream_root() / "run" / "libvirt" / "libvirt-sock",
    ]
    before = _fingerprint(watched)
    links_before = _bin_entries()
    proc = subprocess.run(["bash", "scripts/setup.sh"], cwd=REPO_ROOT, capture_output=True,
                          text=True, check=True, timeout=300)
    assert _fingerprint(watched) == before
    assert _bin_entries() == links_before
    for word in ("installing", "building", "linked", "wrote", "restarting", "starting",
                 "stopping"):
        assert word not in (proc.stdout + proc.stderr).lower(), proc.stdout + proc.stderr
    # the upstream host's daemons are the same processes, still answering
    assert upstream_daemons() == daemons_before
    for host in hosts():
        host.version()
