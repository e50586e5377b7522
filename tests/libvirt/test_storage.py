"""Pools, base images and overlays against a real libvirtd (qemu:///system)."""

from __future__ import annotations

import hashlib
import http.server
import os
import stat
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import libvirt
import pytest

from tdx_provider.errors import ConflictError, InputError, InUseError
from tdx_provider.metadata import Owner
from tdx_provider.storage import ledger, pool, seed_volume, volume
from tests.support.cleanup import remove_prefixed
from tests.support.guest import TestGuest

pytestmark = pytest.mark.libvirt
OWNER = Owner("tests", "libvirt", "storage")


@pytest.fixture
def scratch_pool(qemu_conn: libvirt.virConnect, unique: str, scratch_dir: Path) -> Iterator[str]:
    pool.ensure(qemu_conn, unique, str(scratch_dir / "pool"), autostart=False)
    yield unique
    remove_prefixed(qemu_conn, unique)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pool_is_created_running_and_adopted_when_name_and_path_match(
    qemu_conn: libvirt.virConnect, unique: str, scratch_dir: Path
) -> None:
    path = str(scratch_dir / "p")
    info, adopted = pool.ensure(qemu_conn, unique, path, autostart=True)
    assert (info.state, info.autostart, adopted, info.path) == ("running", True, False, path)
    again, adopted = pool.ensure(qemu_conn, unique, path, autostart=True)
    assert adopted and again.uuid == info.uuid


def test_pool_on_a_path_that_another_pool_uses_is_a_conflict_naming_it(
    qemu_conn: libvirt.virConnect, scratch_pool: str, scratch_dir: Path
) -> None:
    with pytest.raises(ConflictError, match=scratch_pool):
        pool.ensure(qemu_conn, scratch_pool + "-b", str(scratch_dir / "pool"), autostart=False)


def test_pool_delete_is_refused_while_it_holds_volumes_and_names_them(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: TestGuest
) -> None:
    volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OWNER)
    with pytest.raises(InUseError, match="base"):
        pool.delete(qemu_conn, scratch_pool)
    volume.delete(qemu_conn, scratch_pool, "base")
    pool.delete(qemu_conn, scratch_pool)
    assert pool.lookup(qemu_conn, scratch_pool) is None


def test_base_import_hashes_detects_format_and_is_read_only(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: TestGuest
) -> None:
    info, digest = volume.import_base(
        qemu_conn, scratch_pool, "base", str(guest.base_image), OWNER,
        sha256=sha256_of(guest.base_image),
    )
    assert digest == sha256_of(guest.base_image)
    assert info.format == "qcow2"
    assert Path(info.path).read_bytes() == guest.base_image.read_bytes()
    mode = stat.S_IMODE(os.stat(info.path).st_mode)
    assert mode == 0o644
    entry = ledger.read(qemu_conn.storagePoolLookupByName(scratch_pool))["base"]
    assert (entry.kind, entry.owner, entry.sha256) == ("base", str(OWNER), digest)


def test_raw_image_is_detected_as_raw(
    qemu_conn: libvirt.virConnect, scratch_pool: str, scratch_dir: Path
) -> None:
    raw = scratch_dir / "disk.raw"
    raw.write_bytes(os.urandom(1 << 20))
    info, _ = volume.import_base(qemu_conn, scratch_pool, "raw", str(raw), OWNER)
    assert (info.format, info.capacity) == ("raw", 1 << 20)


def test_sha256_mismatch_leaves_nothing_behind(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: TestGuest
) -> None:
    with pytest.raises(InputError) as caught:
        volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OWNER,
                           sha256="0" * 64)
    assert caught.value.field == "sha256"
    lib_pool = qemu_conn.storagePoolLookupByName(scratch_pool)
    lib_pool.refresh(0)
    assert [v for v in pool.volume_names(lib_pool) if v != ledger.LEDGER_VOLUME] == []
    assert "base" not in ledger.read(lib_pool)


