"""Shared hosts through the real Pulumi CLI: two stacks on one pre-existing pool, each a base
image, 6 overlays and 2 TCG guests, go up and down together 5 times, while `tdxctl
pool-cleanup` runs in a loop against the pool. Stack B alternates between `qemu:///system`
and a URI the engine treats as remote (`qemu+unix:///system?socket=...`). Along the way:

- cycle 1: a process SIGKILLed while it held the pool's exclusion; the next ups proceed after
  the stale time and say so;
- last cycle: `tdxctl delete --all --owner` of stack A runs at the same time as A's destroy.

After every up: zero errors, every overlay present, the ledger exact (each stack's volumes,
recorded with that stack's owner, and nothing else). After every destroy: nothing of either
stack left, the pre-existing pool still there. pool-cleanup never removes a declared volume.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tdx_provider import retry
from tdx_provider.connection import connect
from tdx_provider.storage import exclusion, ledger, pool
from tests.e2e.test_concurrency import errors_in
from tests.support import guest as tg
from tests.support.dir_events import DirEvents
from tests.support.shared_pool import PROGRAM, configure
from tests.support.stack import REPO_ROOT, VENV, Result, Stack
from tests.support.watch import defined_and_running

pytestmark = pytest.mark.e2e
URI = "qemu:///system"
REMOTE_STYLE = "qemu+unix:///system?socket=/var/run/libvirt/libvirt-sock"
OVERLAYS = 6
DOMAINS = 2
CYCLES = 5
KILL_CYCLE = 1
STALE = 8  # seconds (PULUMI_TDX_LOCK_STALE_SECONDS): short, so the killed holder costs little

def expected_ledger(names: dict[str, str], owners: dict[str, str]) -> dict[str, str]:
    """volume -> owner (project/stack/resource) for both stacks' volumes."""
    wanted = {}
    for key, prefix in names.items():
        wanted[f"{prefix}-base"] = f"{owners[key]}/base"
        for i in range(OVERLAYS):
            wanted[f"{prefix}-disk-{i}"] = f"{owners[key]}/disk-{i}"
    return wanted


def pool_contents(pool_name: str) -> tuple[list[str], dict[str, str]]:
    """(user volumes, ledger name -> owner) of the pool, as libvirt holds them now."""
    with connect(URI) as conn:
        found = conn.storagePoolLookupByName(pool_name)
        retry.transient(lambda: found.refresh(0))
        entries = {name: e.owner for name, e in ledger.read(found).items()}
        return pool.user_volumes(found), entries


def domains_of(names: list[str]) -> tuple[list[str], list[str]]:
    """(defined, running) among ``names``, asked by name: a listing of the host's domains would
    wait for any guest libvirt is stopping, anyone's."""
    return defined_and_running(URI, names)


def missing_volumes_report(cycle: int, volumes: list[str], wanted: list[str], pool_path: Path,
                           entries: dict[str, str], cleanup: CleanupLoop, ups: Any,
                           dir_events: DirEvents) -> str:
    """Why an up left the pool short: the files on disk (a deleted file, or one libvirt does
    not list?), who created and deleted the missing ones and when, the ledger, what
    pool-cleanup did besides keeping, and the ups' output."""
    acted = [(c, code, [r for r in rows if r["action"] != "kept"], err[-300:])
             for c, code, rows, err in cleanup.runs
             if code or any(r["action"] != "kept" for r in rows)]
    history = "\n".join(str(e) for name in sorted(set(wanted) - set(volumes))
                        for e in dir_events.of(name))
    return (f"cycle {cycle}: {volumes}; files {sorted(os.listdir(pool_path))}; "
            f"ledger {entries}; pool-cleanup did {acted}\nfile events:\n{history}\n"
            + "\n".join(up.output for up in ups))


class CleanupLoop:
    """`tdxctl pool-cleanup POOL --json` again and again, in the background."""

    def __init__(self, pool_name: str, env: dict[str, str]) -> None:
        self.pool_name, self.env = pool_name, env
        self.runs: list[tuple[int, int, list[dict[str, Any]], str]] = []
        self.cycle = -1
        self.paused = threading.Event()
        self._idle = threading.Event()  # paused, and no pass in flight
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def pause(self) -> None:
        """Stop starting passes, and return once the pass in flight (if any) has ended."""
        self.paused.set()
        assert self._idle.wait(300), "a pool-cleanup pass did not end"

    def resume(self) -> None:
        self._idle.clear()
        self.paused.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.paused.is_set():
                self._idle.set()
                self._stop.wait(0.05)
                continue
            proc = subprocess.run([str(VENV / "bin" / "tdxctl"), "pool-cleanup", self.pool_name,
                                   "--json", "--uri", URI], capture_output=True, text=True,
                                  env=self.env, timeout=300, check=False)
            try:
                rows = json.loads(proc.stdout) if proc.stdout.strip() else []
            except ValueError:
                rows = [{"action": "unparsable", "volume": proc.stdout}]
            self.runs.append((self.cycle, proc.returncode, rows, proc.stderr))
            self._stop.wait(0.2)

    def __enter__(self) -> CleanupLoop:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=300)


