"""Two test runs on one host never sweep each other's objects (tests/support/runs.py)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.runs import is_stale, run_id, run_prefix

CHILD = (
    "import sys; from tests.support.runs import run_id; print(run_id(), flush=True); "
    "sys.stdin.readline()"
)


def test_own_objects_are_never_stale() -> None:
    assert run_prefix("ptdx-x-") == f"ptdx-x-{run_id()}-"
    assert not is_stale(f"ptdx-x-{run_id()}-pool", "ptdx-x-")


def test_objects_of_a_live_run_are_kept_and_swept_once_it_ends() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdin is not None
    other = child.stdout.readline().strip()
    assert other and other != run_id()
    name = f"ptdx-x-{other}-disk"
    assert not is_stale(name, "ptdx-x-")
    child.stdin.close()
    child.wait(timeout=30)
    assert is_stale(name, "ptdx-x-")


def test_names_without_a_live_run_id_are_stale_and_others_untouched() -> None:
    assert is_stale("ptdx-x-deadbeef", "ptdx-x-")  # the old format, without a run id
    assert not is_stale("someone-elses-vm", "ptdx-x-")
