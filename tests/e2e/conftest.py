"""e2e fixtures: the real Pulumi CLI on a throwaway project against the libvirt hosts.

Tests that take ``libvirt_host`` (tests/conftest.py) run once per host of the matrix (ids
``debian`` and ``upstream``) and pass its URI to their program through config; sweeps and
teardown cover every host that answers.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tdx_provider.connection import connect
from tests.support.cleanup import remove_prefixed, remove_stale
from tests.support.hosts import answering, hosts
from tests.support.runs import run_prefix
from tests.support.stack import Stack

E2E_BASE = "ptdx-e2e-"
E2E_PREFIX = run_prefix(E2E_BASE)  # unique to this run (tests/support/runs.py)
E2E_ROOT = Path("/var/tmp/pulumi-tdx-e2e")

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session", autouse=True)
def _clear_stale_e2e_objects() -> Iterator[None]:
    for host in hosts():
        if answering(host):
            with connect(host.uri) as conn:
                remove_stale(conn, E2E_BASE)
    yield
    for host in hosts():
        if answering(host):
            with connect(host.uri) as conn:
                remove_prefixed(conn, E2E_PREFIX)


@pytest.fixture
def e2e_id() -> str:
    """A unique name prefix for this test's libvirt objects."""
    return f"{E2E_PREFIX}{uuid.uuid4().hex[:6]}"


@pytest.fixture
def work_dir(e2e_id: str) -> Iterator[Path]:
    """A directory QEMU (root) can read: pools, console logs, Pulumi state."""
    path = E2E_ROOT / e2e_id
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_stack(work_dir: Path, e2e_id: str) -> Iterator[Callable[..., Stack]]:
    """Factory for Stacks that are destroyed and removed after the test, whatever happened."""
    stacks: list[Stack] = []

    def make(program: str, **kwargs: object) -> Stack:
        stack = Stack(work_dir / f"stack{len(stacks)}", program, **kwargs)  # type: ignore[arg-type]
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.remove()
    for host in hosts():
        if answering(host):
            with connect(host.uri) as conn:
                remove_prefixed(conn, e2e_id)