def test_base_import_over_http_from_a_loopback_server(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: TestGuest
) -> None:
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(guest.base_image.parent), **kw
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{guest.base_image.name}"
        _, digest = volume.import_base(qemu_conn, scratch_pool, "web", url, OWNER)
    finally:
        server.shutdown()
    assert digest == sha256_of(guest.base_image)


def test_existing_volume_is_adopted_only_when_ours_and_identical(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: TestGuest, scratch_dir: Path
) -> None:
    first, _ = volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OWNER)
    again, _ = volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OWNER)
    assert again.key == first.key
    other = scratch_dir / "other.raw"
    other.write_bytes(b"different content")
    with pytest.raises(ConflictError, match="sha256"):
        volume.import_base(qemu_conn, scratch_pool, "base", str(other), OWNER)


def test_foreign_volume_with_the_same_name_is_a_conflict(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: TestGuest
) -> None:
    lib_pool = qemu_conn.storagePoolLookupByName(scratch_pool)
    lib_pool.createXML(
        "<volume><name>foreign</name><capacity>1048576</capacity>"
        "<target><format type='raw'/></target></volume>", 0)
    with pytest.raises(ConflictError, match="not created by pulumi-tdx"):
        volume.import_base(qemu_conn, scratch_pool, "foreign", str(guest.base_image), OWNER)
    with pytest.raises(ConflictError, match="not created by pulumi-tdx"):
        base, _ = volume.import_base(qemu_conn, scratch_pool, "b", str(guest.base_image), OWNER)
        volume.create_overlay(qemu_conn, scratch_pool, "foreign", base.path, OWNER)


def test_overlay_is_backed_by_the_base_not_a_copy_and_private(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: TestGuest
) -> None:
    base, _ = volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OWNER)
    overlay = volume.create_overlay(qemu_conn, scratch_pool, "disk", base.path, OWNER)
    assert overlay.backing_path == base.path
    assert overlay.capacity == base.capacity
    assert overlay.allocation < base.allocation  # qcow2 metadata only
    assert stat.S_IMODE(os.stat(overlay.path).st_mode) == 0o600
    out = subprocess.run(["qemu-img", "info", "--output=json", "-U", overlay.path],
                         capture_output=True, text=True, check=True).stdout
    assert base.path in out


def test_overlay_grows_in_place_and_never_shrinks(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: TestGuest
) -> None:
    base, _ = volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OWNER)
    overlay = volume.create_overlay(qemu_conn, scratch_pool, "disk", base.path, OWNER)
    grown = volume.grow(qemu_conn, scratch_pool, "disk", overlay.capacity * 2)
    assert (grown.capacity, grown.key) == (overlay.capacity * 2, overlay.key)
    with pytest.raises(InputError, match="would lose data"):
        volume.grow(qemu_conn, scratch_pool, "disk", overlay.capacity)
    with pytest.raises(InputError) as caught:
        volume.create_overlay(qemu_conn, scratch_pool, "small", base.path, OWNER, capacity=1024)
    assert caught.value.field == "capacity"


def test_base_delete_is_refused_while_an_overlay_is_backed_by_it(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: TestGuest
) -> None:
    base, _ = volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OWNER)
    volume.create_overlay(qemu_conn, scratch_pool, "disk", base.path, OWNER)
    with pytest.raises(InUseError, match=f"{scratch_pool}/disk"):
        volume.delete(qemu_conn, scratch_pool, "base")
    volume.delete(qemu_conn, scratch_pool, "disk")
    volume.delete(qemu_conn, scratch_pool, "base")
    volume.delete(qemu_conn, scratch_pool, "base")  # already gone: success


