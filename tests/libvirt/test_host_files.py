"""Files looked up on the libvirt host through libvirt (storage/host_files.py), and the
TrustDomain preview that uses it for a remote URI.

The host is the upstream libvirtd chrooted in its own root (tests/support/hosts.py): for the
provider another machine. It sees the chroot's files, not ours (``/var/tmp`` and the guest cache
are shared; ``/var/lib`` is not), so a file made only under ``<root>/var/lib/…`` exists there
only, and one made only under our ``/var/lib/…`` exists here only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from tdx_provider.connection import connect
from tdx_provider.resources.trust_domain import TRUST_DOMAIN_RESOURCE
from tdx_provider.storage import host_files
from tdx_provider.storage import pool as pools
from tests.conftest import LIBVIRT_PREFIX
from tests.support.hosts import by_name, upstream_root


@pytest.fixture(scope="module")
def uri() -> str:
    """The upstream host: a failure, never a skip, when it does not answer."""
    host = by_name("upstream")
    host.version()
    return host.uri


@pytest.fixture
def conn(uri: str) -> Iterator[libvirt.virConnect]:
    with connect(uri) as conn:
        yield conn
        assert probe_pools(conn) == [], "a probe pool was left behind"


def probe_pools(conn: libvirt.virConnect) -> list[str]:
    return [p.name() for p in conn.listAllStoragePools(0)
            if p.name().startswith(host_files.PROBE_PREFIX)]


@pytest.fixture
def name() -> str:
    return f"{LIBVIRT_PREFIX}hf-{uuid.uuid4().hex[:8]}"


def remove_pool(conn: libvirt.virConnect, name: str) -> None:
    """Stop and undefine a pool of the test, keeping its files (the fixtures remove them)."""
    pool = conn.storagePoolLookupByName(name)
    if pool.isActive():
        pool.destroy()
    pool.undefine()


@pytest.fixture
def there(name: str) -> Iterator[Path]:
    """``/var/lib/<name>`` as the upstream host sees it (a path of ours under its root)."""
    path = upstream_root() / "var/lib" / name
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def here(name: str) -> Iterator[Path]:
    """``/var/lib/<name>`` on this machine only."""
    path = Path("/var/lib") / name
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def host_path(there: Path, *parts: str) -> str:
    """The path the upstream host knows a file under ``there`` by."""
    return "/" + str(there.relative_to(upstream_root()).joinpath(*parts))


def test_a_file_only_on_the_host_is_found(conn: libvirt.virConnect, there: Path) -> None:
    (there / "vmlinuz").write_bytes(b"kernel")
    path = host_path(there, "vmlinuz")
    assert not Path(path).exists()
    assert host_files.exists_on_host(conn, path) is True
    assert host_files.probe(conn, [path])[path].kind == "file"


def test_a_file_only_here_is_not(conn: libvirt.virConnect, there: Path, here: Path) -> None:
    (here / "vmlinuz").write_bytes(b"kernel")  # the same directory exists on both, empty there
    assert host_files.exists_on_host(conn, str(here / "vmlinuz")) is False
    assert host_files.missing_on_host(conn, [str(here / "vmlinuz")]) == [str(here / "vmlinuz")]


def test_a_directory_missing_on_the_host(conn: libvirt.virConnect, here: Path) -> None:
    (here / "vmlinuz").write_bytes(b"kernel")
    found = host_files.probe(conn, [str(here / "vmlinuz")])[str(here / "vmlinuz")]
    assert found.exists is False and "does not exist" in found.reason


def test_files_of_one_directory_in_one_probe(conn: libvirt.virConnect, there: Path) -> None:
    for file in ("vmlinuz", "initrd.img"):
        (there / file).write_bytes(file.encode())
    (there / "sub").mkdir()
    paths = [host_path(there, f) for f in ("vmlinuz", "initrd.img", "nope", "sub")]
    found = host_files.probe(conn, paths)
    assert [found[p].exists for p in paths] == [True, True, False, True]
    assert found[paths[3]].kind == "dir"


def test_a_path_in_a_pools_directory_refreshes_that_pool_and_keeps_it(
        conn: libvirt.virConnect, there: Path, name: str) -> None:
    target = host_path(there)
    pools.ensure(conn, name, target, autostart=False)
    try:
        (there / "OVMF.fd").write_bytes(b"firmware")  # after the pool's last refresh
        assert host_files.exists_on_host(conn, host_path(there, "OVMF.fd")) is True
        assert host_files.exists_on_host(conn, host_path(there, "missing.fd")) is False
        (there / "OVMF.fd").unlink()  # listed by the pool, gone from the disk
        assert host_files.exists_on_host(conn, host_path(there, "OVMF.fd")) is False
        assert conn.storagePoolLookupByName(name).isActive()
    finally:
        remove_pool(conn, name)


def test_an_inactive_pool_on_the_directory_cannot_tell(conn: libvirt.virConnect, there: Path,
                                                       name: str) -> None:
    (there / "OVMF.fd").write_bytes(b"firmware")
    conn.storagePoolDefineXML(f"<pool type='dir'><name>{name}</name><target><path>"
                              f"{host_path(there)}</path></target></pool>", 0)
    try:
        found = host_files.probe(conn, [host_path(there, "OVMF.fd")])
        assert [f.exists for f in found.values()] == [None]
        assert name in next(iter(found.values())).reason
        assert not conn.storagePoolLookupByName(name).isActive()
    finally:
        remove_pool(conn, name)


def test_a_read_only_connection_cannot_tell(uri: str, there: Path) -> None:
    (there / "vmlinuz").write_bytes(b"kernel")
    ro = libvirt.openReadOnly(uri)
    try:
        found = host_files.probe(ro, [host_path(there, "vmlinuz")])
        assert [f.exists for f in found.values()] == [None]
        assert "read only" in next(iter(found.values())).reason
    finally:
        ro.close()


def test_a_probe_pool_of_a_killed_check_is_stopped_by_the_next(
        conn: libvirt.virConnect, there: Path, name: str) -> None:
    """A check killed between making its probe pool and stopping it leaves the pool running;
    the next check stops it, and answers through it while it runs."""
    (there / "vmlinuz").write_bytes(b"kernel")
    left = host_files.probe_name(time.time() - 2 * host_files.STALE_SECONDS)
    fresh = host_files.probe_name()
    other = there / "other"
    other.mkdir()
    conn.storagePoolCreateXML(f"<pool type='dir'><name>{left}</name><target><path>"
                              f"{host_path(there)}</path></target></pool>", 0)
    conn.storagePoolCreateXML(f"<pool type='dir'><name>{fresh}</name><target><path>"
                              f"{host_path(there, 'other')}</path></target></pool>", 0)
    try:
        assert host_files.exists_on_host(conn, host_path(there, "nope")) is False
        assert probe_pools(conn) == [fresh]  # a live check's probe stays
    finally:
        conn.storagePoolLookupByName(fresh).destroy()


CHECKER = """
import json, sys, threading, time
from tdx_provider.connection import connect
from tdx_provider.storage.host_files import exists_on_host
uri, start, rounds, paths = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
answers = []
def check():
    with connect(uri) as conn:
        for _ in range(rounds):
            answers.append([exists_on_host(conn, p) for p in paths])
