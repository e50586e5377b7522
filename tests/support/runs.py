"""Run-unique name prefixes, so that test runs sharing one libvirtd never sweep each other.

Every process that creates libvirt objects for tests (a pytest session, ``make bench``) takes a
short run id and holds an exclusive ``flock`` on ``/run/pulumi-tdx-tests/<id>.lock`` for as long
as it lives. Its objects are named ``<base><id>-…`` (``ptdx-lt-3f9a-…``). A run that starts
sweeps objects of a base prefix only when their run id's lock is free: that run has ended or
was killed (the kernel drops the lock with the process), so what it left is stale. Objects of a
run that is still going are left alone.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from functools import cache
from pathlib import Path

LOCK_DIR = Path("/run/pulumi-tdx-tests")


def _current(fd: int, path: Path) -> bool:
    """True when ``path`` still names the file open at ``fd``: a sweeper that judged that run
    dead may have unlinked it, and a lock on an unlinked file marks nothing."""
    try:
        return os.fstat(fd).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False


def claim(candidate: str) -> int | None:
    """Take run id ``candidate``: its lock file, locked and current; None when a live run has
    it, or a sweeper removed the file under us (draw again)."""
    path = LOCK_DIR / f"{candidate}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)  # a live run has that id
        return None
    if not _current(fd, path):
        os.close(fd)
        return None
    return fd


@cache
def run_id() -> str:
    """This process's run id; the first call takes the lock that marks the run as alive."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    while True:
        candidate = secrets.token_hex(2)
        fd = claim(candidate)
        if fd is None:
            continue
        os.write(fd, f"{os.getpid()}\n".encode())
        # The descriptor stays open (and locked) until the process exits.
        return candidate


def run_prefix(base: str) -> str:
    """``base`` plus this run's id: the prefix every object of this run carries."""
    return f"{base}{run_id()}-"


def run_is_alive(candidate: str) -> bool:
    """True while the process that holds run id ``candidate`` lives (its lock is held). The
    lock file of an ended run is removed while we hold its lock, so a new run that opened it
    just before cannot mistake a lock on the removed file for its own (see :func:`claim`)."""
    if candidate == run_id():
        return True
    path = LOCK_DIR / f"{candidate}.lock"
    while True:
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            if not _current(fd, path):
                continue  # replaced meanwhile (a new run took the id): judge that one
            path.unlink()
            return False
        finally:
            os.close(fd)


def is_stale(name: str, base: str) -> bool:
    """True for a name under ``base`` whose run has ended (names without a run id included)."""
    if not name.startswith(base):
        return False
    candidate = name[len(base):].split("-", 1)[0]
    return not run_is_alive(candidate)