def kill_a_holder(pool_name: str) -> int:
    """Start a process that takes the pool's exclusion, SIGKILL it while it holds; its pid."""
    code = textwrap.dedent(f"""
        import time
        from tdx_provider.connection import connect
        from tdx_provider.storage.exclusion import pool_lock
        with connect({URI!r}) as conn, pool_lock(conn, {pool_name!r}):
            print("held", flush=True)
            time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=REPO_ROOT)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return proc.pid


def tdxctl_delete_all(owner: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV / "bin" / "tdxctl"), "delete", "--all", "--owner", owner,
                           "--timeout", "3", "--uri", URI], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


def assert_clean(result: Result, what: str) -> None:
    assert result.returncode == 0, f"{what}:\n{result.output}"
    assert errors_in(result) == [], f"{what}:\n{result.output}"


@pytest.mark.timeout(1200)  # 5 cycles of 4 TCG guests: about 4 minutes alone, more when shared
def test_two_stacks_share_one_pool_with_cleanup_running_and_nothing_is_lost(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest
) -> None:
    pool_name, pool_path = e2e_id, work_dir / "pool"
    with connect(URI) as conn:  # the host's pool, made before either stack
        pool.ensure(conn, pool_name, str(pool_path), autostart=False)
    env = {exclusion.STALE_ENV: str(STALE), "PYTHONUNBUFFERED": "1"}
    names = {"a": f"{e2e_id}-a", "b": f"{e2e_id}-b"}
    stacks = {key: make_stack(PROGRAM, name=name, extra_env=env) for key, name in names.items()}
    owners = {key: f"ptdx-e2e/{name}" for key, name in names.items()}
    tool_env = {**os.environ, **env}
    timings = []
    doms = sorted(f"{names[k]}-td-{i}" for k in stacks for i in range(DOMAINS))
    with CleanupLoop(pool_name, tool_env) as cleanup, ThreadPoolExecutor(3) as pool_of, \
            DirEvents(pool_path) as dir_events:
        for cycle in range(CYCLES):
            cleanup.cycle = cycle
            uris = {"a": URI, "b": REMOTE_STYLE if cycle % 2 else URI}
            for key, stack in stacks.items():
                configure(stack.config, prefix=names[key], pool_name=pool_name,
                          pool_path=pool_path, work=work_dir / key, guest=guest, uri=uris[key],
                          overlays=OVERLAYS, domains=DOMAINS)
            killed = None
            if cycle == KILL_CYCLE:
                cleanup.pause()  # else a pass of it, not the ups, might break the lock
                killed = kill_a_holder(pool_name)

            began, events_before = time.monotonic(), len(dir_events.events)
            ups = dict(zip(stacks, pool_of.map(lambda s: s.up(check=False), stacks.values()),
                           strict=True))
            up_seconds = time.monotonic() - began
            for key, up in ups.items():
                assert_clean(up, f"cycle {cycle} up of {key} ({uris[key]})")
            if killed is not None:
                said = "\n".join(up.output for up in ups.values())
                assert "broke a stale lock" in said and f"pid {killed}" in said, said
                assert up_seconds >= STALE
                cleanup.resume()

            volumes, entries = pool_contents(pool_name)
            wanted = expected_ledger(names, owners)
            assert volumes == sorted(wanted), missing_volumes_report(
                cycle, volumes, sorted(wanted), pool_path, entries, cleanup, ups.values(),
                dir_events)
            # present is not enough: none was deleted (and made again) during the ups
            deleted = [str(e) for e in dir_events.events[events_before:]
                       if e.kind != "create" and e.name in wanted]
            assert deleted == [], f"cycle {cycle}: {deleted}"
            assert entries == wanted, f"cycle {cycle}: ledger {entries}"
            assert domains_of(doms) == (doms, doms)

            middle = time.monotonic()
            last = cycle == CYCLES - 1
            jobs = {key: pool_of.submit(stack.destroy, check=False)
                    for key, stack in stacks.items()}
            deleting = pool_of.submit(tdxctl_delete_all, owners["a"], tool_env) if last else None
            for key, job in jobs.items():
                assert_clean(job.result(), f"cycle {cycle} destroy of {key}")
            if deleting is not None:
                done = deleting.result()
                assert done.returncode == 0, done.stdout + done.stderr
                assert "FAILED" not in done.stdout, done.stdout
            down_seconds = time.monotonic() - middle

            assert pool_contents(pool_name) == ([], {}), f"cycle {cycle} after destroy"
            assert domains_of(doms) == ([], [])
            for stack in stacks.values():
                assert stack.resources() == []
            timings.append((round(up_seconds, 1), round(down_seconds, 1)))

    with connect(URI) as conn:  # adopted by both: neither stack deleted it
        assert conn.storagePoolLookupByName(pool_name).isActive()
    assert cleanup.runs, "pool-cleanup never ran"
    failed = [(c, code, err) for c, code, _rows, err in cleanup.runs if code != 0]
    assert failed == [], failed
    removed = [(c, row) for c, _code, rows, _err in cleanup.runs for row in rows
               if row["action"] not in ("kept",)]
    # Only overlays `tdxctl delete` released (stack A's, in the last cycle) may go.
    assert all(c == CYCLES - 1 and row["action"] == "removed"
               and row["owner"].startswith(owners["a"] + "/") for c, row in removed), removed
    print(f"up/destroy seconds per cycle: {timings}; pool-cleanup passes: {len(cleanup.runs)}")
