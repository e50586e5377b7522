"""The event-kept index of a host's domains and their disks, which :mod:`.disk_users` scans
without waiting on a domain that libvirt holds (why: see that module).

How
    One :class:`DiskIndex` per process and URI knows every domain of that host: its name and the
    disks of its definitions. One listing fills it, and libvirt's events keep it current, on a
    connection of its own.

    - **Unsettled.** An event that can add or remove a domain or change a definition's disks
      marks that domain unsettled until it has been read again: defined, undefined, started,
      stopped, device added or removed, block job. A disk hot-plugged into a running domain
      or unplugged from it (``attachDeviceFlags``/``detachDeviceFlags`` with
      ``VIR_DOMAIN_AFFECT_LIVE``) sends device added or removed on libvirt 9.0 and 12.8 alike;
      an unplugged disk leaves the live definition, and is announced, once the guest has
      released it, so until then it still counts.
    - **Stopping.** A power-off event marks a domain as stopping until it stops, starts or
      resumes, for at most ``STOPPING_AT_MOST`` seconds. This is the window in which libvirt
      holds it. Power-off, suspend and resume do not touch a definition.

    Each :meth:`DiskIndex.scan` works like this:

    - **Stopping and settled domains.** While any domain is both, the scan sends no listing,
      and it judges those domains by their last read without asking libvirt.
    - **Otherwise, a listing.** The scan asks libvirt for the domains and waits for the answer
      at most ``PATIENCE`` seconds. Normally it comes in milliseconds, and then it is the
      membership, so the scan is as current as a plain one. A late answer means libvirt holds
      a domain the events did not announce (a forced stop, say); then the index's
      event-kept membership stands.
    - **Reads.** Every other member's XML is read in parallel (a lookup by UUID locks only that
      domain), until the same deadline. A domain that has not answered by then is judged by
      its last read if it is settled. An unsettled one, or one only the listing knows, is
      waited for. A listing or read that libvirt has held for longer than ``PATIENCE`` is
      shared by later scans, not repeated.

    So while libvirt holds a domain, a scan takes at most about ``PATIENCE`` (0.05 s by default,
    ``PULUMI_TDX_DOMAIN_PATIENCE_SECONDS``) instead of the hold.

What it gives up, only while libvirt holds some domain
    - A domain defined a few milliseconds before the scan is not seen if its event has not
      arrived yet. A plain scan misses one defined a few milliseconds after it, and always did.
    - libvirt 9.0 (Debian 12) sends no event when a disk is added to a persistent definition
      alone (``attach-device --config``); libvirt 12.8 sends ``defined/updated``. On 9.0, a
      held domain that got the disk that way since its last read is judged by that read.
    - The first scan of a process has no index yet. If libvirt holds a domain at that moment,
      that scan waits for it, once. :func:`.disk_users.warm` starts that first listing in the
      background, and the dynamic providers call it when they create, update or delete.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

import libvirt

from tdx_provider import events
from tdx_provider.connection import is_no_such
from tdx_provider.storage.domain_disks import DomainDisks, read_domain

PATIENCE = float(os.environ.get("PULUMI_TDX_DOMAIN_PATIENCE_SECONDS", "0.05"))
READERS = 8  # threads that read one scan's domains; a held domain keeps one of them
STOPPING_AT_MOST = 30.0  # a powered-off domain not stopped after this long is read again

T = TypeVar("T")


def in_background(work: Callable[[], T], name: str = "tdx-disk-users") -> Future[T]:
    """Run ``work`` in a daemon thread: one that libvirt blocks never holds up the exit."""
    future: Future[T] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(work())
        except BaseException as exc:  # handed to whoever waits for it
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


@dataclasses.dataclass
class _Entry:
    name: str
    read: DomainDisks | None = None  # the last successful read
    changes: int = 0  # events seen that may have changed this domain
    read_at: int = -1  # ``changes`` when the last successful read began
    powered_off: float | None = None  # when its guest powered off, until it stops or runs

    @property
    def settled(self) -> bool:
        return self.read is not None and self.read_at == self.changes

    def stopping(self, now: float) -> bool:
        return self.powered_off is not None and now - self.powered_off < STOPPING_AT_MOST


# Lifecycle events after which a domain's existence or disks may differ.
_CHANGING = frozenset({
    libvirt.VIR_DOMAIN_EVENT_DEFINED,
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED,
    libvirt.VIR_DOMAIN_EVENT_STARTED,
    libvirt.VIR_DOMAIN_EVENT_STOPPED,
})
# Lifecycle events after which a powered-off domain is no longer on its way to being stopped.
_NOT_STOPPING = frozenset({
    libvirt.VIR_DOMAIN_EVENT_STARTED,
    libvirt.VIR_DOMAIN_EVENT_STOPPED,
    libvirt.VIR_DOMAIN_EVENT_RESUMED,
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED,
})


class DiskIndex:
    """The domains of one libvirt host and the disks each names, kept current by events."""

    def __init__(self, uri: str) -> None:
        events.start_loop()  # before the open: only later connections deliver events
        self.uri = uri
        self._conn = libvirt.open(uri)
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._listed = threading.Event()  # one listing has filled the index
        self._listing: tuple[float, Future[set[str]]] | None = None  # the latest, and its start
        self._reading: dict[str, tuple[float, Future[DomainDisks | None]]] = {}  # in flight
        self.broken = threading.Event()  # the connection closed: events may have been lost
        self._callbacks: list[int] = []
        try:
            self._conn.registerCloseCallback(lambda *_: self.broken.set(), None)
            self._callbacks.append(self._conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None))
            for event_id in (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED,
                             libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                             libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2):
                self._callbacks.append(self._conn.domainEventRegisterAny(
                    None, event_id, self._on_change, None))
        except libvirt.libvirtError:
            self.close()
            raise
        self._start_listing()  # after the callbacks: a domain defined meanwhile is not missed

    # -- events (run on the event-loop thread) ----------------------------------------------
    def _on_lifecycle(self, _conn: object, dom: libvirt.virDomain, event: int, *_: object) -> None:
        if event in _CHANGING:
            self._changed(dom)
        if event == libvirt.VIR_DOMAIN_EVENT_SHUTDOWN or event in _NOT_STOPPING:
            uuid, now = dom.UUIDString(), time.monotonic()
            with self._lock:
                entry = self._entries.setdefault(uuid, _Entry(dom.name()))
                entry.powered_off = now if event == libvirt.VIR_DOMAIN_EVENT_SHUTDOWN else None

    def _on_change(self, _conn: object, dom: libvirt.virDomain, *_: object) -> None:
        self._changed(dom)

    def _changed(self, dom: libvirt.virDomain) -> None:
        uuid, name = dom.UUIDString(), dom.name()
        with self._lock:
            entry = self._entries.setdefault(uuid, _Entry(name))
            entry.name = name
            entry.changes += 1

    # -- membership --------------------------------------------------------------------------
    def _list(self) -> set[str]:
        """List the host's domains and make the index's membership that list."""
        with self._lock:
            before = {uuid: e.changes for uuid, e in self._entries.items()}
        listed = {dom.UUIDString(): dom.name() for dom in self._conn.listAllDomains(0)}
        with self._lock:
            for uuid, name in listed.items():
                self._entries.setdefault(uuid, _Entry(name))
            for uuid in [u for u in self._entries if u not in listed]:
                if before.get(uuid) == self._entries[uuid].changes:  # no event since: gone
                    del self._entries[uuid]
        self._listed.set()
        return set(listed)

    # -- reads -------------------------------------------------------------------------------
    def _read(self, uuid: str) -> DomainDisks | None:
        with self._lock:
            entry = self._entries.get(uuid)
            began = entry.changes if entry is not None else None
        try:
            found = read_domain(self._conn.lookupByUUIDString(uuid))
        except libvirt.libvirtError as exc:
            if not is_no_such(exc):
                raise
            found = None
        with self._lock:
            entry = self._entries.get(uuid)
            if entry is not None and entry.changes == began:
                if found is None:
                    del self._entries[uuid]
                else:
                    entry.name, entry.read, entry.read_at = found.name, found, began
        return found

    def _read_all(self, uuids: Iterable[str]) -> dict[str, Future[DomainDisks | None]]:
        """Read these domains in parallel. A read of the same domain that libvirt has held for
        longer than ``PATIENCE`` already is shared, not repeated: each repeat would hold one
        more of libvirtd's workers (see :mod:`.disk_users`)."""
        futures: dict[str, Future[DomainDisks | None]] = {}
        todo: collections.deque[str] = collections.deque()
        now = time.monotonic()
        with self._lock:
            for uuid in sorted(uuids):
                stuck = self._reading.get(uuid)
                if stuck is not None and now - stuck[0] > PATIENCE:
                    futures[uuid] = stuck[1]
                    continue
                future: Future[DomainDisks | None] = Future()
                futures[uuid] = future
                self._reading[uuid] = (now, future)
                todo.append(uuid)

        def reader() -> None:
            while True:
                try:
                    uuid = todo.popleft()
                except IndexError:
                    return
                future = futures[uuid]
                future.set_running_or_notify_cancel()
                try:
                    future.set_result(self._read(uuid))
                except BaseException as exc:  # handed to the scan
                    future.set_exception(exc)
                with self._lock:
                    if self._reading.get(uuid, (0.0, None))[1] is future:
                        del self._reading[uuid]

        for _ in range(min(READERS, len(todo))):
            threading.Thread(target=reader, name="tdx-disk-reader", daemon=True).start()
        return futures

    def _start_listing(self) -> Future[set[str]]:
        """A listing of the host's domains; one that libvirt has held for longer than
        ``PATIENCE`` already is shared, like reads are."""
        with self._lock:
            stuck = self._listing
            if stuck is not None and not stuck[1].done() and time.monotonic() - stuck[0] > PATIENCE:
                return stuck[1]
            listing = in_background(self._list)
            self._listing = (time.monotonic(), listing)
            return listing

    def scan(self) -> list[DomainDisks]:
        with self._lock:
            now = time.monotonic()
            members = set(self._entries)
            stopping = {u for u, e in self._entries.items() if e.stopping(now) and e.settled}
        # A request about a domain libvirt holds keeps one of libvirtd's workers, and with about
        # five of them held, every other client's requests wait too: ask nothing that would wait
        # for a domain we know is being stopped.
        listing = None if stopping and self._listed.is_set() else self._start_listing()
        if not self._listed.is_set() and listing is not None:  # no index yet: only the listing
            members = listing.result()
        futures = self._read_all(members - stopping)  # read what we know while libvirt lists
        deadline = time.monotonic() + PATIENCE
        try:
            listed = listing.result(timeout=PATIENCE) if listing is not None else None
        except FutureTimeout:  # libvirt holds a domain: the event-kept membership stands
            listed = None
        if listed is not None:  # libvirt's list, in time: it is the membership
            futures = {u: f for u, f in futures.items() if u in listed}
            futures.update(self._read_all(listed - members))
            stopping &= listed
        found = [known for u in stopping if (known := self._known(u)) is not None]
        for uuid, future in sorted(futures.items()):
            try:
                result = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                result = self._known(uuid)
                if result is None:  # unsettled or never read: only libvirt's answer will do
                    result = future.result()
            if result is not None:
                found.append(result)
        return sorted(found, key=lambda d: d.uuid)

    def _known(self, uuid: str) -> DomainDisks | None:
        with self._lock:
            entry = self._entries.get(uuid)
            if entry is None or not entry.settled or entry.read is None:
                return None
            return dataclasses.replace(entry.read, name=entry.name)

    def settled(self) -> dict[str, bool]:
        """Whether each known domain is settled, by name (for tests and ``tdxctl``)."""
        with self._lock:
            return {e.name: e.settled for e in self._entries.values()}

    def close(self) -> None:
        for callback in self._callbacks:
            with contextlib.suppress(libvirt.libvirtError):
                self._conn.domainEventDeregisterAny(callback)
        with contextlib.suppress(libvirt.libvirtError):
            self._conn.close()
