"""Two test runs on one host never sweep each other's objects (tests/support/runs.py)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import runs
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


def test_a_run_that_opened_a_lock_file_a_sweeper_removes_draws_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweeper judges run id X dead and removes X's lock file while a new run, which had
    opened that file just before, locks it: its lock is on a removed file, so the next sweeper
    would find no file, judge X dead and sweep the live run's objects. The new run must see
    that and draw another id."""
    monkeypatch.setattr(runs, "LOCK_DIR", tmp_path)
    path = tmp_path / "dead.lock"
    path.write_text("1\n")  # a run that ended
    opened_before = os.open(path, os.O_RDWR)
    try:
        assert not runs.run_is_alive("dead")  # the sweeper removes the file
        fcntl.flock(opened_before, fcntl.LOCK_EX | fcntl.LOCK_NB)  # succeeds: removed file
        assert not runs._current(opened_before, path)
    finally:
        os.close(opened_before)
    fd = runs.claim("dead")  # claimed anew: a current file, and a sweeper sees it alive
    assert fd is not None
    try:
        child = subprocess.run([sys.executable, "-c", (
            "import sys; from pathlib import Path; from tests.support import runs; "
            f"runs.LOCK_DIR = Path({str(tmp_path)!r}); "
            "sys.exit(0 if runs.run_is_alive('dead') else 1)")], check=False)
        assert child.returncode == 0
    finally:
        os.close(fd)
