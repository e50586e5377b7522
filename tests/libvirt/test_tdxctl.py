"""``tdxctl`` against a real libvirtd: it lists and touches only what is ours.

One module-wide site holds a pool with a base image, two overlays in use (one by a running
domain of ours, one by a domain of ours that is only defined), a foreign volume created with
libvirt directly, and a foreign domain defined by hand (no metadata). Only one guest boots; the
last test tears it down through ``tdxctl delete --all``, so keep that test last in the file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from tdx_provider.connection import connect
from tdx_provider.guest import domain, xml
from tdx_provider.host import checks as host
from tdx_provider.metadata import Owner
from tdx_provider.storage import ledger, pool, volume
from tdx_provider.tdxctl.main import main as tdxctl
from tests.conftest import LIBVIRT_PREFIX, SCRATCH_ROOT
from tests.support import guest as tg
from tests.support.cleanup import remove_prefixed

pytestmark = pytest.mark.libvirt

REPO = Path(__file__).resolve().parents[2]
TDXCTL = REPO / ".venv" / "bin" / "tdxctl"
FIXTURES = REPO / "tests" / "fixtures"
TEST_HOST_URI = "test://" + str(FIXTURES / "testhost.xml")
READY = FIXTURES / "sysfs-tdx-ready"
BOOT_TIMEOUT = 90.0
PROJECT = "tdxctl-tests"
FILE_CHECKS = ("kvm_tdx", "cpu_tdx_flag", "tdx_firmware", "vhost_vsock", "iommu_vfio")


@dataclass(frozen=True)
class Site:
    uri: str
    prefix: str          # pool name, domain and volume name prefix, and the owners' stack
    directory: Path
    running: str         # ours, booted
    defined: str         # ours, defined only
    foreign: str         # defined by hand, no metadata
    base_path: str
    running_overlay: str
    defined_overlay: str
    foreign_volume: str
    console: Path

    @property
    def pool(self) -> str:
        return self.prefix

    def owner(self, resource: str) -> Owner:
        return Owner(PROJECT, self.prefix, resource)


def foreign_domain_xml(name: str, disk: str | None = None) -> str:
    """A minimal domain such as someone might define by hand: no pulumi-tdx metadata."""
    root = etree.Element("domain", type="qemu")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "memory", unit="MiB").text = "64"
    etree.SubElement(root, "vcpu").text = "1"
    os_el = etree.SubElement(root, "os")
    etree.SubElement(os_el, "type", arch="x86_64", machine="q35").text = "hvm"
    devices = etree.SubElement(root, "devices")
    if disk is not None:
        disk_el = etree.SubElement(devices, "disk", type="file", device="disk")
        etree.SubElement(disk_el, "driver", name="qemu", type="raw")
        etree.SubElement(disk_el, "source", file=disk)
        etree.SubElement(disk_el, "target", dev="vda", bus="virtio")
    return etree.tostring(root, encoding="unicode")


def foreign_volume_xml(name: str) -> str:
    root = etree.Element("volume")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "capacity", unit="MiB").text = "1"
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "format", type="raw")
    return etree.tostring(root, encoding="unicode")


def provider_xml(site_prefix: str, name: str, owner: Owner, overlay: str, base: str,
                 guest: tg.TestGuest, console: Path) -> str:
    """The domain XML exactly as the provider renders it (a TCG regular VM here)."""
    spec = xml.DomainSpec(
        name=name, owner=owner, memory_mib=256, vcpus=1, tdx=False, domain_type="qemu",
        disk=xml.Disk(overlay, (xml.BackingLayer(base, "qcow2"),)),
        kernel=str(guest.kernel), initrd=str(guest.initrd), cmdline=tg.CMDLINE,
        vsock=False, network=None, console_log=str(console), shutdown_timeout=30,
    )
    return xml.render_and_validate(spec)


@pytest.fixture(scope="module")
def site(qemu_uri: str, guest: tg.TestGuest) -> Iterator[Site]:
    prefix = f"{LIBVIRT_PREFIX}{uuid.uuid4().hex[:8]}"
    directory = SCRATCH_ROOT / prefix
    directory.mkdir(parents=True)
    owner = Owner(PROJECT, prefix, "base")
    with connect(qemu_uri) as conn:
        try:
            pool.ensure(conn, prefix, str(directory / "pool"), autostart=False)
            base, _sha = volume.import_base(conn, prefix, "base.qcow2", str(guest.base_image),
                                            owner)
            running, defined = f"{prefix}-run", f"{prefix}-def"
            overlays = {}
            for name in (running, defined):
                overlays[name] = volume.create_overlay(
                    conn, prefix, f"{name}.qcow2", base.path, Owner(PROJECT, prefix, name)
                ).path
            foreign_vol = conn.storagePoolLookupByName(prefix).createXML(
                foreign_volume_xml("someone-elses.img"), 0)
            foreign = f"{prefix}-foreign"
            conn.defineXML(foreign_domain_xml(foreign, foreign_vol.path()))
            console = directory / "run.log"
            run_owner = Owner(PROJECT, prefix, running)
            domain.create(conn, running, provider_xml(prefix, running, run_owner,
                                                      overlays[running], base.path, guest,
                                                      console), run_owner)
            # Defined only (not started): the provider's XML, defined as domain.create does.
            conn.defineXMLFlags(
                provider_xml(prefix, defined, Owner(PROJECT, prefix, defined), overlays[defined],
                             base.path, guest, directory / "def.log"),
                libvirt.VIR_DOMAIN_DEFINE_VALIDATE,
            )
            yield Site(qemu_uri, prefix, directory, running, defined, foreign, base.path,
                       overlays[running], overlays[defined], foreign_vol.path(), console)
        finally:
            remove_prefixed(conn, prefix)
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def orphan(site: Site) -> Iterator[str]:
    """An overlay of ours that no domain references and that its stack gave up (as `tdxctl
    delete` of the domain that used it leaves it)."""
    name = f"orphan-{uuid.uuid4().hex[:6]}.qcow2"
    with connect(site.uri) as conn:
        volume.create_overlay(conn, site.pool, name, site.base_path,
                              site.owner("orphan-disk"))
        assert ledger.release(conn.storagePoolLookupByName(site.pool), name)
    yield name
    with connect(site.uri) as conn:
        volume.delete(conn, site.pool, name)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict]]:
    code = tdxctl([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def pool_state(uri: str, pool_name: str) -> tuple[list[str], dict[str, ledger.Entry]]:
    with connect(uri) as conn:
        found = conn.storagePoolLookupByName(pool_name)
        found.refresh(0)
        return pool.volume_names(found), ledger.read(found)


# --- list ------------------------------------------------------------------------------------


def test_list_marks_only_our_domains_with_their_owner(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows = run_json(capsys, "list", "--uri", site.uri)
    assert code == 0
    by_name = {row["name"]: row for row in rows}
    running, defined, foreign = (by_name[n] for n in (site.running, site.defined, site.foreign))
    assert running["owner"] == f"{PROJECT}/{site.prefix}/{site.running}"
    assert running["state"] == "running"
    assert isinstance(running["ssh_port"], int) and running["ssh_port"] > 0
    assert running["overlay"] == site.running_overlay
    assert running["cid"] is None and running["ip"] is None  # no vsock, no libvirt network
    assert defined["owner"] == f"{PROJECT}/{site.prefix}/{site.defined}"
    assert (defined["state"], defined["ssh_port"]) == ("shutoff", None)
    assert defined["overlay"] == site.defined_overlay
    assert foreign == {"name": site.foreign, "state": "shutoff", "ip": None, "ssh_port": None,
                       "cid": None, "overlay": None, "seed": None, "owner": None}


def test_list_table_shows_unknown_values_as_dashes(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tdxctl(["list", "--uri", site.uri]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "IP", "SSH", "PORT", "VSOCK", "CID", "OVERLAY",
                                "SEED", "OWNER"]
    cells = {line.split()[0]: line.split() for line in lines[1:]}
    assert cells[site.foreign] == [site.foreign, "shutoff", "-", "-", "-", "-", "-", "-"]
    _name, state, ip, port, cid, overlay, seed, owner = cells[site.running]
    assert (state, ip, cid, overlay, seed) == ("running", "-", "-", site.running_overlay, "-")
    assert port.isdigit() and owner == f"{PROJECT}/{site.prefix}/{site.running}"


def test_installed_tdxctl_lists_and_passes_other_commands_to_virsh(site: Site) -> None:
    listed = subprocess.run([str(TDXCTL), "list", "--json", "--uri", site.uri],
                            capture_output=True, text=True, timeout=60, check=False)
    assert listed.returncode == 0, listed.stderr
    owners = {row["name"]: row["owner"] for row in json.loads(listed.stdout)}
    assert owners[site.running] is not None and owners[site.foreign] is None
    # virsh passthrough with the same URI, before or after the command
    info = subprocess.run([str(TDXCTL), "--uri", site.uri, "dominfo", site.foreign],
                          capture_output=True, text=True, timeout=60, check=False)
    assert info.returncode == 0, info.stderr
    assert site.foreign in info.stdout and "shut off" in info.stdout
    unknown = subprocess.run([str(TDXCTL), "no-such-virsh-command", "--uri", site.uri],
                             capture_output=True, text=True, timeout=60, check=False)
    assert unknown.returncode != 0
    assert "no-such-virsh-command" in unknown.stderr
    assert "Traceback" not in listed.stderr + info.stderr + unknown.stderr


# --- pool-info -------------------------------------------------------------------------------


def test_pool_info_shows_kinds_backing_volumes_and_users(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    code, reports = run_json(capsys, "pool-info", site.pool, "--uri", site.uri)
    assert code == 0 and len(reports) == 1
    report = reports[0]
    assert report["state"] == "running"
    assert report["capacity"] > 0 and report["available"] > 0
    volumes = {v["name"]: v for v in report["volumes"]}
    summary = {n: (v["kind"], v["backing"], v["used_by"]) for n, v in volumes.items()}
    assert summary == {
        "base.qcow2": ("base", None, []),
        f"{site.running}.qcow2": ("overlay", "base.qcow2", [site.running]),
        f"{site.defined}.qcow2": ("overlay", "base.qcow2", [site.defined]),
        "someone-elses.img": ("other", None, [site.foreign]),
        ledger.LEDGER_VOLUME: ("ledger", None, []),
    }
    assert volumes["base.qcow2"]["owner"] == f"{PROJECT}/{site.prefix}/base"
    assert volumes["someone-elses.img"]["owner"] is None
    assert volumes["base.qcow2"]["capacity"] == 64 * 1024 * 1024  # DISK_MARKER: 131072 sectors


def test_pool_info_table_starts_with_the_pool_state(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tdxctl(["pool-info", site.pool, "--uri", site.uri]) == 0
    out = capsys.readouterr().out
    head = dict(line.split(":", 1) for line in out.split("\n\n")[0].splitlines())
    assert {k: v.strip() for k, v in head.items() if k in ("Pool", "State")} == {
        "Pool": site.pool, "State": "running"}
    assert {"Capacity", "Allocation", "Available"} <= set(head)
    assert "KIND" in out and "BACKING" in out and "USED BY" in out
    base_line = next(line for line in out.splitlines() if line.startswith("base.qcow2 "))
    assert base_line.split()[1:4] == ["base", "64.0", "MiB"]


def test_pool_info_of_a_missing_pool_is_an_error_not_a_traceback(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tdxctl(["pool-info", f"{site.prefix}-nope", "--uri", site.uri]) == 1
    assert "does not exist" in capsys.readouterr().err


# --- pool-cleanup ----------------------------------------------------------------------------


def test_pool_cleanup_dry_run_names_the_orphan_and_changes_nothing(
    site: Site, orphan: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = pool_state(site.uri, site.pool)
    assert tdxctl(["pool-cleanup", site.pool, "--dry-run", "--uri", site.uri]) == 0
    out = capsys.readouterr().out
    assert f"would remove  {site.pool}  {orphan}" in out
    assert "1 orphaned overlay would be removed" in out and "nothing changed" in out
    assert pool_state(site.uri, site.pool) == before


def test_pool_cleanup_removes_only_orphaned_overlays_of_ours(
    site: Site, orphan: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows = run_json(capsys, "pool-cleanup", site.pool, "--uri", site.uri)
    assert code == 0
    assert [(r["action"], r["volume"]) for r in rows] == [("removed", orphan)]
    volumes, entries = pool_state(site.uri, site.pool)
    assert orphan not in volumes and orphan not in entries
    # in-use overlays (running and defined users), the base image and the foreign volume stay
    assert sorted(volumes) == sorted(["base.qcow2", f"{site.running}.qcow2",
                                      f"{site.defined}.qcow2", "someone-elses.img",
                                      ledger.LEDGER_VOLUME])
    assert tdxctl(["pool-cleanup", site.pool, "--uri", site.uri]) == 0
    assert "0 orphaned overlays removed" in capsys.readouterr().out


def test_pool_cleanup_keeps_an_orphaned_overlay_that_backs_another_volume(
    site: Site, orphan: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect(site.uri) as conn:
        orphan_path = conn.storagePoolLookupByName(site.pool).storageVolLookupByName(
            orphan).path()
        child = volume.create_overlay(conn, site.pool, f"child-of-{orphan}", orphan_path,
                                      site.owner("child"))
        try:
            # hold the child with a foreign domain so that only the parent is an orphan
            holder = conn.defineXML(foreign_domain_xml(f"{site.prefix}-holder", child.path))
            code, rows = run_json(capsys, "pool-cleanup", site.pool, "--uri", site.uri)
        finally:
            with_holder = domain.lookup(conn, f"{site.prefix}-holder")
            if with_holder is not None:
                domain.undefine(with_holder)
            volume.delete(conn, site.pool, child.name)
    assert holder is not None and code == 0
    assert [(r["action"], r["volume"]) for r in rows] == [("kept", orphan)]
    assert f"{site.pool}/{child.name}" in rows[0]["reason"]


def test_pool_cleanup_keeps_an_orphan_a_domain_names_by_pool_and_volume(
    site: Site, orphan: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``<disk type='volume'>`` names the overlay by pool and volume name, not by path. Given
    up but in use, it is listed as kept, naming the domain."""
    root = etree.fromstring(foreign_domain_xml(f"{site.prefix}-byname"))
    disk_el = etree.SubElement(root.find("devices"), "disk", type="volume", device="disk")
    etree.SubElement(disk_el, "source", pool=site.pool, volume=orphan)
    etree.SubElement(disk_el, "target", dev="vda", bus="virtio")
    with connect(site.uri) as conn:
        holder = conn.defineXML(etree.tostring(root, encoding="unicode"))
        try:
            code, rows = run_json(capsys, "pool-cleanup", site.pool, "--uri", site.uri)
        finally:
            domain.undefine(holder)
    assert code == 0
    assert [(r["action"], r["volume"], r["reason"]) for r in rows] == [
        ("kept", orphan, f"used by domain(s) {site.prefix}-byname")]
    assert orphan in pool_state(site.uri, site.pool)[0]


