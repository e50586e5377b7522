"""Nothing declared is lost when many writers share one pool (the vanished overlay, issue 18).

Real processes share one pool on the real libvirtd, as stacks, ``tdxctl`` and killed processes
do: two "stacks" each create overlays, check them and delete them, round after round; a
``pool-cleanup`` pass runs again and again; a lock holder is SIGKILLed now and then, so that
waiters break stale locks; every lock record is written late (injected), so waiters often read
an empty one. The stale time is short, so waits that span it are common.

After every round a stack checks each overlay it declares: listed by libvirt, the same file
(device, inode and change time, taken when it was made: a volume deleted and made again is a
loss too) and in the ledger under its owner. And a fanotify watch on the pool directory says
whether any declared file was deleted while declared, and by which process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from tdx_provider.storage import exclusion, pool
from tests.support.cleanup import remove_prefixed
from tests.support.dir_events import DirEvents
from tests.support.guest import TestGuest

pytestmark = pytest.mark.libvirt
REPO = Path(__file__).resolve().parents[2]
ROUNDS = 3
OVERLAYS = 3
STALE = 1.0

STACK = textwrap.dedent("""
    import json, os, sys, time
    from tdx_provider.storage import ledger, pool, volume
    from tdx_provider.connection import connect
    from tdx_provider.metadata import Owner
    uri, pool_name, me, base, rounds, overlays = sys.argv[1:7]
    owner = Owner("stress", me, "disk")
    def identity(path):
        st = os.stat(path)
        return [st.st_dev, st.st_ino, st.st_ctime_ns]
    lost = []
    with connect(uri) as conn:
        for r in range(int(rounds)):
            made = {}
            for i in range(int(overlays)):
                info = volume.create_overlay(conn, pool_name, f"{me}-r{r}-d{i}", base, owner)
                made[info.name] = (info.path, identity(info.path))
            lib_pool = conn.storagePoolLookupByName(pool_name)
            listed = set(pool.volume_names(lib_pool))
            entries = ledger.read(lib_pool)
            for name, (path, ident) in made.items():
                if name not in listed:
                    when = time.time()
                    again = [name in pool.volume_names(lib_pool) for _ in range(3)]
                    lost.append(f"round {r}: {name} not listed at {when:.3f} "
                                f"(file there: {os.path.exists(path)}; listed on the next "
                                f"three looks: {again})")
                try:
                    if identity(path) != ident:
                        lost.append(f"round {r}: {name} is another file now")
                except FileNotFoundError:
                    lost.append(f"round {r}: {name} file gone")
                entry = entries.get(name)
                if entry is None or entry.owner != str(owner):
                    lost.append(f"round {r}: {name} not in the ledger as ours ({entry})")
            for name in made:
                volume.delete(conn, pool_name, name)
    print(json.dumps(lost), flush=True)
""")

CLEANUP = textwrap.dedent("""
    import sys, time
    from tdx_provider.storage import cleanup
    from tdx_provider.connection import connect
    uri, pool_name, stop = sys.argv[1:4]
    removed = []
    with connect(uri) as conn:
        while not __import__("os").path.exists(stop):
            rows = cleanup.cleanup_pool(conn, conn.storagePoolLookupByName(pool_name), False)
            removed += [r for r in rows if r.action != "kept"]
    print(removed, flush=True)
""")

HOLDER = textwrap.dedent("""
    import time
    import sys
    from tdx_provider.connection import connect
    from tdx_provider.storage.exclusion import pool_lock
    with connect(sys.argv[1]) as conn, pool_lock(conn, sys.argv[2]):
        print("held", flush=True)
        time.sleep(600)
""")


@pytest.fixture
def stress_pool(qemu_conn: libvirt.virConnect, unique: str, scratch_dir: Path) -> Iterator[str]:
    pool.ensure(qemu_conn, unique, str(scratch_dir / "pool"), autostart=False)
    yield unique
    remove_prefixed(qemu_conn, unique)


def kill_a_holder(uri: str, pool_name: str, env: dict[str, str]) -> None:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, uri, pool_name],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    assert proc.stdout is not None
    proc.stdout.readline()  # "held" (or nothing, if the holder failed: it is killed anyway)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def test_no_declared_overlay_is_lost_while_writers_share_a_pool_and_holders_die(
    qemu_uri: str, qemu_unix_uri: str, stress_pool: str, scratch_dir: Path, guest: TestGuest
) -> None:
    from tdx_provider.connection import connect
    from tdx_provider.metadata import Owner
    from tdx_provider.storage import volume

    env = {**os.environ, exclusion.STALE_ENV: str(STALE), exclusion.RECORD_DELAY_ENV: "0.05"}
    with connect(qemu_uri) as conn:
        base, _ = volume.import_base(conn, stress_pool, "base", str(guest.base_image),
                                     Owner("stress", "base", "base"))
    stop = scratch_dir / "stop"
    pool_dir = scratch_dir / "pool"
    with DirEvents(pool_dir) as events:
        cleanup = subprocess.Popen([sys.executable, "-c", CLEANUP, qemu_uri, stress_pool,
                                    str(stop)], stdout=subprocess.PIPE, text=True, env=env,
                                   cwd=REPO)
        stacks = [subprocess.Popen([sys.executable, "-c", STACK, uri, stress_pool, me,
                                    base.path, str(ROUNDS), str(OVERLAYS)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=env, cwd=REPO)
                  for me, uri in (("a", qemu_uri), ("b", qemu_unix_uri))]
        kills = 0
        while any(s.poll() is None for s in stacks):
            kill_a_holder(qemu_uri, stress_pool, env)
            kills += 1
            time.sleep(STALE)
        outputs = [s.communicate(timeout=60) for s in stacks]
        stop.touch()
        removed = cleanup.communicate(timeout=120)[0]
    assert [s.returncode for s in stacks] == [0, 0], [err[-3000:] for _out, err in outputs]
    lost = [item for out, _err in outputs for item in json.loads(out.strip().splitlines()[-1])]
    # a declared overlay is deleted only by its own stack, at the end of its round
    deleted = [e for e in events.events if e.kind == "delete" and "-r" in e.name]
    by_others = [str(e) for e in deleted if e.command not in ("libvirtd", "rpc-libvirtd")]
    assert lost == [], (lost, [str(e) for e in deleted])
    assert by_others == []
    assert removed.strip() == "[]", removed
    print(f"{kills} holders killed; {len(deleted)} overlays deleted by their stacks")
