"""Pool exclusion across processes and URIs, on the real libvirtd (tdx_provider.storage.exclusion).

Other processes are real ``python`` processes holding the lock through libvirt; one reaches the
daemon through ``qemu+unix:///system?socket=...`` (a URI the engine treats as remote), the
other through ``qemu:///system``: both take part in the same exclusion."""

from __future__ import annotations

import logging
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

from tdx_provider.connection import connect, is_local_uri
from tdx_provider.storage import exclusion, ledger, lock_record, pool
from tests.support.cleanup import remove_prefixed

pytestmark = pytest.mark.libvirt
REMOTE_STYLE = "qemu+unix:///system?socket=/var/run/libvirt/libvirt-sock"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def shared_pool(qemu_conn: libvirt.virConnect, unique: str, scratch_dir: Path) -> Iterator[str]:
    pool.ensure(qemu_conn, unique, str(scratch_dir / "pool"), autostart=False)
    yield unique
    remove_prefixed(qemu_conn, unique)


def holder(uri: str, pool_name: str, seconds: float, stale: float = 120.0
           ) -> subprocess.Popen[str]:
    """A process that takes the pool lock, says "held", holds it ``seconds``, releases it."""
    code = textwrap.dedent(f"""
        import sys, time
        from tdx_provider.connection import connect
        from tdx_provider.storage.exclusion import pool_lock
        with connect({uri!r}) as conn, pool_lock(conn, {pool_name!r}):
            print("held", flush=True)
            time.sleep({seconds})
        print("released", flush=True)
    """)
    env = {**os.environ, exclusion.STALE_ENV: str(stale)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env=env, cwd=REPO)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def volumes(uri: str, pool_name: str) -> list[str]:
    with connect(uri) as conn:
        found = conn.storagePoolLookupByName(pool_name)
        found.refresh(0)
        return pool.volume_names(found)


def test_a_socket_uri_counts_as_remote() -> None:
    assert not is_local_uri(REMOTE_STYLE)
    assert is_local_uri("qemu:///system")


@pytest.mark.parametrize("their_transport", ["same-uri", "unix-transport"])
def test_a_holder_in_another_process_excludes_us_until_it_releases(
    qemu_uri: str, qemu_unix_uri: str, shared_pool: str, their_transport: str
) -> None:
    their_uri = qemu_uri if their_transport == "same-uri" else qemu_unix_uri
    proc = holder(their_uri, shared_pool, seconds=2.0)
    try:
        assert exclusion.LOCK_VOLUME in volumes(qemu_uri, shared_pool)
        began = time.monotonic()
        with connect(qemu_uri) as conn, exclusion.pool_lock(conn, shared_pool):
            waited = time.monotonic() - began
            assert proc.poll() is not None or proc.stdout.readline().strip() == "released"
        assert waited >= 1.0, waited
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == 0
    assert exclusion.LOCK_VOLUME not in volumes(qemu_uri, shared_pool)  # released in finally


def test_a_live_holder_is_never_broken_however_long_it_holds(
    qemu_unix_uri: str,
    qemu_uri: str, shared_pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat rewrites the record: a hold longer than the stale time is not stale."""
    monkeypatch.setenv(exclusion.STALE_ENV, "2")
    proc = holder(qemu_unix_uri, shared_pool, seconds=5.0, stale=2.0)
    try:
        began = time.monotonic()
        with connect(qemu_uri) as conn, exclusion.pool_lock(conn, shared_pool):
            waited = time.monotonic() - began
    finally:
        proc.wait(timeout=30)
    assert waited >= 4.0, waited
    assert proc.returncode == 0


def test_a_killed_holder_is_broken_after_the_stale_time_and_named_in_the_log(
    qemu_uri: str, shared_pool: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(exclusion.STALE_ENV, "2")
    proc = holder(qemu_uri, shared_pool, seconds=600)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="tdx_provider.storage.exclusion"), \
            connect(qemu_uri) as conn, exclusion.pool_lock(conn, shared_pool):
        waited = time.monotonic() - began
    assert 2.0 <= waited < 30, waited
    assert f"pid {proc.pid}" in caplog.text and "broke a stale lock" in caplog.text, caplog.text
    assert [v for v in volumes(qemu_uri, shared_pool) if v in ledger.INTERNAL_VOLUMES
            and v != ledger.LEDGER_VOLUME] == []


def test_the_lock_is_reentrant_and_other_pools_do_not_wait(
    qemu_uri: str, shared_pool: str, qemu_conn: libvirt.virConnect, unique: str,
    scratch_dir: Path,
) -> None:
    other = f"{unique}-b"
    pool.ensure(qemu_conn, other, str(scratch_dir / "other"), autostart=False)
    with exclusion.pool_lock(qemu_conn, shared_pool), \
            exclusion.pool_lock(qemu_conn, shared_pool):
        proc = holder(qemu_uri, other, seconds=0.1)  # would hang if pools shared one lock
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_concurrent_writers_in_many_processes_lose_no_ledger_record(
    qemu_unix_uri: str,
    qemu_uri: str, shared_pool: str
) -> None:
    """Each process records its own entries, half through a remote-style URI; every record
    must be there afterwards (a read-modify-write without exclusion loses some)."""
    code = textwrap.dedent("""
        import sys
        from tdx_provider.storage import ledger
        from tdx_provider.connection import connect
        from tdx_provider.storage.exclusion import pool_lock
        uri, pool_name, me = sys.argv[1:4]
        with connect(uri) as conn:
            for i in range(8):
                with pool_lock(conn, pool_name) as pool:
                    ledger.record(pool, f"{me}-{i}", ledger.Entry("overlay", f"p/{me}/r{i}"))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code,
                               qemu_unix_uri if n % 2 else qemu_uri, shared_pool, f"w{n}"],
                              cwd=REPO) for n in range(4)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    with connect(qemu_uri) as conn:
        entries = ledger.read(conn.storagePoolLookupByName(shared_pool))
    assert sorted(entries) == sorted(f"w{n}-{i}" for n in range(4) for i in range(8))
    assert all(entries[f"w{n}-{i}"].owner == f"p/w{n}/r{i}" for n in range(4) for i in range(8))