def test_pool_cleanup_keeps_a_declared_overlay_until_its_stack_is_named_gone(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """An overlay a stack declares without a domain (a spare disk, or one whose domain `pulumi
    up` has not made yet) is kept; `--owner` says that stack is gone."""
    name = f"spare-{uuid.uuid4().hex[:6]}.qcow2"
    with connect(site.uri) as conn:
        volume.create_overlay(conn, site.pool, name, site.base_path, site.owner("spare"))
    try:
        code, rows = run_json(capsys, "pool-cleanup", site.pool, "--uri", site.uri)
        assert code == 0
        assert [(r["action"], r["volume"]) for r in rows] == [("kept", name)]
        assert "declared by its stack" in rows[0]["reason"]
        assert name in pool_state(site.uri, site.pool)[0]
        code, rows = run_json(capsys, "pool-cleanup", site.pool, "--owner",
                              f"{PROJECT}/{site.prefix}", "--uri", site.uri)
        assert code == 0
        # that stack's overlays that its domains still use are kept, naming them
        assert sorted((r["action"], r["volume"], r["reason"]) for r in rows) == sorted([
            ("kept", f"{site.running}.qcow2", f"used by domain(s) {site.running}"),
            ("kept", f"{site.defined}.qcow2", f"used by domain(s) {site.defined}"),
            ("removed", name, None)])
        assert name not in pool_state(site.uri, site.pool)[0]
    finally:
        with connect(site.uri) as conn:
            volume.delete(conn, site.pool, name)


# --- delete ----------------------------------------------------------------------------------


def test_delete_refuses_domains_that_are_not_ours_unless_forced(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    # one foreign name among ours stops the whole command: nothing is deleted
    assert tdxctl(["delete", site.defined, site.foreign, "--uri", site.uri]) == 1
    err = capsys.readouterr().err
    assert f"domain {site.foreign!r} was not created by pulumi-tdx" in err and "--force" in err
    assert "nothing was deleted" in err
    with connect(site.uri) as conn:
        assert domain.lookup(conn, site.defined) is not None
        assert domain.lookup(conn, site.foreign) is not None
        throwaway = f"{site.prefix}-byhand"
        conn.defineXML(foreign_domain_xml(throwaway))
    assert tdxctl(["delete", throwaway, "--force", "--uri", site.uri]) == 0
    assert f"{throwaway}: was not running, undefined" in capsys.readouterr().out
    with connect(site.uri) as conn:
        assert domain.lookup(conn, throwaway) is None


def test_delete_of_an_unknown_domain_is_an_error(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tdxctl(["delete", f"{site.prefix}-nope", "--uri", site.uri]) == 1
    assert "no domain named" in capsys.readouterr().err


def test_delete_all_selects_every_domain_of_ours_and_no_foreign_one(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows = run_json(capsys, "delete", "--all", "--dry-run", "--uri", site.uri)
    assert code == 0
    names = {row["name"] for row in rows}
    assert {site.running, site.defined} <= names
    assert site.foreign not in names
    assert all(row["owner"] for row in rows)
    timeouts = {row["name"]: row["timeout"] for row in rows}
    assert timeouts[site.running] == 30  # the domain's own shutdown timeout
    with connect(site.uri) as conn:  # a dry run changes nothing
        assert domain.state_of(domain.lookup(conn, site.running)) == "running"


# Keep after the other tests that use `site`: it tears down the site's running guest.
def test_delete_all_tears_ours_down_gracefully_in_parallel_and_leaves_foreign_alone(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    tg.wait_for_text(site.console, tg.USERSPACE_MARKER, BOOT_TIMEOUT)
    # --owner narrows --all to this test's stack: other engineers' domains on this libvirtd
    # are ours too, and a test must not tear them down.
    code = tdxctl(["delete", "--all", "--owner", f"{PROJECT}/{site.prefix}",
                     "--uri", site.uri])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{site.running}: stopped by ACPI after" in out
    assert f"{site.defined}: was not running, undefined" in out
    assert "pool-cleanup" in out  # the overlays stay; the hint says how to remove them
    assert tg.ACPI_POWEROFF_MARKER in site.console.read_text()
    with connect(site.uri) as conn:
        assert domain.lookup(conn, site.running) is None
        assert domain.lookup(conn, site.defined) is None
        assert domain.lookup(conn, site.foreign) is not None
    # their overlays are released: pool-cleanup now removes them (and nothing else)
    entries = pool_state(site.uri, site.pool)[1]
    overlays = [f"{site.running}.qcow2", f"{site.defined}.qcow2"]
    assert all(entries[name].released for name in overlays)
    code, rows = run_json(capsys, "pool-cleanup", site.pool, "--uri", site.uri)
    assert code == 0
    assert sorted((r["action"], r["volume"]) for r in rows) == [
        ("removed", name) for name in sorted(overlays)]


# --- host-check ------------------------------------------------------------------------------


def test_host_check_on_this_machine_says_why_tdx_cannot_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert tdxctl(["host-check"]) == 1
    out = capsys.readouterr().out
    lines = {line.split()[1]: line for line in out.splitlines()[1:] if line.strip()
             and line.split()[0] in ("pass", "fail", "unknown")}
    assert lines["kvm_tdx"].startswith("fail") and "kvm_intel" in lines["kvm_tdx"]
    assert lines["cpu_tdx_flag"].startswith("fail") and "tdx_host_platform" in out
    assert lines["libvirt_tdx"].startswith("fail") and "libvirt 9.0" in lines["libvirt_tdx"]
    assert "QEMU 7.2" in lines["qemu_version"]
    assert "/dev/vhost-vsock is missing" in lines["vhost_vsock"]
    assert out.rstrip().endswith(
        "TDX trust domains cannot run on this host (blocked by: kvm_tdx, cpu_tdx_flag, "
        "libvirt_tdx)")


def test_installed_host_check_exits_non_zero_here() -> None:
    result = subprocess.run([str(TDXCTL), "host-check", "--json"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["kvm_tdx"]["status"] == "fail" and checks["kvm_tdx"]["required"] is True


def test_host_check_on_a_tdx_ready_fixture_tree_and_gpu_host(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, checks = run_json(capsys, "host-check", "--uri", TEST_HOST_URI, "--root", str(READY))
    by_name = {c["name"]: c for c in checks}
    assert {n: by_name[n]["status"] for n in FILE_CHECKS} == dict.fromkeys(FILE_CHECKS, "pass")
    # the test driver has no domain capabilities: libvirt's own TDX answer fails, so exit 1
    assert by_name["libvirt_tdx"]["status"] == "fail"
    assert "virConnectGetDomainCapabilities" in by_name["libvirt_tdx"]["reason"]
    assert code == 1
    gpus = by_name["gpus"]["reason"]
    assert "0000:3b:00.0 GH100 [H100 PCIe] (IOMMU group 41)" in gpus
    assert "0000:86:00.0 GH100 [H100 PCIe] (IOMMU group 95)" in gpus


def test_host_check_exits_zero_when_every_required_check_passes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def libvirt_says_yes(_conn: libvirt.virConnect) -> host.Check:
        return host.Check("libvirt_tdx", "pass", "libvirt advertises TDX launch security")

    checks = tuple(libvirt_says_yes if c is host.check_libvirt_tdx else c
                   for c in host.LIBVIRT_CHECKS)
    monkeypatch.setattr(host, "LIBVIRT_CHECKS", checks)
    assert tdxctl(["host-check", "--uri", TEST_HOST_URI, "--root", str(READY)]) == 0
    assert "TDX trust domains can run on this host" in capsys.readouterr().out


def test_host_check_without_libvirtd_still_reports_the_file_checks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # a local URI libvirt cannot open (a socket= URI counts as remote: no file checks there)
    uri = "test:///nonexistent/host.xml"
    code, checks = run_json(capsys, "host-check", "--uri", uri, "--root", str(READY))
    assert code == 1
    by_name = {c["name"]: c for c in checks}
    assert by_name["kvm_tdx"]["status"] == "pass"
    assert by_name["libvirt"]["status"] == "fail"
    assert "cannot connect" in by_name["libvirt"]["reason"]


def test_host_check_of_another_daemon_never_reads_this_machines_files(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # another daemon's socket is another host: its files are not under this machine's root
    uri = "qemu:///system?socket=/nonexistent/libvirt-sock"
    code, checks = run_json(capsys, "host-check", "--uri", uri, "--root", str(READY))
    assert code == 1
    assert [(c["name"], c["status"]) for c in checks] == [("libvirt", "fail")]


def test_running_the_module_needs_no_console_script() -> None:
    result = subprocess.run([sys.executable, "-m", "tdx_provider.tdxctl", "--version"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout.startswith("tdxctl ")
