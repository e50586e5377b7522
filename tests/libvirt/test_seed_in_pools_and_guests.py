"""cloud-init seeds against a real libvirtd (each host of the matrix).

One module-wide site: a pool, the test guest's base image and an overlay, a seed made by the
provider's own check and create, and a TCG guest rendered by our template with the seed
attached. The guest mounts the seed by its ``cidata`` label and prints what it declares.
The last test deletes that guest with ``tdxctl delete``: keep it last in the file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tdx_provider.connection import connect
from tdx_provider.dynamic.cloud_init_seed import CloudInitSeedProvider
from tdx_provider.errors import ConflictError, InUseError
from tdx_provider.guest import cloud_init, domain, seed_image, xml
from tdx_provider.metadata import Owner
from tdx_provider.storage import ledger, pool, seed_volume, volume
from tdx_provider.tdxctl.main import main as tdxctl
from tests.conftest import LIBVIRT_PREFIX, SCRATCH_ROOT
from tests.support import guest as tg
from tests.support.cleanup import remove_prefixed

pytestmark = pytest.mark.libvirt

PROJECT = "seed-tests"
HOSTNAME = "seeded-td-1"
BOOT_TIMEOUT = 90.0


@dataclass(frozen=True)
class Site:
    uri: str
    prefix: str
    directory: Path
    key: str
    seed: dict[str, Any]     # the seed provider's outputs
    overlay: str
    domain: str
    console: Path

    @property
    def pool(self) -> str:
        return self.prefix


def public_key(directory: Path) -> str:
    path = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ops@seed-test", "-f",
                    str(path)], check=True)
    return Path(f"{path}.pub").read_text().strip()


def make_seed(uri: str, pool_name: str, key: str, resource: str) -> dict[str, Any]:
    """A seed through the provider's own preview check and create (as `pulumi up` runs them)."""
    news = {"uri": uri, "pool": pool_name, "hostname": HOSTNAME,
            "users": [{"name": "ops", "ssh_authorized_keys": [key], "sudo": True}],
            "owner": {"project": PROJECT, "stack": pool_name, "resource": resource}}
    checker = CloudInitSeedProvider().check({}, news)
    assert not checker.failures, checker.failures
    return dict(CloudInitSeedProvider().create(checker.inputs).outs or {})


@pytest.fixture(scope="module")
def site(qemu_uri: str, guest: tg.TestGuest) -> Iterator[Site]:
    prefix = f"{LIBVIRT_PREFIX}seed-{uuid.uuid4().hex[:6]}"
    directory = SCRATCH_ROOT / prefix
    directory.mkdir(parents=True)
    with connect(qemu_uri) as conn:
        try:
            pool.ensure(conn, prefix, str(directory / "pool"), autostart=False)
            owner = Owner(PROJECT, prefix, "td")
            base, _ = volume.import_base(conn, prefix, "base.qcow2", str(guest.base_image), owner)
            overlay = volume.create_overlay(conn, prefix, "disk.qcow2", base.path, owner)
            key = public_key(directory)
            seed = make_seed(qemu_uri, prefix, key, "seed")
            name, console = f"{prefix}-td", directory / "console.log"
            spec = xml.DomainSpec(
                name=name, owner=owner, memory_mib=256, vcpus=1, tdx=False,
                domain_type="qemu", disk=xml.Disk(overlay.path, (xml.BackingLayer(base.path,
                                                                                  "qcow2"),)),
                kernel=str(guest.kernel), initrd=str(guest.initrd), cmdline=tg.CMDLINE,
                vsock=False, network=None, console_log=str(console), shutdown_timeout=30,
                seed=xml.SeedDisk(seed["path"], seed["instance_id"]))
            domain.create(conn, name, xml.render_and_validate(spec), owner)
            yield Site(qemu_uri, prefix, directory, key, seed, overlay.path, name, console)
        finally:
            remove_prefixed(conn, prefix)
            shutil.rmtree(directory, ignore_errors=True)