def test_two_creators_of_one_pool_both_succeed_one_creates_the_other_adopts(
    qemu_unix_uri: str,
    qemu_uri: str, unique: str, scratch_dir: Path, qemu_conn: libvirt.virConnect,
) -> None:
    code = textwrap.dedent("""
        import sys
        from tdx_provider.storage import pool
        from tdx_provider.connection import connect
        from tdx_provider.metadata import Owner
        uri, name, path, stack = sys.argv[1:5]
        with connect(uri) as conn:
            _info, adopted = pool.ensure(conn, name, path, False, owner=Owner("p", stack, "pool"))
        print("adopted" if adopted else "created")
    """)
    path = str(scratch_dir / "raced")
    try:
        procs = [subprocess.Popen([sys.executable, "-c", code, uri, unique, path, f"s{n}"],
                                  cwd=REPO, stdout=subprocess.PIPE, text=True)
                 for n, uri in enumerate([qemu_uri, qemu_unix_uri] * 2)]
        outcomes = [proc.communicate(timeout=120)[0].strip() for proc in procs]
        assert [proc.returncode for proc in procs] == [0] * 4
        assert sorted(outcomes) == ["adopted", "adopted", "adopted", "created"]
        assert qemu_conn.storagePoolLookupByName(unique).isActive()
    finally:
        remove_prefixed(qemu_conn, unique)


def test_a_shared_or_adopted_pool_outlives_its_stack_whatever_it_holds(
    qemu_uri: str, unique: str, scratch_dir: Path, qemu_conn: libvirt.virConnect,
) -> None:
    """The creator's destroy is refused while another stack's volume remains, unless its Pool
    is `shared` (then the pool stays, defined and running, and the destroy succeeds)."""
    from tdx_provider.dynamic._common import ProviderError
    from tdx_provider.dynamic.pool import PoolProvider

    provider = PoolProvider()
    props = {"name": unique, "path": str(scratch_dir / "p"), "autostart": False,
             "uri": qemu_uri, "owner": {"project": "p", "stack": "creator", "resource": "pool"}}
    try:
        created = provider.create(props)
        assert created.outs["adopted"] is False
        found = qemu_conn.storagePoolLookupByName(unique)
        found.createXML("<volume><name>other-stack.img</name><capacity>1048576</capacity>"
                        "<target><format type='raw'/></target></volume>", 0)
        with pytest.raises(ProviderError, match=r"still holds volumes other-stack\.img"):
            provider.delete(unique, {**created.outs, "shared": False})
        provider.delete(unique, {**created.outs, "shared": True})
        assert found.isActive()
        assert pool.user_volumes(found) == ["other-stack.img"]
    finally:
        remove_prefixed(qemu_conn, unique)


