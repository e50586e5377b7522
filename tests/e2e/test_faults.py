"""Faults through the real Pulumi CLI: nothing half-made, reruns converge.

- A failure injected at each step of a trust domain's create (QEMU cannot load the kernel so
  start fails; libvirt rejects the definition; the GPU setup command exits non-zero) leaves no
  domain, no volume and no file of that step behind, and the next `up` converges.
- libvirtd restarted in the middle of `pulumi up` (a private libvirtd, see
  tests/support/private_libvirtd.py, so nobody else's daemon is touched).
- `pulumi up` interrupted like a Ctrl-C (SIGINT to its process group), once (Pulumi cancels
  gracefully) and twice (Pulumi exits at once, leaving pending operations).
- Leftovers of an interrupted run are adopted when they carry our owner tag and match;
  anything foreign with a colliding name is an error that names it.

Each test runs on both libvirt hosts of the matrix (``libvirt_host``: debian, upstream) except
two that stay on this machine's Debian libvirt: the GPU setup command (GPU preparation is for a
local libvirtd only: it writes this machine's sysfs and runs a local command) and the libvirtd
restart (a private copy of the Debian daemon; the upstream daemon is shared by every run on the
machine and is not ours to restart).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import libvirt
import pytest

from tdx_provider.connection import connect, is_local_uri, is_no_such
from tdx_provider.guest import domain, xml
from tdx_provider.metadata import Owner
from tdx_provider.storage import ledger, pool, volume
from tests.support import fleet
from tests.support import guest as tg
from tests.support.hosts import LibvirtHost
from tests.support.private_libvirtd import PrivateLibvirtd, namespaces_available
from tests.support.stack import REPO_ROOT, Stack
from tests.support.watch import DomainsDefined

pytestmark = pytest.mark.e2e
URI = "qemu:///system"  # the single-host tests
PROJECT, STACK = "ptdx-e2e", "test"  # what Stack() names them: our owner tags carry these
HOST_BRIDGE = "0000:00:00.0"


def owner(resource: str) -> Owner:
    return Owner(PROJECT, STACK, resource)


def make_fleet(make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path,
               guest: tg.TestGuest, overlays: int, domains: int, **kwargs: object) -> Stack:
    extra_env = kwargs.pop("extra_env", None)
    kwargs.setdefault("shutdown_timeout", 1)  # teardown speed; graceful stops are not the point
    stack = make_stack(fleet.PROGRAM, extra_env=extra_env)
    return fleet.configure(stack, prefix=e2e_id, work=work_dir, guest=guest,
                           overlays=overlays, domains=domains, **kwargs)


def assert_converged(stack: Stack, uri: str, prefix: str, overlays: int, domains: int,
                     pending_ok: bool = False) -> None:
    names = fleet.names_in_state(stack)
    assert fleet.duplicated(names) == []
    assert names == fleet.expected_names(overlays, domains)
    if not pending_ok:
        assert fleet.pending_operations(stack) == []
    assert fleet.as_dict(fleet.holdings(uri, prefix)) == fleet.expected_holdings(
        prefix, overlays, domains)


def pool_files(work_dir: Path) -> list[str]:
    path = work_dir / "pool"
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


# --- a failure at each step of create ---------------------------------------------------------


def test_a_start_that_fails_leaves_no_domain_and_the_next_up_converges(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest,
    libvirt_host: LibvirtHost,
) -> None:
    uri = libvirt_host.uri
    empty_kernel = work_dir / "empty-vmlinuz"
    empty_kernel.write_bytes(b"")  # exists (preview passes); QEMU cannot load it (start fails)
    stack = make_fleet(make_stack, e2e_id, work_dir, guest, uri=uri, overlays=1, domains=1,
                       td_extra=json.dumps({"kernel": str(empty_kernel)}))
    result = stack.up(check=False)
    assert result.returncode != 0
    assert f"cannot start '{e2e_id}-td-0'" in result.output, result.output
    assert "could not load kernel" in result.output  # QEMU's reason reaches the user
    assert fleet.holdings(uri, e2e_id).domains == ()
    if is_local_uri(uri):  # the console log the failed start made (another host's: not ours)
        assert not (work_dir / "td-0.log").exists()
    assert fleet.names_in_state(stack) == ["base", "disk-0", "pool"]  # those did succeed
    assert pool_files(work_dir) == sorted([f"{e2e_id}-base", f"{e2e_id}-disk-0",
                                           ledger.LEDGER_VOLUME])

    stack.config({"td_extra": "{}"})
    stack.up()
    assert_converged(stack, uri, e2e_id, overlays=1, domains=1)


COMMON_DEVICES = "_common_devices.xml.j2"
SECOND_VDA = """
    <disk type='file' device='disk'>
      <source file='{{ disk.path }}'/>
      <target dev='vda' bus='virtio'/>
    </disk>"""


def test_a_definition_libvirt_rejects_leaves_no_domain_and_the_next_up_converges(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest,
    libvirt_host: LibvirtHost,
) -> None:
    uri = libvirt_host.uri
    # Valid for the RelaxNG schema (so preview passes), refused by libvirt's own define:
    # a second disk that claims target vda too.
    ours = (REPO_ROOT / "provider/tdx_provider/guest/templates/regular_vm.xml.j2").read_text()
    include = f'{{% include "{COMMON_DEVICES}" %}}'
    assert include in ours
    template = work_dir / "two-vda.xml.j2"
    template.write_text(ours.replace(include, include + SECOND_VDA))
    stack = make_fleet(make_stack, e2e_id, work_dir, guest, uri=uri, overlays=1, domains=1,
                       td_extra=json.dumps({"template": str(template)}))
    result = stack.up(check=False)
    assert result.returncode != 0
    assert f"libvirt refused to define '{e2e_id}-td-0'" in result.output, result.output
    assert "vda" in result.output
    assert fleet.holdings(uri, e2e_id).domains == ()
    assert "td-0" not in fleet.names_in_state(stack)

    stack.config({"td_extra": "{}"})
    stack.up()
    assert_converged(stack, uri, e2e_id, overlays=1, domains=1)


SETUP_SCRIPT = """
import json, sys
with open(sys.argv[1], "w") as out:
    json.dump(sys.argv[2:], out)
