"""Data protection through the real Pulumi CLI: what still holds data is never deleted.

`pulumi destroy` is refused, with a message that names the holder, for an Overlay that a
domain uses, a BaseImage that still backs volumes and a Pool that holds volumes that are not
ours; the refused object and its data stay. Shrinking an Overlay is refused at preview.
The holders are made out of band (they are what Pulumi's own ordering cannot see).
Every test runs on both libvirt hosts of the matrix (``libvirt_host``: debian, upstream).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tdx_provider.connection import connect
from tdx_provider.storage import exclusion, ledger, volume
from tests.support import fleet
from tests.support import guest as tg
from tests.support.cleanup import remove_domain
from tests.support.hosts import LibvirtHost
from tests.support.programs import program
from tests.support.stack import VENV, Stack

pytestmark = pytest.mark.e2e

def state_names(stack: Stack) -> list[str]:
    return fleet.names_in_state(stack)


def test_destroy_is_refused_while_something_holds_the_data_and_names_it(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest,
    libvirt_host: LibvirtHost,
) -> None:
    uri = libvirt_host.uri
    stack = make_stack(fleet.PROGRAM)
    fleet.configure(stack, prefix=e2e_id, work=work_dir, guest=guest, overlays=1, domains=0,
                    uri=uri)
    stack.up()
    disk, base = f"{e2e_id}-disk-0", f"{e2e_id}-base"
    with connect(uri) as conn:
        lib_pool = conn.storagePoolLookupByName(e2e_id)
        disk_path = lib_pool.storageVolLookupByName(disk).path()
        base_info = volume.info(e2e_id, lib_pool.storageVolLookupByName(base))
        # a domain that is not ours uses our overlay (defined, not running)
        conn.defineXML(
            f"<domain type='qemu'><name>{e2e_id}-foreign</name><memory>65536</memory>"
            "<os><type arch='x86_64'>hvm</type></os><devices><disk type='file' device='disk'>"
            f"<driver name='qemu' type='qcow2'/><source file='{disk_path}'/>"
            "<target dev='vda' bus='virtio'/></disk></devices></domain>")
        # a volume that is not ours is backed by our base image
        lib_pool.createXML(volume.volume_xml(f"{e2e_id}-their-disk", base_info.capacity,
                                              "qcow2", "0600", backing=base_info), 0)
        # and a volume that is not ours sits in our pool
        lib_pool.createXML(f"<volume><name>{e2e_id}-their-data</name><capacity>1048576"
                           "</capacity><target><format type='raw'/></target></volume>", 0)

    refused = stack.destroy(check=False)
    assert refused.returncode != 0
    assert f"volume '{disk}' is used by domain(s) {e2e_id}-foreign" in refused.output, \
        refused.output
    assert "disk-0" in state_names(stack)
    with connect(uri) as conn:
        conn.lookupByName(f"{e2e_id}-foreign").undefine()

    refused = stack.destroy(check=False)
    assert refused.returncode != 0
    assert f"volume '{base}' backs {e2e_id}/{e2e_id}-their-disk" in refused.output, \
        refused.output
    assert state_names(stack) == ["base", "pool"]  # the overlay went; the base stays
    with connect(uri) as conn:
        conn.storagePoolLookupByName(e2e_id).storageVolLookupByName(
            f"{e2e_id}-their-disk").delete(0)

    refused = stack.destroy(check=False)
    assert refused.returncode != 0
    assert f"pool '{e2e_id}' still holds volumes {e2e_id}-their-data" in refused.output, \
        refused.output
    assert state_names(stack) == ["pool"]
    assert (work_dir / "pool" / f"{e2e_id}-their-data").exists()  # their data is intact
    with connect(uri) as conn:
        conn.storagePoolLookupByName(e2e_id).storageVolLookupByName(
            f"{e2e_id}-their-data").delete(0)

    stack.destroy()
    assert fleet.as_dict(fleet.holdings(uri, e2e_id)) == fleet.nothing(e2e_id)


def test_shrinking_an_overlay_is_refused_at_preview(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest,
    libvirt_host: LibvirtHost,
) -> None:
    uri = libvirt_host.uri
    stack = make_stack(fleet.PROGRAM)
    fleet.configure(stack, prefix=e2e_id, work=work_dir, guest=guest, overlays=1, domains=0,
                    uri=uri)
    stack.up()
    with connect(uri) as conn:
        lib_pool = conn.storagePoolLookupByName(e2e_id)
        base_capacity = lib_pool.storageVolLookupByName(f"{e2e_id}-base").info()[1]
    grown = base_capacity * 2
    stack.config({"capacity": grown})
    stack.up()  # growing is in place
    stack.config({"capacity": base_capacity})
    refused = stack.preview(check=False)
    assert refused.returncode != 0
    assert (f"capacity: shrinking overlay '{e2e_id}-disk-0' from {grown} to {base_capacity} "
            "bytes would lose data") in refused.output, refused.output
    with connect(uri) as conn:
        disk = conn.storagePoolLookupByName(e2e_id).storageVolLookupByName(f"{e2e_id}-disk-0")
        assert disk.info()[1] == grown  # untouched


NASTY = "x'\"/><injected/>&amp;<devices/>"


def test_user_strings_with_xml_metacharacters_reach_libvirt_as_text_not_elements(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest,
    libvirt_host: LibvirtHost,
) -> None:
    """Names are validated (see test_bad_input); the strings that are free text, the kernel
    command line and the Pulumi resource name in our owner tag, are escaped on their way into
    the domain XML: libvirt stores them verbatim and no element appears."""
    uri = libvirt_host.uri
    import libvirt
    from lxml import etree

    from tdx_provider.guest import domain

    stack = make_stack(program("vm_with_xml_metacharacters"))
    stack.config({"prefix": e2e_id, "work": str(work_dir), "nasty": NASTY, "uri": uri,
                  "image": str(guest.base_image), "kernel": str(guest.kernel),
                  "initrd": str(guest.initrd), "cmdline": tg.CMDLINE})
    stack.up()
    with connect(uri) as conn:
        dom = conn.lookupByName(f"{e2e_id}-td")
        doc = etree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).encode())
        instance = domain.instance_of(dom)
    assert doc.findtext("os/cmdline") == f"{tg.CMDLINE} {NASTY}"
    assert instance is not None and instance.owner.resource == "td" + NASTY
    assert doc.xpath("//*[local-name()='injected']") == []
    assert len(doc.findall("devices")) == 1


def test_a_stack_that_declares_a_released_overlay_again_takes_it_back(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest,
) -> None:
    """`tdxctl delete` of a stack's guest releases its overlay (pool-cleanup may remove it).
    When the stack then refreshes, or makes a guest on it again, it still declares the overlay:
    the release ends, and pool-cleanup keeps it. Before, the overlay stayed released, and once
    no guest used it, pool-cleanup deleted a volume the stack declared (found by `make soak`)."""
    uri = "qemu:///system"
    stack = make_stack(fleet.PROGRAM)
    fleet.configure(stack, prefix=e2e_id, work=work_dir, guest=guest, overlays=1, domains=1,
                    uri=uri)
    stack.up()
    disk = f"{e2e_id}-disk-0"

    def released() -> bool:
        with connect(uri) as conn:
            return ledger.read(conn.storagePoolLookupByName(e2e_id))[disk].released

    def cleanup() -> list[tuple[str, str]]:
        done = subprocess.run([str(VENV / "bin" / "tdxctl"), "pool-cleanup", e2e_id, "--json",
                               "--uri", uri], capture_output=True, text=True, check=True)
        return [(row["action"], row["volume"]) for row in json.loads(done.stdout)]

    def delete_guest() -> None:
        done = subprocess.run([str(VENV / "bin" / "tdxctl"), "delete", "--all", "--owner",
                               f"ptdx-e2e/{stack.name}", "--timeout", "3", "--uri", uri],
                              capture_output=True, text=True, check=True)
        assert f"{e2e_id}-td-0" in done.stdout, done.stdout
        assert released()

    delete_guest()
    stack.refresh()  # reads the overlay: the stack declares it
    assert not released()
    assert ("kept", disk) in cleanup()

    stack.up()  # the guest again, on the same overlay
    delete_guest()
    stack.refresh()
    with connect(uri) as conn, exclusion.pool_lock(conn, e2e_id) as locked:
        ledger.release(locked, disk)  # as if the operator released it after that refresh
    stack.up()  # a new guest of this stack on it ends the release
    assert not released()
    with connect(uri) as conn:  # the guest goes (out of band): nothing uses the overlay now
        remove_domain(conn.lookupByName(f"{e2e_id}-td-0"))
    assert ("kept", disk) in cleanup()
    with connect(uri) as conn:
        assert conn.storagePoolLookupByName(e2e_id).storageVolLookupByName(disk).path()
