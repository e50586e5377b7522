"""Mutual exclusion of pool mutations across threads, processes and machines.

Several stacks, ``tdxctl`` and clients on other machines (remote URIs) change one pool at the
same time: volume create/delete/resize, ledger writes, pool refresh and delete. A lock that
lives in one process (or in one machine's file system) cannot exclude a client that reaches
libvirtd through ``qemu+ssh://``. So the lock is built from what libvirt itself guarantees to
every client, local or remote:

**Creating a storage volume is exclusive.** libvirtd checks the name and adds the volume to
the pool under the pool's own lock; a second ``createXML`` of the same name fails with
``VIR_ERR_STORAGE_VOL_EXIST`` (and the dir backend creates the file with ``O_EXCL``, so even a
volume libvirt has not listed yet is not overwritten). The lock is a small raw volume,
:data:`LOCK_VOLUME`, in the pool it protects (its record: :mod:`.lock_record`):

- *acquire*: create it; on success upload a record (holder token, host, pid, program, time);
  if it exists, wait (bounded exponential backoff with jitter) and try again;
- *release*: delete it, in ``finally`` (only if it still carries our token);
- *liveness*: while held, a heartbeat thread rewrites the record every ``stale / 4`` seconds,
  so a long hold (a multi-GB base image upload) is never mistaken for a dead one;
- *stale*: a waiter that sees the **same record on every look** for :func:`stale_seconds`
  (measured on the waiter's own monotonic clock, so clocks of different machines never
  matter) breaks it, and logs a warning naming the old holder. Any change (another record,
  or no lock volume) starts that clock again. The lock volume is created empty and its
  record is written a moment later, so every holder's lock reads empty at first: an empty
  record is stale only when it stays empty for the whole stale time (its creator died before
  writing), never because an earlier holder's empty record was seen long ago
  (docs/reliability.md, "The vanished overlay"). Breaking is itself exclusive: the breaker
  first creates :data:`BREAK_VOLUME`, re-reads the record and deletes the lock only if it is
  still the one it judged stale. A holder that was SIGKILLed therefore delays the next writer
  by at most the stale time (``PULUMI_TDX_LOCK_STALE_SECONDS``, default 120 s). A holder that
  finds a record not its own at a heartbeat has lost the lock: it stops writing into a volume
  that is now someone else's, and says so.

Inside one process, threads first take a per-(URI, pool) ``RLock``: the provider's gRPC
threads queue in memory instead of polling libvirt, and the lock is reentrant for the thread
that holds it (a delete inside a cleanup pass). Different pools never wait for each other.

Why not a lock-free ledger (one record volume per data volume)? libvirt would still refuse a
refresh while another client builds a volume, a pool delete could still interleave with a
create, and the pool would fill with record volumes; one short critical section per mutation
is simpler to reason about and costs two small libvirt calls. Reads (``volume.read``, state
refresh, listings) take no lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict

import libvirt

from tdx_provider import retry
from tdx_provider.connection import is_no_such
from tdx_provider.errors import LibvirtOperationError
from tdx_provider.storage import lock_record as records

LOCK_VOLUME = "pulumi-tdx-lock.json"
BREAK_VOLUME = "pulumi-tdx-lock-break.json"
STALE_ENV = "PULUMI_TDX_LOCK_STALE_SECONDS"
WAIT_ENV = "PULUMI_TDX_LOCK_WAIT_SECONDS"
# Tests only: seconds between creating the lock volume and writing its record, which widens
# the window in which a waiter reads an empty record (tests/libvirt/test_exclusion.py).
RECORD_DELAY_ENV = "PULUMI_TDX_TEST_LOCK_RECORD_DELAY"
STALE_SECONDS = 120.0
WAIT_SECONDS = 1800.0   # a live holder keeps a waiter waiting at most this long
POLL_FIRST, POLL_MAX = 0.005, 0.05  # a hold lasts milliseconds: poll often (cheap)

log = logging.getLogger(__name__)


def _env_seconds(name: str, default: float) -> float:
    try:
        return max(0.1, float(os.environ.get(name, default)))
    except ValueError:
        return default


def stale_seconds() -> float:
    return _env_seconds(STALE_ENV, STALE_SECONDS)


def wait_seconds() -> float:
    return _env_seconds(WAIT_ENV, WAIT_SECONDS)


class LockTimeoutError(LibvirtOperationError):
    """A live holder kept the pool for longer than :func:`wait_seconds`."""


# --- acquire, hold, release ----------------------------------------------------------------


def _record_delay() -> None:
    delay = os.environ.get(RECORD_DELAY_ENV)
    if delay:
        time.sleep(float(delay))


class _Sightings:
    """How long each volume has shown the same record to this waiter, without a break."""

    def __init__(self) -> None:
        self._since: dict[str, tuple[bytes, float]] = {}

    def unchanged_for(self, name: str, record: bytes) -> float:
        """Seconds since ``record`` was first seen in ``name`` in an unbroken run of looks."""
        now = time.monotonic()
        last = self._since.get(name)
        if last is None or last[0] != record:
            self._since[name] = (record, now)
            return 0.0
        return now - last[1]

    def gone(self, name: str) -> None:
        self._since.pop(name, None)


def _acquire(pool: libvirt.virStoragePool) -> tuple[records.Holder, libvirt.virStorageVol]:
    me = records.Holder.me()
    stale, patience = stale_seconds(), wait_seconds()
    began = time.monotonic()
    sightings = _Sightings()
    attempt = 0
    while True:
        vol, unlisted = records.try_create(pool, LOCK_VOLUME)
        if vol is not None:
            try:
                _record_delay()
                records.write(pool, vol, me)
            except BaseException:
                with contextlib.suppress(libvirt.libvirtError):
                    vol.delete(0)
                raise
            return me, vol
        record = records.read(pool, LOCK_VOLUME)
        if record is None:  # released meanwhile, or a file libvirt has not listed yet
            sightings.gone(LOCK_VOLUME)
            if unlisted:
                with contextlib.suppress(libvirt.libvirtError):
                    retry.transient(lambda: pool.refresh(0))
            continue
        unchanged = sightings.unchanged_for(LOCK_VOLUME, record)
        if unchanged >= stale:
            _break(pool, record, unchanged, sightings)
            continue
        if time.monotonic() - began > patience:
            raise LockTimeoutError(
                f"pool {pool.name()!r} has been locked by {records.describe(record)} for more "
                f"than {patience:.0f} s; try again later ({WAIT_ENV} sets how long to wait)")
        time.sleep(min(POLL_MAX, POLL_FIRST * 2 ** attempt) * (0.5 + secrets.randbelow(50) / 100))
        attempt = min(attempt + 1, 8)


def _break(pool: libvirt.virStoragePool, record: bytes, unchanged: float,
           sightings: _Sightings) -> None:
    """Delete the lock left by ``record``'s holder, unless it changed or someone else is
    breaking it right now (then wait; a breaker left by a killed breaker goes stale too)."""
    breaker, _unlisted = records.try_create(pool, BREAK_VOLUME)
    if breaker is None:
        other = records.read(pool, BREAK_VOLUME)
        if other is None:
            sightings.gone(BREAK_VOLUME)
        elif sightings.unchanged_for(BREAK_VOLUME, other) >= stale_seconds():
            log.warning("pool %s: removing a stale lock-break marker", pool.name())
            records.delete(pool, BREAK_VOLUME)
        time.sleep(POLL_MAX)
        return
    try:
        if records.read(pool, LOCK_VOLUME) == record:
            records.delete(pool, LOCK_VOLUME)
            log.warning(
                "pool %s: broke a stale lock held by %s: unchanged for %.0f s (stale after "
                "%.0f s, %s); that process died or lost its connection",
                pool.name(), records.describe(record), unchanged, stale_seconds(), STALE_ENV)
        sightings.gone(LOCK_VOLUME)
        sightings.gone(BREAK_VOLUME)
    finally:
        records.delete(pool, BREAK_VOLUME)



def _release(pool: libvirt.virStoragePool, holder: records.Holder) -> None:
    """Delete the lock volume if it still carries our token."""
    record = records.read(pool, LOCK_VOLUME)
    if record is None:
        return  # the pool was deleted under the lock (pool.delete ends the lock itself)
    if records.token(record) != holder.token:
        log.warning("pool %s: our lock was broken as stale while we held it (now held by %s)",
                    pool.name(), records.describe(record))
        return
    records.delete(pool, LOCK_VOLUME)


RECONNECT_SECONDS = 20.0  # how long a release waits for a libvirtd that went away to return


def _alive(conn: libvirt.virConnect) -> bool:
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False


def _pool_gone(pool: libvirt.virStoragePool) -> bool:
    try:
        return not pool.isActive()
    except libvirt.libvirtError as exc:
        return is_no_such(exc)


def _release_safely(conn: libvirt.virConnect, uri: str, name: str,
                    pool: libvirt.virStoragePool, holder: records.Holder) -> None:
    """Release in ``finally``: never raises (that would hide the error being handled). When our
    connection died with the lock held (libvirtd restarted), release through a new one, so that
    the next writer need not wait for the stale time."""
    try:
        _release(pool, holder)
        return
    except libvirt.libvirtError as exc:
        if _alive(conn):
            if not _pool_gone(pool):
                log.warning("pool %s: cannot release our lock (%s); other writers will break "
                            "it after %.0f s", name, exc, stale_seconds())
            return
    deadline = time.monotonic() + RECONNECT_SECONDS
    while True:
        try:
            fresh = libvirt.open(uri)
            try:
                found = fresh.storagePoolLookupByName(name)
                if found.isActive():
                    _release(found, holder)
            finally:
                with contextlib.suppress(libvirt.libvirtError):
                    fresh.close()
            return
        except libvirt.libvirtError as exc:
            if is_no_such(exc):
                return
            if time.monotonic() >= deadline:
                log.warning("pool %s: lost the connection while holding the lock and could not "
                            "release it (%s); other writers will break it after %.0f s",
                            name, exc, stale_seconds())
                return
        time.sleep(0.5)


class _Heartbeat:
    """Rewrites the holder record while the lock is held, so waiters see it is alive."""

    def __init__(self, pool: libvirt.virStoragePool, vol: libvirt.virStorageVol,
                 holder: records.Holder) -> None:
        self._pool, self._vol, self._holder = pool, vol, holder
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pulumi-tdx-lock-heartbeat",
                                        daemon=True)

    def _run(self) -> None:
        interval = stale_seconds() / 4
        beat = 0
        while not self._stop.wait(interval):
            beat += 1
            holder = records.Holder(**{**asdict(self._holder), "beat": beat})
            try:
                # A waiter broke our lock (we looked dead): the volume of that name is someone
                # else's now, and writing our record into it would hand their lock to us.
                # (No volume at all: broken, or pool.delete ended the lock itself.)
                found = records.read(self._pool, LOCK_VOLUME)
                if found is None:
                    return
                if records.token(found) != self._holder.token:
                    log.warning("pool %s: our lock was broken as stale while we held it (now "
                                "held by %s); no longer exclusive", self._pool.name(),
                                records.describe(found))
                    return
                records.write(self._pool, self._vol, holder)
            except libvirt.libvirtError as exc:  # a waiter will judge; keep trying
                log.debug("lock heartbeat on pool %s failed: %s", self._pool.name(), exc)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


_guard = threading.Lock()
_local_locks: dict[tuple[str, str], threading.RLock] = {}
_depth: dict[tuple[str, str], int] = {}


def _local_lock(key: tuple[str, str]) -> threading.RLock:
    with _guard:
        return _local_locks.setdefault(key, threading.RLock())


def _running_pool(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool:
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        if is_no_such(exc):
            raise LibvirtOperationError(
                f"storage pool {name!r} does not exist on {conn.getURI()}") from exc
        raise
    if not pool.isActive():
        try:
            pool.create(0)
        except libvirt.libvirtError as exc:
            if not pool.isActive():  # someone else started it meanwhile: fine
                raise LibvirtOperationError(f"cannot start pool {name!r}: {exc}") from exc
    return pool


@contextlib.contextmanager
def pool_lock(conn: libvirt.virConnect, name: str) -> Iterator[libvirt.virStoragePool]:
    """Hold pool ``name`` exclusively (see the module docstring); yields the running pool.

    Reentrant within a thread. Raises :class:`LibvirtOperationError` when the pool does not
    exist, and :class:`LockTimeoutError` when a live holder keeps it too long.
    """
    key = (conn.getURI(), name)
    with _local_lock(key):
        if _depth.get(key):
            _depth[key] += 1
            try:
                yield _running_pool(conn, name)
            finally:
                _depth[key] -= 1
            return
        pool = _running_pool(conn, name)
        holder, vol = _acquire(pool)
        _depth[key] = 1
        try:
            with _Heartbeat(pool, vol, holder):
                yield pool
        finally:
            _depth[key] = 0
            _release_safely(conn, key[0], name, pool, holder)

