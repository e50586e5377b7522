"""The whole road through the real Pulumi CLI: preview, up, no-op preview, a replacing change,
refresh after out-of-band edits, destroy. Tiny guests under TCG (tdx off, no vsock, no
libvirt network), on each libvirt host of the matrix."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import libvirt
import pytest

from tdx_provider.connection import connect
from tdx_provider.storage import ledger, pool
from tests.support import guest as tg
from tests.support.hosts import LibvirtHost
from tests.support.programs import program
from tests.support.stack import Stack, steps

pytestmark = pytest.mark.e2e
BOOT_TIMEOUT = 90.0


def libvirt_names(uri: str, prefix: str) -> dict[str, list[str]]:
    with connect(uri) as conn:
        pools = [p for p in conn.listAllStoragePools(0) if p.name().startswith(prefix)]
        volumes = []
        for p in pools:
            if p.isActive():
                p.refresh(0)
                volumes += [v for v in pool.volume_names(p) if v != ledger.LEDGER_VOLUME]
        return {
            "domains": sorted(d.name() for d in conn.listAllDomains(0)
                              if d.name().startswith(prefix)),
            "pools": sorted(p.name() for p in pools),
            "volumes": sorted(volumes),
        }


@pytest.fixture
def stack(make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path,
          guest: tg.TestGuest, libvirt_host: LibvirtHost) -> Stack:
    import hashlib

    s = make_stack(program("two_vms_lifecycle"))
    s.config({
        "prefix": e2e_id, "work": str(work_dir), "uri": libvirt_host.uri,
        "kernel": str(guest.kernel), "initrd": str(guest.initrd), "image": str(guest.base_image),
        "sha256": hashlib.sha256(guest.base_image.read_bytes()).hexdigest(),
        "cmdline": tg.CMDLINE, "cmdline_b": tg.CMDLINE,
    })
    return s


def wait_for_both(work_dir: Path) -> None:
    for key in ("a", "b"):
        tg.wait_for_text(work_dir / f"td-{key}.log", tg.USERSPACE_MARKER, BOOT_TIMEOUT)


def test_trust_domain_stack_lifecycle(stack: Stack, e2e_id: str, work_dir: Path,
                                     libvirt_host: LibvirtHost) -> None:
    uri = libvirt_host.uri
    # preview explains, creates nothing
    plan = steps(stack.preview_json())
    assert plan["td-a"] == "create" and plan["pool"] == "create"
    assert libvirt_names(uri, e2e_id) == {"domains": [], "pools": [], "volumes": []}

    # up: 1 pool, 1 base, 2 overlays, 2 guests that answer on their SSH ports
    stack.up()
    outputs = stack.outputs()
    assert libvirt_names(uri, e2e_id) == {
        "domains": [f"{e2e_id}-td-a", f"{e2e_id}-td-b"],
        "pools": [e2e_id],
        "volumes": sorted([f"{e2e_id}-base", f"{e2e_id}-a", f"{e2e_id}-b"]),
    }
    assert outputs["state_a"] == outputs["state_b"] == "running"
    wait_for_both(work_dir)
    assert tg.read_banner(outputs["ssh_port_a"], 30) == tg.SSH_BANNER
    assert tg.read_banner(outputs["ssh_port_b"], 30) == tg.SSH_BANNER

    # a second preview shows no changes at all
    assert set(steps(stack.preview_json()).values()) == {"same"}

    # a memory change replaces exactly that domain (fixed name: delete first); the disk stays
    stack.config({"memory_b": 384})
    plan = steps(stack.preview_json())
    changed = {name: op for name, op in plan.items() if op != "same"}
    assert changed == {"td-b": "replace"}, plan
    disk_key = outputs["disk_b_key"]
    stack.up()
    with connect(uri) as conn:
        dom = conn.lookupByName(f"{e2e_id}-td-b")
        assert dom.maxMemory() == 384 * 1024
    assert stack.outputs()["disk_b_key"] == disk_key
    assert (work_dir / "td-b.log").exists()

    # out-of-band undefine: refresh drops it from state, up recreates it
    with connect(uri) as conn:
        dom = conn.lookupByName(f"{e2e_id}-td-a")
        dom.destroy()
        dom.undefine()
    stack.refresh()
    names = [r["urn"].rsplit("::", 1)[-1] for r in stack.resources()]
    assert "td-a" not in names and "td-b" in names
    stack.up()
    assert f"{e2e_id}-td-a" in libvirt_names(uri, e2e_id)["domains"]

    # out-of-band memory edit shows as drift after refresh: preview replaces td-a
    with connect(uri) as conn:
        dom = conn.lookupByName(f"{e2e_id}-td-a")
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        xml = xml.replace("<memory unit='KiB'>262144</memory>",
                          "<memory unit='KiB'>393216</memory>")
        xml = xml.replace("<currentMemory unit='KiB'>262144</currentMemory>",
                          "<currentMemory unit='KiB'>393216</currentMemory>")
        conn.defineXML(xml)
    stack.refresh()
    plan = steps(stack.preview_json())
    assert plan["td-a"] == "replace", plan
    stack.up()  # converges back to the declared 256 MiB
    with connect(uri) as conn:
        assert conn.lookupByName(f"{e2e_id}-td-a").maxMemory() == 256 * 1024

    # destroy: graceful (the console shows the ACPI power-off), nothing left behind
    wait_for_both(work_dir)
    result = stack.destroy()
    assert libvirt_names(uri, e2e_id) == {"domains": [], "pools": [], "volumes": []}
    for key in ("a", "b"):
        assert tg.ACPI_POWEROFF_MARKER in (work_dir / f"td-{key}.log").read_text()
    assert "stopped by ACPI" in result.output


def test_guest_that_ignores_acpi_is_forced_off_after_its_timeout(
    stack: Stack, e2e_id: str, work_dir: Path, libvirt_host: LibvirtHost
) -> None:
    uri = libvirt_host.uri
    stack.config({"cmdline_b": f"{tg.CMDLINE} {tg.IGNORE_ACPI_ARG}", "timeout_b": 3})
    stack.up()
    wait_for_both(work_dir)
    start = time.monotonic()
    result = stack.destroy()
    elapsed = time.monotonic() - start
    forced = re.search(rf"{e2e_id}-td-b: forced off \(ACPI timed out\) after ([\d.]+) s",
                       result.output)
    assert forced, result.output
    assert 3 <= float(forced[1]) < 8  # the 3 s timeout, then the forced stop itself
    assert f"{e2e_id}-td-a: stopped by ACPI" in result.output
    assert tg.IGNORING_ACPI_MARKER in (work_dir / "td-b.log").read_text()
    assert tg.ACPI_POWEROFF_MARKER not in (work_dir / "td-b.log").read_text()
    assert elapsed < 30  # bounded by the timeout, not by the default 60 s
    assert libvirt_names(uri, e2e_id)["domains"] == []