def test_a_live_holder_that_keeps_the_pool_too_long_is_named_in_the_error(
    qemu_uri: str, shared_pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(exclusion.WAIT_ENV, "1")
    proc = holder(qemu_uri, shared_pool, seconds=4.0)
    try:
        with pytest.raises(exclusion.LockTimeoutError,
                           match=rf"locked by .*pid {proc.pid} on .* for more than 1 s"), \
                connect(qemu_uri) as conn, exclusion.pool_lock(conn, shared_pool):
            pass
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_pool_info_shows_the_lock_volumes_as_lock_not_as_someone_elses() -> None:
    from tdx_provider.storage.inventory import volume_kind

    assert volume_kind(exclusion.LOCK_VOLUME, {}) == "lock"
    assert volume_kind(exclusion.BREAK_VOLUME, {}) == "lock"
    assert volume_kind(ledger.LEDGER_VOLUME, {}) == "ledger"


CONTENDER = textwrap.dedent("""
    import os, sys, time
    from tdx_provider.storage import ledger
    from tdx_provider.connection import connect
    from tdx_provider.storage.exclusion import pool_lock
    uri, pool_name, me, inside, hold = sys.argv[1:6]
    with connect(uri) as conn:
        print("ready", flush=True)
        sys.stdin.readline()
        with pool_lock(conn, pool_name) as pool:
            try:  # a second writer inside finds the marker of the first
                fd = os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                print("OVERLAP", flush=True)
                fd = None
            ledger.record(pool, me, ledger.Entry("overlay", f"p/s/{me}"))
            time.sleep(float(hold))
            if fd is not None:
                os.close(fd)
                os.unlink(inside)
    print("done", flush=True)
""")


def contender(uri: str, pool_name: str, me: str, inside: Path, hold: float,
              env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", CONTENDER, uri, pool_name, me, str(inside),
                             str(hold)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env, cwd=REPO)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def test_waiters_that_saw_an_empty_record_never_break_the_next_live_holder(
    qemu_uri: str, qemu_unix_uri: str, shared_pool: str, scratch_dir: Path
) -> None:
    """A lock volume is created empty and its holder writes its record a moment later (here
    0.6 s later, injected). Two waiters read that empty record while the first holder starts,
    then wait longer than the stale time behind its live heartbeat. When it releases, one
    waiter takes the lock and the other reads the winner's empty record again: the same bytes
    it first saw seconds ago. It must not judge the new holder stale (it was: two writers
    inside, one ledger record lost)."""
    stale = 1.5
    env = {**os.environ, exclusion.STALE_ENV: str(stale), exclusion.RECORD_DELAY_ENV: "0.6"}
    inside = scratch_dir / "inside"
    first = contender(qemu_uri, shared_pool, "first", inside, 2.5 * stale, env)
    waiters = [contender(uri, shared_pool, f"waiter{n}", inside, 1.0, env)
               for n, uri in enumerate((qemu_uri, qemu_unix_uri))]
    go(first)
    with connect(qemu_uri) as conn:  # the first holder's lock volume exists, still empty
        found = conn.storagePoolLookupByName(shared_pool)
        deadline = time.monotonic() + 30
        while exclusion.LOCK_VOLUME not in pool.volume_names(found):
            assert time.monotonic() < deadline
            time.sleep(0.005)
    for proc in waiters:
        go(proc)
    outputs = [proc.communicate(timeout=120)[0] for proc in [first, *waiters]]
    assert [proc.returncode for proc in [first, *waiters]] == [0, 0, 0], outputs
    assert not any("OVERLAP" in out for out in outputs), outputs
    with connect(qemu_uri) as conn:
        entries = ledger.read(conn.storagePoolLookupByName(shared_pool))
    assert sorted(entries) == ["first", "waiter0", "waiter1"]


def test_a_holder_whose_lock_was_broken_never_writes_into_or_deletes_the_next_lock(
    qemu_uri: str, shared_pool: str
) -> None:
    """A waiter judged a holder dead (it stalled), broke its lock and took the pool. The old
    holder, running again, must not heartbeat its record into the new holder's lock volume
    (same name), nor delete that lock at its release: it once did both, letting a third writer
    in."""
    proc = holder(qemu_uri, shared_pool, seconds=2.0, stale=1.0)  # heartbeats every 0.25 s
    with connect(qemu_uri) as conn:
        found = conn.storagePoolLookupByName(shared_pool)
        lock_record.delete(found, exclusion.LOCK_VOLUME)  # broken, as a waiter breaks it
        vol, _unlisted = lock_record.try_create(found, exclusion.LOCK_VOLUME)
        assert vol is not None
        me = lock_record.Holder.me()
        lock_record.write(found, vol, me)
        assert proc.wait(timeout=30) == 0  # it beat several times, then released
        assert lock_record.token(lock_record.read(found, exclusion.LOCK_VOLUME)) == me.token
        lock_record.delete(found, exclusion.LOCK_VOLUME)