def test_parallel_overlay_creation_and_deletion_in_one_pool_does_not_race(
    qemu_conn: libvirt.virConnect, qemu_uri: str, scratch_pool: str, guest: TestGuest
) -> None:
    from tdx_provider.connection import connect

    base, _ = volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OWNER)

    def make(i: int) -> str:
        with connect(qemu_uri) as conn:  # one connection per call, as the provider does
            return volume.create_overlay(conn, scratch_pool, f"d{i}", base.path, OWNER).name

    def remove(name: str) -> None:
        with connect(qemu_uri) as conn:
            volume.delete(conn, scratch_pool, name)

    with ThreadPoolExecutor(max_workers=12) as executor:
        names = list(executor.map(make, range(12)))
        entries = ledger.read(qemu_conn.storagePoolLookupByName(scratch_pool))
        assert sorted(n for n in entries if n.startswith("d")) == sorted(names)
        list(executor.map(remove, names))
    entries = ledger.read(qemu_conn.storagePoolLookupByName(scratch_pool))
    assert sorted(entries) == ["base"]


@pytest.mark.parametrize("kind", ["overlay", "base", "seed"])
def test_a_refused_create_never_deletes_the_file_that_made_libvirt_refuse(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: TestGuest, kind: str
) -> None:
    """A file of the volume's name that libvirt has not listed yet (written by anyone, or left
    by a run libvirt never finished) makes createXML refuse. The rollback once deleted "the
    volume of that name" looked up again, and the refresh that libvirtd starts after every
    ledger write often lists the file by then: someone's data deleted by a create that made
    nothing. A refused create deletes nothing, and the ledger is as it was."""
    base, _ = volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OWNER)
    lib_pool = qemu_conn.storagePoolLookupByName(scratch_pool)
    found = 0
    for attempt in range(8):
        name = f"theirs-{attempt}"
        path = Path(pool.target_path(lib_pool)) / name
        path.write_bytes(b"their data " * 1000)
        with pytest.raises((libvirt.libvirtError, ConflictError)):  # refused, or not ours
            if kind == "overlay":
                volume.create_overlay(qemu_conn, scratch_pool, name, base.path, OWNER)
            elif kind == "seed":
                seed_volume.create(qemu_conn, scratch_pool, name, b"cidata " * 64, OWNER)
            else:
                volume.import_base(qemu_conn, scratch_pool, name, str(guest.base_image), OWNER)
        assert path.read_bytes() == b"their data " * 1000, f"attempt {attempt}"
        assert name not in ledger.read(lib_pool)
        found += name in pool.volume_names(lib_pool)  # the refresh had listed it: the risky case
    print(f"listed by libvirt's own refresh before the rollback in {found} of 8 attempts")


def test_the_unix_transport_uri_reaches_the_same_daemon(
    qemu_conn: libvirt.virConnect, qemu_unix_uri: str, scratch_pool: str
) -> None:
    from tdx_provider.connection import connect

    with connect(qemu_unix_uri) as conn:
        assert conn.getLibVersion() == qemu_conn.getLibVersion()
        assert conn.storagePoolLookupByName(scratch_pool).UUIDString() == \
            qemu_conn.storagePoolLookupByName(scratch_pool).UUIDString()


def test_an_import_past_its_deadline_stops_and_leaves_nothing_behind(
    qemu_conn: libvirt.virConnect, scratch_pool: str, guest: TestGuest
) -> None:
    """customTimeouts.create through the native provider: the upload checks the deadline."""
    from tdx_provider import cancellation
    from tdx_provider.errors import TimedOutError

    with pytest.raises(TimedOutError, match="create of BaseImage"), \
            cancellation.deadline(1e-6, "create of BaseImage"):
        volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OWNER)
    lib_pool = qemu_conn.storagePoolLookupByName(scratch_pool)
    lib_pool.refresh(0)
    assert [v for v in pool.volume_names(lib_pool) if v != ledger.LEDGER_VOLUME] == []
    assert "base" not in ledger.read(lib_pool)
    # without a deadline the same import goes through
    volume.import_base(qemu_conn, scratch_pool, "base", str(guest.base_image), OWNER)