sys.stderr.write("vfio-pci: cannot bind " + " ".join(sys.argv[2:]) + "\\n")
sys.exit(3)
"""


def host_can_pass_devices_through() -> bool:
    groups = Path("/sys/kernel/iommu_groups")
    return groups.is_dir() and any(groups.iterdir())


def test_a_gpu_setup_command_that_fails_leaves_no_domain_and_the_next_up_converges(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest
) -> None:
    """The real GPU path on this host: the BDF is a PCI device libvirt lists (the host bridge;
    we have no GPUs), so the preview check passes and create prepares it: the DMA limit is
    raised (in a fixture sysfs tree, via PULUMI_TDX_HOST_ROOT) and the setup command runs with
    the BDF appended. It exits 3, so the domain is never started and is undefined again.

    Safety: without IOMMU groups libvirt cannot detach any device for VFIO, so even a broken
    engine that started the domain could not take the host bridge away."""
    if host_can_pass_devices_through():
        pytest.skip("this host has IOMMU groups: a regression could detach a real device")
    sysfs = work_dir / "sysfs"
    shutil.copytree(REPO_ROOT / "tests/fixtures/sysfs-tdx-ready", sysfs)
    dma_limit = sysfs / "sys/module/vfio_iommu_type1/parameters/dma_entry_limit"
    before = int(dma_limit.read_text())
    script = work_dir / "gpu-setup.py"
    script.write_text(SETUP_SCRIPT)
    called = work_dir / "gpu-setup-called.json"
    td_extra = {"gpus": [HOST_BRIDGE], "dma_entry_limit": before + 1,
                "gpu_setup_command": [sys.executable, str(script), str(called)]}
    stack = make_fleet(make_stack, e2e_id, work_dir, guest, overlays=1, domains=1,
                       td_extra=json.dumps(td_extra),
                       extra_env={"PULUMI_TDX_HOST_ROOT": str(sysfs)})
    result = stack.up(check=False)
    assert result.returncode != 0
    assert "gpu_setup_command" in result.output and "exit code 3" in result.output, result.output
    assert f"vfio-pci: cannot bind {HOST_BRIDGE}" in result.output  # its stderr, for the user
    assert json.loads(called.read_text()) == [HOST_BRIDGE]
    assert int(dma_limit.read_text()) == before + 1
    assert fleet.holdings(URI, e2e_id).domains == ()
    assert "td-0" not in fleet.names_in_state(stack)

    stack.config({"td_extra": "{}"})
    stack.up()
    assert_converged(stack, URI, e2e_id, overlays=1, domains=1)


# --- leftovers: adopted when ours and matching, an error naming it when foreign ----------------


def make_leftovers(uri: str, e2e_id: str, work_dir: Path, guest: tg.TestGuest) -> dict[str, str]:
    """What an interrupted `up` of the fleet (1 overlay, 1 domain) leaves: every object made,
    none recorded in the state. Made with the engine, with the owner tags the stack uses."""
    with connect(uri) as conn:
        pool.ensure(conn, e2e_id, str(work_dir / "pool"), autostart=False,
                    owner=owner("pool"))
        base, _ = volume.import_base(conn, e2e_id, f"{e2e_id}-base", str(guest.base_image),
                                     owner("base"))
        disk = volume.create_overlay(conn, e2e_id, f"{e2e_id}-disk-0", base.path,
                                     owner("disk-0"))
        spec = xml.DomainSpec(
            name=f"{e2e_id}-td-0", owner=owner("td-0"), memory_mib=128, vcpus=1, tdx=False,
            domain_type="qemu", disk=xml.Disk(disk.path, (xml.BackingLayer(base.path, "qcow2"),)),
            kernel=str(guest.kernel), initrd=str(guest.initrd), cmdline=tg.CMDLINE, vsock=False,
            network=None, console_log=str(work_dir / "td-0.log"), shutdown_timeout=5,
        )
        info = domain.create(conn, f"{e2e_id}-td-0", xml.render_and_validate(spec), owner("td-0"))
        return {"base": base.key, "disk": disk.key, "uuid": info.uuid}


def test_leftovers_of_an_interrupted_run_that_are_ours_and_match_are_adopted(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest,
    libvirt_host: LibvirtHost,
) -> None:
    uri = libvirt_host.uri
    made = make_leftovers(uri, e2e_id, work_dir, guest)
    stack = make_fleet(make_stack, e2e_id, work_dir, guest, uri=uri, overlays=1, domains=1)
    stack.up()
    assert_converged(stack, uri, e2e_id, overlays=1, domains=1)
    outputs = {r["urn"].rsplit("::", 1)[-1]: r["outputs"] for r in stack.resources()}
    assert outputs["base"]["key"] == made["base"]
    assert outputs["disk-0"]["key"] == made["disk"]
    assert outputs["td-0"]["uuid"] == made["uuid"]  # the same domain, not a second one
    stack.destroy()
    assert fleet.as_dict(fleet.holdings(uri, e2e_id)) == fleet.nothing(e2e_id)
    assert not (work_dir / "pool").exists()  # ours: removed, not kept as someone else's


def foreign_volume(conn: libvirt.virConnect, pool_name: str, name: str) -> None:
    conn.storagePoolLookupByName(pool_name).createXML(
        f"<volume><name>{name}</name><capacity>1048576</capacity>"
        "<target><format type='raw'/></target></volume>", 0)


def test_foreign_objects_with_colliding_names_are_errors_that_name_them(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest,
    libvirt_host: LibvirtHost,
) -> None:
    uri = libvirt_host.uri
    stack = make_fleet(make_stack, e2e_id, work_dir, guest, uri=uri, overlays=1, domains=1)
    with connect(uri) as conn:
        # a pool of another name already on our path
        pool.ensure(conn, f"{e2e_id}-other", str(work_dir / "pool"), autostart=False)
    result = stack.up(check=False)
    assert result.returncode != 0
    assert f"already the target of pool '{e2e_id}-other'" in result.output, result.output
    with connect(uri) as conn:
        pool.delete(conn, f"{e2e_id}-other")
        pool.ensure(conn, e2e_id, str(work_dir / "pool"), autostart=False,
                    owner=owner("pool"))
        # a volume nobody recorded, where our base image goes
        foreign_volume(conn, e2e_id, f"{e2e_id}-base")
    result = stack.up(check=False)
    assert result.returncode != 0
    assert (f"volume '{e2e_id}-base' already exists in pool '{e2e_id}' and was not created by "
            "pulumi-tdx") in result.output, result.output
    with connect(uri) as conn:
        conn.storagePoolLookupByName(e2e_id).storageVolLookupByName(f"{e2e_id}-base").delete(0)
        base, _ = volume.import_base(conn, e2e_id, f"{e2e_id}-base", str(guest.base_image),
                                     owner("base"))
        # an overlay of ours, but recorded for another stack's resource
        volume.create_overlay(conn, e2e_id, f"{e2e_id}-disk-0", base.path,
                              Owner(PROJECT, "another-stack", "disk-0"))
    result = stack.up(check=False)
    assert result.returncode != 0
    assert (f"volume '{e2e_id}-disk-0' already exists in pool '{e2e_id}' (owned by "
            f"{PROJECT}/another-stack/disk-0)") in result.output, result.output
    with connect(uri) as conn:
        volume.delete(conn, e2e_id, f"{e2e_id}-disk-0")
        # a domain that is not ours (no owner tag) with the name of our trust domain
        conn.defineXML(f"<domain type='qemu'><name>{e2e_id}-td-0</name><memory>65536</memory>"
                       "<os><type arch='x86_64'>hvm</type></os></domain>")
    result = stack.up(check=False)
    assert result.returncode != 0
    assert (f"a domain named '{e2e_id}-td-0' already exists (not created by pulumi-tdx)"
            in result.output), result.output
    with connect(uri) as conn:
        foreign = conn.lookupByName(f"{e2e_id}-td-0")
        assert domain.instance_of(foreign) is None  # untouched
        foreign.undefine()
    stack.up()
    assert_converged(stack, uri, e2e_id, overlays=1, domains=1)


# --- libvirtd restarted in the middle of `pulumi up` ------------------------------------------


def restart_when(daemon: PrivateLibvirtd, ready: Callable[[libvirt.virConnect], bool],
                 timeout: float = 120.0) -> threading.Thread:
    """A thread that polls the daemon and restarts it as soon as ``ready`` says so."""
    events: dict[str, object] = {}

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with connect(daemon.uri) as conn:
                    if ready(conn):
                        events["restart_seconds"] = daemon.restart()
                        return
            except Exception:  # not up yet, or mid-call: poll again
                pass
            time.sleep(0.02)
        events["timeout"] = True

    thread = threading.Thread(target=watch, daemon=True)
    thread.events = events  # type: ignore[attr-defined]
    thread.start()
    return thread


def volumes_under(prefix: str, kind: str) -> Callable[[libvirt.virConnect], bool]:
    def ready(conn: libvirt.virConnect) -> bool:
        lib_pool = conn.storagePoolLookupByName(prefix)
        return any(v.startswith(f"{prefix}-{kind}") for v in pool.volume_names(lib_pool))
    return ready


def domains_named(names: list[str]) -> Callable[[libvirt.virConnect], bool]:
    """Ready once one of ``names`` is defined: asked by name, never by listing the host's
    domains (a listing waits for any guest libvirt is stopping, anyone's)."""
    def ready(conn: libvirt.virConnect) -> bool:
        for name in names:
            try:
                conn.lookupByName(name)
                return True
            except libvirt.libvirtError as exc:
                if not is_no_such(exc):
                    raise
        return False
    return ready


def domain_names(prefix: str, domains: int) -> list[str]:
    return [f"{prefix}-td-{i}" for i in range(domains)]


@pytest.fixture
def private_libvirtd(work_dir: Path) -> Iterator[PrivateLibvirtd]:
    if not namespaces_available():
        pytest.fail("a private libvirtd needs root and mount namespaces (unshare)")
    daemon = PrivateLibvirtd(work_dir / "libvirtd")
    daemon.start()
    yield daemon
    daemon.remove_everything()


OVERLAYS_IN_RESTART = 6
DOMAINS_IN_RESTART = 2


def test_libvirtd_restarted_during_up_then_the_next_up_converges(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest,
    private_libvirtd: PrivateLibvirtd,
) -> None:
    uri = private_libvirtd.uri
    stack = make_fleet(make_stack, e2e_id, work_dir, guest, overlays=OVERLAYS_IN_RESTART,
                       domains=DOMAINS_IN_RESTART, uri=uri)
    outcomes = []
    # first while overlays are being made, then while domains are being defined and started
    for ready in (volumes_under(e2e_id, "disk-"),
                  domains_named(domain_names(e2e_id, DOMAINS_IN_RESTART))):
        watcher = restart_when(private_libvirtd, ready)
        result = stack.up(check=False)
        watcher.join(timeout=120)
        assert "restart_seconds" in watcher.events, (watcher.events, result.output)  # type: ignore[attr-defined]
        outcomes.append((result.returncode, result.output))
        assert fleet.duplicated(fleet.names_in_state(stack)) == []
    assert private_libvirtd.restarts == 2
    converging = stack.up(check=False)  # converges, whatever the interrupted runs left
    assert converging.returncode == 0, "\n\n".join([o for _, o in outcomes] + [converging.output])
    assert_converged(stack, uri, e2e_id, OVERLAYS_IN_RESTART, DOMAINS_IN_RESTART)
    assert set(fleet_steps(stack).values()) == {"same"}  # nothing left to do
    stack.destroy()
    assert fleet.as_dict(fleet.holdings(uri, e2e_id)) == fleet.nothing(e2e_id)
    assert not (work_dir / "pool").exists()


def fleet_steps(stack: Stack) -> dict[str, str]:
    from tests.support.stack import steps

    return steps(stack.preview_json())


# --- `pulumi up` interrupted like a Ctrl-C ----------------------------------------------------


OVERLAYS_IN_SIGINT = 4
DOMAINS_IN_SIGINT = 2


CANCELLING = "press ^C again"  # what the CLI prints once it has taken the first Ctrl-C


def interrupt(stack: Stack, uri: str, names: list[str], presses: int,
              timeout: float = 120.0) -> tuple[int, str]:
    """Start `pulumi up`, press Ctrl-C as soon as libvirt announces that one of the domains
    ``names`` is defined, and again (``presses`` 2) once the CLI says it took the first press;
    return its exit code and output. The signal goes to the process group of `pulumi up` (which
    this test started), as a terminal would send it."""
    lines: list[str] = []
    took_first = threading.Event()

    def read(stream: IO[str]) -> None:
        for line in stream:
            lines.append(line)
            if CANCELLING in line:
                took_first.set()

    pressed = 0
    with DomainsDefined(uri, names) as defined:
        process = fleet.popen_up(stack)
        assert process.stdout is not None
        reader = threading.Thread(target=read, args=(process.stdout,), daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            if defined.seen.wait(0.05):
                os.killpg(process.pid, signal.SIGINT)
                pressed += 1
                if presses == 2 and took_first.wait(30):
                    os.killpg(process.pid, signal.SIGINT)
                    pressed += 1
                break
    process.wait(timeout=timeout)
    reader.join(timeout=30)
    output = "".join(lines)
    assert pressed == presses, f"never interrupted (or the CLI never took it):\n{output}"
    return process.returncode, output


@pytest.mark.parametrize("presses", [1, 2], ids=["ctrl-c-once", "ctrl-c-twice"])
def test_up_interrupted_by_sigint_then_the_next_up_converges(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest,
    presses: int, libvirt_host: LibvirtHost,
) -> None:
    """Once: Pulumi cancels gracefully (in-flight operations finish, nothing is pending).
    Twice: Pulumi exits at once; the domains being created are left as pending CREATE
    operations. The next `up` creates them again, which adopts the leftover domains (ours,
    same owner: the same UUIDs, no duplicates). Pulumi itself keeps the pending records and
    warns until `pulumi refresh --clear-pending-creates` (required without a terminal)."""
    uri = libvirt_host.uri
    stack = make_fleet(make_stack, e2e_id, work_dir, guest, uri=uri, overlays=OVERLAYS_IN_SIGINT,
                       domains=DOMAINS_IN_SIGINT)
    code, output = interrupt(stack, uri, domain_names(e2e_id, DOMAINS_IN_SIGINT), presses)
    assert code != 0, output
    assert fleet.duplicated(fleet.names_in_state(stack)) == []
    pending = fleet.pending_operations(stack)
    if presses == 1:
        assert pending == [], output
    leftovers = fleet.holdings(uri, e2e_id)
    stack.up()
    assert_converged(stack, uri, e2e_id, OVERLAYS_IN_SIGINT, DOMAINS_IN_SIGINT, pending_ok=True)
    adopted = set(leftovers.domain_uuids)
    assert adopted <= set(fleet.holdings(uri, e2e_id).domain_uuids)  # kept, not duplicated
    if pending:
        stack.run("refresh", "--yes", "--skip-preview", "--clear-pending-creates")
    assert_converged(stack, uri, e2e_id, OVERLAYS_IN_SIGINT, DOMAINS_IN_SIGINT)
    stack.destroy()
    assert fleet.as_dict(fleet.holdings(uri, e2e_id)) == fleet.nothing(e2e_id)

