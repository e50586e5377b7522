"""libvirt over a real remote transport: ``qemu+ssh://`` (and ``qemu+libssh://``) to this machine.

``make setup`` runs our own sshd on 127.0.0.1 (scripts/setup-sshd.sh) with a client key it made,
and puts its host key where ssh verifies it; scripts/env.sh exports the URIs. The daemon behind
them is the system libvirtd, so what a test makes through ssh is seen on ``qemu:///system`` too:
that proves the calls went over the transport to the same host, not to a stand-in.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import libvirt
import pytest

from tdx_provider.connection import is_local_uri
from tests.support.cleanup import remove_pool

pytestmark = pytest.mark.libvirt

URI_VARS = ("PULUMI_TDX_SSH_URI", "PULUMI_TDX_LIBSSH_URI")
LOCAL_URI = "qemu:///system"


def remote_uri(var: str) -> str:
    """The URI scripts/env.sh exports; missing is a failure that says how to fix it."""
    uri = os.environ.get(var)
    if not uri:
        pytest.fail(f"{var} is not set: run `make setup` and `source scripts/env.sh`")
    return uri


def open_conn(uri: str) -> libvirt.virConnect:
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as exc:
        pytest.fail(f"cannot open {uri}: {exc} (is our sshd running? `make setup` starts it)")


@pytest.fixture(params=URI_VARS, ids=["ssh", "libssh"])
def ssh_conn(request: pytest.FixtureRequest) -> Iterator[libvirt.virConnect]:
    conn = open_conn(remote_uri(request.param))
    yield conn
    conn.close()


@pytest.fixture
def local_conn() -> Iterator[libvirt.virConnect]:
    conn = libvirt.open(LOCAL_URI)
    yield conn
    conn.close()


def pool_xml(name: str, path: Path) -> str:
    return (f"<pool type='dir'><name>{escape(name)}</name>"
            f"<target><path>{escape(str(path))}</path></target></pool>")


def volume_xml(name: str) -> str:
    return (f"<volume><name>{escape(name)}</name><capacity unit='KiB'>64</capacity>"
            "<target><format type='raw'/></target></volume>")


def test_the_uris_name_another_host() -> None:
    """For the provider an ssh URI is another machine: file inputs are not checked here."""
    for var in URI_VARS:
        uri = remote_uri(var)
        assert uri.startswith(("qemu+ssh://", "qemu+libssh://")), uri
        assert not is_local_uri(uri), uri


def test_lists_the_same_pools_as_the_local_daemon(
    ssh_conn: libvirt.virConnect, local_conn: libvirt.virConnect
) -> None:
    over_ssh = sorted(p.name() for p in ssh_conn.listAllStoragePools(0))
    local = sorted(p.name() for p in local_conn.listAllStoragePools(0))
    assert over_ssh == local
    assert ssh_conn.getLibVersion() == local_conn.getLibVersion()


def test_creates_and_deletes_a_volume_over_ssh(
    ssh_conn: libvirt.virConnect, local_conn: libvirt.virConnect, unique: str, scratch_dir: Path
) -> None:
    pool = ssh_conn.storagePoolCreateXML(pool_xml(unique, scratch_dir / "pool"),
                                         libvirt.VIR_STORAGE_POOL_CREATE_WITH_BUILD)
    try:
        assert unique in [p.name() for p in ssh_conn.listAllStoragePools(0)]
        vol = pool.createXML(volume_xml("disk.raw"), 0)
        path = Path(vol.path())
        # The daemon behind the transport made the file; the local client sees the volume.
        assert path.is_file()
        seen = local_conn.storagePoolLookupByName(unique)
        seen.refresh(0)
        assert [v.name() for v in seen.listAllVolumes(0)] == ["disk.raw"]

        vol.delete(0)
        pool.refresh(0)
        assert pool.listAllVolumes(0) == []
        assert not path.exists()
    finally:
        remove_pool(pool)
    assert unique not in [p.name() for p in local_conn.listAllStoragePools(0)]


def test_a_key_that_is_not_authorized_is_refused(tmp_path: Path) -> None:
    """The transport really authenticates: the same URI with a fresh key does not connect."""
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    uri = remote_uri("PULUMI_TDX_SSH_URI")
    keyfile = os.environ.get("PULUMI_TDX_SSH_DIR", "") + "/id_ed25519"
    assert keyfile in uri, f"expected {keyfile} in {uri}"
    with pytest.raises(libvirt.libvirtError):
        libvirt.open(uri.replace(keyfile, str(key)))
