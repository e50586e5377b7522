"""Files we create are never world-writable, and have the modes and owners the contract names:
base images 0644, overlays 0600 (or 0640), owned by the user QEMU runs as; the pool's ledger
and directory are not writable by others; a console log is not writable by others either.

The user QEMU runs as is read from ``/etc/libvirt/qemu.conf`` (``user = "..."``; libvirt's
Debian build default ``libvirt-qemu`` when the line is absent). On our test hosts it is root.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from tdx_provider.guest import domain, xml
from tdx_provider.metadata import Owner
from tdx_provider.storage import ledger, pool, volume
from tests.support import guest as tg
from tests.support.cleanup import remove_prefixed

pytestmark = pytest.mark.libvirt
OWNER = Owner("tests", "libvirt", "file-modes")
QEMU_CONF = Path("/etc/libvirt/qemu.conf")
DEFAULT_QEMU_USER = "libvirt-qemu"


def qemu_conf_setting(key: str, text: str) -> str | None:
    """The last uncommented ``key = "value"`` of a libvirt config file."""
    found = None
    for line in text.splitlines():
        match = re.fullmatch(rf'\s*{key}\s*=\s*"([^"]*)"\s*(#.*)?', line)
        if match:
            found = match[1]
    return found


def qemu_uid_gid() -> tuple[int, int]:
    text = QEMU_CONF.read_text() if QEMU_CONF.exists() else ""
    user = qemu_conf_setting("user", text) or DEFAULT_QEMU_USER
    group = qemu_conf_setting("group", text)
    entry = pwd.getpwuid(int(user[1:])) if user.startswith("+") else pwd.getpwnam(user)
    if group is None:
        return entry.pw_uid, entry.pw_gid
    gid = int(group[1:]) if group.startswith("+") else grp.getgrnam(group).gr_gid
    return entry.pw_uid, gid


def mode_of(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def world_writable(root: Path) -> list[str]:
    found = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        if mode_of(path) & stat.S_IWOTH:
            found.append(f"{path} {oct(mode_of(path))}")
    return found


def test_qemu_conf_parser_reads_the_last_uncommented_setting() -> None:
    text = '#user = "nobody"\nuser = "libvirt-qemu"\n  user = "root"  # here\n'
    assert qemu_conf_setting("user", text) == "root"
    assert qemu_conf_setting("group", text) is None


@pytest.fixture
def storage(qemu_conn: libvirt.virConnect, unique: str, scratch_dir: Path,
            guest: tg.TestGuest) -> Iterator[tuple[str, Path]]:
    pool_dir = scratch_dir / "pool"
    pool.ensure(qemu_conn, unique, str(pool_dir), autostart=False)
    yield unique, pool_dir
    remove_prefixed(qemu_conn, unique)


def test_pool_base_overlay_and_ledger_have_safe_modes_and_owners(
    qemu_conn: libvirt.virConnect, storage: tuple[str, Path], guest: tg.TestGuest
) -> None:
    pool_name, pool_dir = storage
    uid, _gid = qemu_uid_gid()
    base, _ = volume.import_base(qemu_conn, pool_name, "base", str(guest.base_image), OWNER)
    overlay = volume.create_overlay(qemu_conn, pool_name, "disk", base.path, OWNER)
    grown = volume.grow(qemu_conn, pool_name, "disk", overlay.capacity * 2)
    ledger_path = qemu_conn.storagePoolLookupByName(pool_name).storageVolLookupByName(
        ledger.LEDGER_VOLUME).path()

    assert mode_of(base.path) == 0o644
    assert mode_of(grown.path) in (0o600, 0o640)  # a resize keeps the mode
    assert mode_of(ledger_path) == 0o644
    assert mode_of(pool_dir) == 0o755
    for path in (base.path, overlay.path):
        assert os.stat(path).st_uid == uid, path  # QEMU opens them as this user
    assert world_writable(pool_dir) == []


def test_a_source_that_is_world_writable_does_not_make_the_base_writable(
    qemu_conn: libvirt.virConnect, storage: tuple[str, Path], scratch_dir: Path
) -> None:
    pool_name, pool_dir = storage
    source = scratch_dir / "loose.raw"
    source.write_bytes(b"\xa5" * 65536)
    os.chmod(source, 0o666)
    base, _ = volume.import_base(qemu_conn, pool_name, "loose", str(source), OWNER)
    assert mode_of(base.path) == 0o644
    assert world_writable(pool_dir) == []


def test_a_running_guest_keeps_its_overlay_private_and_its_console_log_not_world_writable(
    qemu_conn: libvirt.virConnect, storage: tuple[str, Path], guest: tg.TestGuest,
    scratch_dir: Path, unique: str,
) -> None:
    pool_name, pool_dir = storage
    uid, _gid = qemu_uid_gid()
    base, _ = volume.import_base(qemu_conn, pool_name, "base", str(guest.base_image), OWNER)
    overlay = volume.create_overlay(qemu_conn, pool_name, "disk", base.path, OWNER)
    console = scratch_dir / "console.log"
    spec = xml.DomainSpec(
        name=unique, owner=OWNER, memory_mib=128, vcpus=1, tdx=False, domain_type="qemu",
        disk=xml.Disk(overlay.path, (xml.BackingLayer(base.path, base.format),)),
        kernel=str(guest.kernel), initrd=str(guest.initrd), cmdline=tg.CMDLINE,
        vsock=False, network=None, console_log=str(console), shutdown_timeout=5,
    )
    domain.create(qemu_conn, unique, xml.render_and_validate(spec), OWNER)
    try:
        assert console.exists()
        assert not mode_of(console) & (stat.S_IWOTH | stat.S_IWGRP), oct(mode_of(console))
        # while QEMU holds them (libvirt may relabel images for the QEMU user at start)
        assert mode_of(overlay.path) in (0o600, 0o640)
        assert mode_of(base.path) == 0o644
        assert os.stat(overlay.path).st_uid == uid
        assert world_writable(pool_dir) == []
    finally:
        domain.delete(qemu_conn, unique, timeout=0)
    assert mode_of(overlay.path) in (0o600, 0o640)
    assert os.stat(overlay.path).st_uid == uid