threads = [threading.Thread(target=check) for _ in range(2)]
time.sleep(max(0.0, start - time.time()))
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(answers))
"""


def test_concurrent_checks_of_one_directory_all_answer(uri: str, there: Path) -> None:
    """Checks in several processes collide on the directory (libvirt takes one pool per
    target): each answers, through its own probe or another's, and no probe is left. (Threads
    of one process take turns per directory; two per process make sure that holds too.)"""
    (there / "vmlinuz").write_bytes(b"kernel")
    paths = [host_path(there, "vmlinuz"), host_path(there, "nope")]
    processes, rounds = 3, 15
    start = time.time() + 2  # all begin together, after the imports
    runs = [subprocess.Popen([sys.executable, "-c", CHECKER, uri, str(start), str(rounds),
                              *paths], stdout=subprocess.PIPE, text=True)
            for _ in range(processes)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0] * processes
    answers = [answer for out in outputs for answer in json.loads(out)]
    assert answers == [[True, False]] * processes * 2 * rounds
    with connect(uri) as conn:
        assert probe_pools(conn) == []


# --- the TrustDomain preview against the host -----------------------------------------------


def preview(uri: str, **inputs: Any) -> dict[str, str]:
    news = {"uri": uri, "name": "td-files", "overlay": "/var/lib/libvirt/images/td.qcow2",
            "owner": {"project": "p", "stack": "s", "resource": "td"}, "memory_mib": 256,
            "vcpus": 1, "tdx": False, "domain_type": "qemu", "network": None, "vsock": False,
            **inputs}
    checked = TRUST_DOMAIN_RESOURCE.check({}, news)
    return {f.property: f.reason for f in checked.failures}


def test_preview_fails_a_kernel_missing_on_the_host(uri: str, conn: libvirt.virConnect,
                                                    there: Path, here: Path) -> None:
    (here / "vmlinuz").write_bytes(b"kernel")  # here, where Pulumi runs, but not there
    failures = preview(uri, kernel=str(here / "vmlinuz"))
    assert list(failures) == ["kernel"]
    assert f"file '{here / 'vmlinuz'}' does not exist on {uri}" in failures["kernel"]


def test_preview_passes_a_kernel_present_on_the_host(uri: str, conn: libvirt.virConnect,
                                                     there: Path) -> None:
    (there / "vmlinuz").write_bytes(b"kernel")
    (there / "initrd.img").write_bytes(b"initrd")
    assert preview(uri, kernel=host_path(there, "vmlinuz"),
                   initrd=host_path(there, "initrd.img")) == {}


def test_preview_fails_firmware_and_initrd_by_name(uri: str, conn: libvirt.virConnect,
                                                   there: Path) -> None:
    (there / "vmlinuz").write_bytes(b"kernel")
    failures = preview(uri, kernel=host_path(there, "vmlinuz"),
                       initrd=host_path(there, "initrd.img"),
                       firmware=host_path(there, "nope", "OVMF.fd"))
    assert sorted(failures) == ["firmware", "initrd"]
    assert "does not exist on" in failures["initrd"]
    assert "does not exist on" in failures["firmware"]


# --- a real remote transport: qemu+ssh:// to this machine's libvirtd -------------------------


def test_over_ssh_a_file_of_that_host_is_found_and_a_missing_kernel_fails(
        scratch_dir: Path) -> None:
    """Through ssh (scripts/setup-sshd.sh) the host is this machine's system libvirtd, which
    sees our files: a file here is found there, a missing one fails ``kernel`` at preview."""
    uri = os.environ["PULUMI_TDX_SSH_URI"]  # scripts/env.sh
    (scratch_dir / "vmlinuz").write_bytes(b"kernel")
    with connect(uri) as conn:
        assert host_files.exists_on_host(conn, str(scratch_dir / "vmlinuz")) is True
        assert host_files.exists_on_host(conn, str(scratch_dir / "nope")) is False
        assert probe_pools(conn) == []
    failures = preview(uri, kernel=str(scratch_dir / "nope"))
    assert list(failures) == ["kernel"] and "does not exist on qemu+ssh://" in failures["kernel"]
    assert preview(uri, kernel=str(scratch_dir / "vmlinuz")) == {}
