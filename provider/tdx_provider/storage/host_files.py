"""Whether a file exists on the libvirt host, asked through libvirt (no shell, no ssh).

A trust domain's firmware, kernel and initrd are opened by QEMU on the host that runs it, which
for a remote URI is not the machine that runs Pulumi: only libvirt can see them. Libvirt has no
"stat this path" call, but a ``dir`` storage pool lists the files of its directory, so (as
virt-install does, ``virtinst.diskbackend``):

1. the path is looked up as a volume of any running pool (``storageVolLookupByPath``) and
   re-read (``info``), since a pool's list is only as fresh as its last refresh;
2. otherwise a *transient* ``dir`` pool (created, never defined: it leaves no configuration
   behind and vanishes with a daemon restart) named ``ptdx-probe-…`` is made on the parent
   directory; making it lists the directory; the name is looked up in it, and the pool is
   destroyed, whatever happened. Unlike virt-install we never keep (or autostart) that pool.
   Paths of one directory share one probe; threads of one process take turns per directory.

libvirt refuses a second pool on a target directory (``Storage source conflict with pool:
'X'``). When X runs, it is refreshed and asked instead and never destroyed: it is someone's
pool, or another check's probe. When X goes away meanwhile (another check destroyed its probe),
the lookup starts over; a handful of rounds settles any race between concurrent checks.

A probe pool lives for milliseconds, but a process killed while it holds one leaves it running
(libvirtd keeps a transient pool until stopped or restarted). Probe names carry their creation
time (``ptdx-probe-<unix time hex>-<random hex>``), and each check first stops probes older
than :data:`STALE_SECONDS`. Stopping one that is in use after all (clocks of two Pulumi
machines far apart) does no harm: its check starts over as above.

The answer is honest: True (listed now), False (the directory, or the name in it, does not
exist), or None when the host cannot tell, with the reason: a read-only connection, a directory
libvirtd may not read, an inactive pool that owns the directory, a pool that could not be
refreshed, ``/dev``, ``/proc`` and ``/sys`` (not listed as pools: opening what they hold has
side effects), a driver without real storage (``test://``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape

import libvirt

from tdx_provider import retry
from tdx_provider.metadata import PREFIX

PROBE_PREFIX = f"{PREFIX}-probe-"
STALE_SECONDS = 300
ROUNDS = 12  # lookups started over when a pool found by conflict vanished under us
UNLISTABLE = ("/dev", "/proc", "/sys")
_LOCKS: dict[tuple[str, str], threading.Lock] = {}  # per (uri, directory); a few per stack
_LOCKS_GUARD = threading.Lock()
_PROBE_NAME = re.compile(re.escape(PROBE_PREFIX) + r"([0-9a-f]+)-[0-9a-f]+")
_CONFLICT = re.compile(r"conflict with pool:? '([^']+)'")
_KINDS = {
    libvirt.VIR_STORAGE_VOL_FILE: "file",
    libvirt.VIR_STORAGE_VOL_BLOCK: "block",
    libvirt.VIR_STORAGE_VOL_DIR: "dir",
    libvirt.VIR_STORAGE_VOL_NETWORK: "network",
    libvirt.VIR_STORAGE_VOL_NETDIR: "netdir",
    libvirt.VIR_STORAGE_VOL_PLOOP: "ploop",
}


@dataclass(frozen=True)
class HostPath:
    """What the host says about ``path``: ``exists`` is None when it cannot tell (``reason``
    says why); ``kind`` (``file``, ``block``, ``dir``, ...) when it exists."""

    path: str
    exists: bool | None
    kind: str | None = None
    reason: str = ""


class _Again(Exception):
    """A pool found by conflict went away under us: start the lookup over."""


def exists_on_host(conn: libvirt.virConnect, path: str) -> bool | None:
    """True when ``path`` exists on the host of ``conn``, False when it does not, None when
    the host cannot tell."""
    return probe(conn, [path])[path].exists


def missing_on_host(conn: libvirt.virConnect, paths: Iterable[str]) -> list[str]:
    """Those of ``paths`` that certainly do not exist on the host (unknowns are not listed)."""
    return [p for p, found in probe(conn, paths).items() if found.exists is False]


def probe(conn: libvirt.virConnect, paths: Iterable[str]) -> dict[str, HostPath]:
    """Each of ``paths`` (absolute) as the host sees it. Paths in one directory share one
    probe pool."""
    paths = list(dict.fromkeys(paths))
    if conn.getType() == "Test":
        return _unknown(paths, "the test driver has no real files")
    answers: dict[str, HostPath] = {}
    pending: dict[str, list[str]] = {}
    for path in paths:
        answer = _without_pool(conn, path)
        if answer is None:
            pending.setdefault(os.path.dirname(_clean(path)), []).append(path)
        else:
            answers[path] = answer
    if pending:
        sweep_stale(conn)
    for directory, names in pending.items():
        answers.update(_in_directory(conn, directory, names))
    return answers


def sweep_stale(conn: libvirt.virConnect, now: float | None = None) -> list[str]:
    """Stop the probe pools of checks that died (older than :data:`STALE_SECONDS`); their
    names. Best effort: a pool that cannot be stopped is left to the next check."""
    now = time.time() if now is None else now
    stopped = []
    for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_TRANSIENT):
        born = probe_time(pool.name())
        if born is not None and now - born > STALE_SECONDS:
            with contextlib.suppress(libvirt.libvirtError):
                pool.destroy()
                stopped.append(pool.name())
    return stopped


def probe_name(now: float | None = None) -> str:
    """A fresh probe pool name: our prefix, the creation time and a random part."""
    born = int(time.time() if now is None else now)
    return f"{PROBE_PREFIX}{born:x}-{secrets.token_hex(4)}"


def probe_time(name: str) -> int | None:
    """When the probe pool ``name`` was made (unix time); None for other pools."""
    match = _PROBE_NAME.fullmatch(name)
    return int(match.group(1), 16) if match else None


def _without_pool(conn: libvirt.virConnect, path: str) -> HostPath | None:
    """The answers that need no probe pool; None when one is needed."""
    clean = _clean(path)
    if not os.path.isabs(path):
        return HostPath(path, None, reason="is not an absolute path")
    if clean == "/":
        return HostPath(path, True, "dir", "the root directory")
    if any(clean == top or clean.startswith(top + "/") for top in UNLISTABLE):
        return HostPath(path, None, reason="files under /dev, /proc and /sys are not looked up "
                        "through libvirt pools")
    return _listed(conn, path, clean)


def _listed(conn: libvirt.virConnect, path: str, clean: str) -> HostPath | None:
    """``path`` as listed by a running pool and still there (``info`` re-reads it: a pool
    lists what was there at its last refresh); None when no pool lists it now."""
    try:
        vol = conn.storageVolLookupByPath(clean)
        kind = vol.info()[0]
    except libvirt.libvirtError:  # not listed, gone since, or unreadable: ask a fresh list
        return None
    return HostPath(path, True, _KINDS.get(kind, "file"), f"listed as volume {vol.name()!r}")


def _found(path: str, vol: libvirt.virStorageVol) -> HostPath:
    kind = _KINDS.get(vol.info()[0], "file")
    return HostPath(path, True, kind, f"listed as volume {vol.name()!r}")


def _in_directory(conn: libvirt.virConnect, directory: str,
                  paths: list[str]) -> dict[str, HostPath]:
    """Rounds until one answers: checks of this process take turns per directory (no
    collisions among threads); other processes' probes are waited out with jittered backoff."""
    last = ""
    with _directory_lock(conn.getURI(), directory):
        for attempt in range(ROUNDS):
            try:
                return _ask_pool(conn, directory, paths)
            except _Again as again:
                last = str(again)
            time.sleep(retry.backoff(attempt))
    return {p: HostPath(p, None, reason=f"the pools of {directory} kept changing ({last})")
            for p in paths}