def test_the_seed_volume_holds_the_declared_files_and_is_recorded_as_a_seed(site: Site) -> None:
    with connect(site.uri) as conn:
        found = conn.storagePoolLookupByName(site.pool)
        vol = found.storageVolLookupByName(site.seed["name"])
        image = seed_volume.download(conn, vol)
        entries = ledger.read(found)
        mode = etree.fromstring(vol.XMLDesc(0)).findtext("target/permissions/mode")
    declared = cloud_init.render(cloud_init.Seed(
        hostname=HOSTNAME, users=(cloud_init.User("ops", (site.key,), sudo=True),)))
    assert seed_image.label(image) == "cidata"
    assert seed_image.read(image) == declared.files
    assert site.seed["instance_id"] == declared.instance_id
    assert site.seed["path"] == vol.path() and site.seed["capacity"] == len(image)
    entry = entries[site.seed["name"]]
    assert (entry.kind, entry.owner, entry.released) == (
        "seed", f"{PROJECT}/{site.prefix}/seed", False)
    assert entry.sha256 == site.seed["sha256"] == hashlib.sha256(image).hexdigest()
    assert mode == "0600"


def test_the_guest_mounts_the_seed_and_shows_the_declared_hostname_and_key(site: Site) -> None:
    tg.wait_for_text(site.console, tg.USERSPACE_MARKER, BOOT_TIMEOUT)
    console = site.console.read_text(errors="replace")
    kind, blob, _comment = site.key.split()
    assert f"{tg.SEED_MARKER} /dev/vdb: meta-data user-data" in console
    assert f"{tg.SEED_INSTANCE_MARKER} {site.seed['instance_id']}" in console
    assert f"{tg.HOSTNAME_MARKER} {HOSTNAME}" in console
    assert f"{tg.SSH_KEY_MARKER} {kind} {blob}" in console
    assert tg.DISK_MARKER in console  # the overlay is still vda


def test_tdxctl_list_shows_which_seed_a_domain_has(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tdxctl(["list", "--uri", site.uri, "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows[site.domain]["seed"] == site.seed["path"]
    assert rows[site.domain]["overlay"] == site.overlay


def test_a_seed_in_use_is_not_deleted_and_a_name_of_another_owner_conflicts(site: Site) -> None:
    with connect(site.uri) as conn:
        with pytest.raises(InUseError, match=site.domain):
            volume.delete(conn, site.pool, site.seed["name"])
        with pytest.raises(ConflictError, match="owned by"):
            seed_volume.create(conn, site.pool, site.seed["name"], b"x" * 2048,
                               Owner(PROJECT, "other-stack", "seed"))
        assert volume.read(conn, site.pool, site.seed["name"]) is not None


def test_a_failed_create_leaves_no_seed_and_no_ledger_entry(site: Site) -> None:
    with connect(site.uri) as conn, pytest.raises(ConflictError):
        # the name of the overlay: taken, by a volume that is not a seed
        seed_volume.create(conn, site.pool, "disk.qcow2", b"x" * 2048,
                           Owner(PROJECT, site.prefix, "td"))
    with connect(site.uri) as conn:
        assert ledger.read(conn.storagePoolLookupByName(site.pool))["disk.qcow2"].kind == "overlay"


# Keep last: it deletes the site's guest.
def test_tdxctl_delete_releases_the_seed_and_pool_cleanup_removes_it(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tdxctl(["delete", "--uri", site.uri, "--timeout", "30", site.domain]) == 0
    capsys.readouterr()
    with connect(site.uri) as conn:
        entries = ledger.read(conn.storagePoolLookupByName(site.pool))
    assert entries[site.seed["name"]].released is True
    assert entries["disk.qcow2"].released is True

    assert tdxctl(["pool-cleanup", "--uri", site.uri, "--json", site.pool]) == 0
    rows = json.loads(capsys.readouterr().out)
    removed = {row["volume"] for row in rows if row["action"] == "removed"}
    assert removed == {site.seed["name"], "disk.qcow2"}
    with connect(site.uri) as conn:
        assert volume.read(conn, site.pool, site.seed["name"]) is None
        assert site.seed["name"] not in ledger.read(conn.storagePoolLookupByName(site.pool))
