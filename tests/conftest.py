"""Shared fixtures. Tests own the name prefixes below and clear stale objects of them first.

Tests that take ``qemu_uri`` (or ``qemu_conn``) run once per libvirt host of the matrix
(tests/support/hosts.py): ids ``debian`` (the system libvirtd) and ``upstream`` (the sid libvirt
that ``make setup`` starts). A host that does not answer fails its tests; nothing is skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from tdx_provider.connection import connect
from tests.support.cleanup import remove_prefixed, remove_stale
from tests.support.guest import TestGuest, test_guest
from tests.support.hosts import HOST_IDS, LibvirtHost, by_name
from tests.support.runs import run_prefix
from tests.support.tdvf import Layout

LIBVIRT_BASE = "ptdx-lt-"
# This run's objects: a prefix no other run on the host uses (tests/support/runs.py).
LIBVIRT_PREFIX = run_prefix(LIBVIRT_BASE)
SCRATCH_ROOT = Path("/var/tmp/pulumi-tdx-tests")


@pytest.fixture(scope="session")
def guest() -> TestGuest:
    return test_guest()


@pytest.fixture(scope="session", params=HOST_IDS)
def libvirt_host(request: pytest.FixtureRequest) -> LibvirtHost:
    """Each host of the matrix in turn; a missing one fails here (``make setup`` starts it)."""
    host = by_name(request.param)
    host.version()
    return host


@pytest.fixture(scope="session")
def qemu_uri(libvirt_host: LibvirtHost) -> Iterator[str]:
    """The URI of the host under test; this run's objects on it are removed at the end."""
    uri = libvirt_host.uri
    with connect(uri) as conn:
        remove_stale(conn, LIBVIRT_BASE)
    yield uri
    with connect(uri) as conn:
        remove_prefixed(conn, LIBVIRT_PREFIX)


@pytest.fixture(scope="session")
def qemu_unix_uri(libvirt_host: LibvirtHost) -> str:
    """The host under test reached like another machine would (``LibvirtHost.unix_uri``)."""
    return libvirt_host.unix_uri


@pytest.fixture
def qemu_conn(qemu_uri: str) -> Iterator[libvirt.virConnect]:
    with connect(qemu_uri) as conn:
        yield conn


@pytest.fixture
def unique() -> str:
    """A short unique name under the libvirt-tier prefix."""
    return f"{LIBVIRT_PREFIX}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def scratch_dir(unique: str) -> Iterator[Path]:
    """A directory QEMU (running as root) can read, removed afterwards."""
    import shutil

    path = SCRATCH_ROOT / unique
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def firmware(tmp_path: Path) -> tuple[Path, Layout]:
    """A synthetic TDVF image laid out by tests/support/tdvf.py, and its layout."""
    layout = Layout()
    path = tmp_path / "TDVF.fd"
    path.write_bytes(layout.build())
    return path, layout