def _directory_lock(uri: str, directory: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((uri, directory), threading.Lock())


def _ask_pool(conn: libvirt.virConnect, directory: str,
              paths: list[str]) -> dict[str, HostPath]:
    """One round: a probe pool of ours on ``directory``, or the pool that already owns it."""
    name = probe_name()
    try:
        pool = conn.storagePoolCreateXML(_pool_xml(name, directory), 0)
    except libvirt.libvirtError as exc:
        return _without_probe(conn, directory, paths, exc)
    try:
        return _answers(pool, name, paths, refused="")  # making it listed the directory
    finally:
        _destroy(pool)


def _destroy(pool: libvirt.virStoragePool) -> None:
    """Stop (and so remove: it is transient) a probe pool of ours; one already gone is fine."""
    try:
        retry.transient(pool.destroy, seconds=10)
    except libvirt.libvirtError as exc:
        if not _gone(exc):
            raise


def _without_probe(conn: libvirt.virConnect, directory: str, paths: list[str],
                   exc: libvirt.libvirtError) -> dict[str, HostPath]:
    """Answers when libvirt would not make the probe pool: the directory is missing, another
    pool owns it, or the host cannot tell."""
    code, number = exc.get_error_code(), exc.err[7] if exc.err else -1
    if (code == libvirt.VIR_ERR_SYSTEM_ERROR and number in (errno.ENOENT, errno.ENOTDIR)
            and f"'{directory}'" in str(exc)):
        what = "does not exist" if number == errno.ENOENT else "is not a directory"
        return {p: HostPath(p, False, reason=f"{directory} {what}") for p in paths}
    conflict = _CONFLICT.search(str(exc))
    if conflict is None:
        return _unknown(paths, f"cannot list {directory}: {exc}")
    return _ask_existing(conn, conflict.group(1), directory, paths)


def _ask_existing(conn: libvirt.virConnect, name: str, directory: str,
                  paths: list[str]) -> dict[str, HostPath]:
    """Refresh and ask pool ``name``, which owns ``directory``: never stopped or changed
    otherwise (it is not ours)."""
    try:
        pool = conn.storagePoolLookupByName(name)
        active = pool.isActive()
    except libvirt.libvirtError as exc:
        if _gone(exc):
            raise _Again(f"pool {name!r} went away") from exc
        raise
    if not active and name.startswith(PROBE_PREFIX):
        raise _Again(f"probe pool {name!r} is being stopped")  # transient: it is going away
    if not active:
        return _unknown(paths, f"{directory} is the target of inactive storage pool {name!r} "
                        f"(`virsh pool-start {name}` lets it be checked)")
    refused = ""
    try:
        pool.refresh(0)
    except libvirt.libvirtError as exc:
        if _gone(exc):
            raise _Again(f"pool {name!r} went away") from exc
        refused = str(exc)  # e.g. a volume being built: its last list may still answer
    return _answers(pool, name, paths, refused)


def _answers(pool: libvirt.virStoragePool, name: str, paths: list[str],
             refused: str) -> dict[str, HostPath]:
    """Each path looked up in ``pool``'s list. A name not listed is missing only when the pool
    ran throughout (another check may stop a pool we ask: then the round starts over) and its
    list is fresh (``refused``: why the refresh failed)."""
    answers = {p: _lookup_in(pool, name, p) for p in paths}
    if not all(answers.values()):
        _still_running(pool, name)
    return {p: found or (HostPath(p, None, reason=f"pool {name!r} could not be refreshed: "
                                  f"{refused}") if refused else
                         HostPath(p, False, reason=f"not listed in {_target(pool)}"))
            for p, found in answers.items()}


def _lookup_in(pool: libvirt.virStoragePool, name: str, path: str) -> HostPath | None:
    """The volume named after ``path``'s file in ``pool``, or None. A pool that went away
    meanwhile starts the round over."""
    try:
        return _found(path, pool.storageVolLookupByName(os.path.basename(_clean(path))))
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return None
        if _gone(exc):
            raise _Again(f"pool {name!r} went away") from exc
        raise


def _still_running(pool: libvirt.virStoragePool, name: str) -> None:
    try:
        active = pool.isActive()
    except libvirt.libvirtError as exc:
        if _gone(exc):
            raise _Again(f"pool {name!r} went away") from exc
        raise
    if not active:
        raise _Again(f"pool {name!r} stopped")


def _gone(exc: libvirt.libvirtError) -> bool:
    """True when the error says the pool was stopped or removed under us."""
    return exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL or (
        exc.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID and "not active" in str(exc))


def _target(pool: libvirt.virStoragePool) -> str:
    name = pool.name()
    return "its directory" if name.startswith(PROBE_PREFIX) else f"pool {name!r}"


def _clean(path: str) -> str:
    """``path`` without ``//``, ``.`` or a trailing ``/`` (as libvirt compares paths)."""
    return os.path.normpath(path)


def _unknown(paths: list[str], reason: str) -> dict[str, HostPath]:
    return {p: HostPath(p, None, reason=reason) for p in paths}


def _pool_xml(name: str, directory: str) -> str:
    return (f"<pool type='dir'><name>{name}</name>"
            f"<target><path>{escape(directory)}</path></target></pool>")
