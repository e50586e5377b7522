"""Waiting for what a test itself started, by name, through libvirt's events.

A test that must act "as soon as a domain exists" should not list the host's domains to find
out: every listing locks each domain in turn, and a guest that anyone else is stopping holds its
lock for up to 2 s (docs/performance.md). :class:`DomainsDefined` asks libvirt only about the
names the test knows, and learns the moment one is defined from a lifecycle event.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from types import TracebackType

import libvirt

from tdx_provider import events
from tdx_provider.connection import connect, is_no_such


class DomainsDefined:
    """Set once any of ``names`` is defined on ``uri`` (already, or from now on)."""

    def __init__(self, uri: str, names: Iterable[str]) -> None:
        self.names = frozenset(names)
        self.uri = uri
        self.seen = threading.Event()
        self._conn: libvirt.virConnect | None = None
        self._callback: int | None = None

    def _on_lifecycle(self, _conn: object, dom: libvirt.virDomain, event: int,
                      *_: object) -> None:
        if event == libvirt.VIR_DOMAIN_EVENT_DEFINED and dom.name() in self.names:
            self.seen.set()

    def _already(self) -> bool:
        assert self._conn is not None
        for name in sorted(self.names):
            try:
                self._conn.lookupByName(name)
                return True
            except libvirt.libvirtError as exc:
                if not is_no_such(exc):
                    raise
        return False

    def __enter__(self) -> DomainsDefined:
        events.start_loop()  # before the open: only later connections deliver events
        self._conn = libvirt.open(self.uri)
        self._callback = self._conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None)
        if self._already():  # defined before the callback was registered
            self.seen.set()
        return self

    def __exit__(self, _type: type[BaseException] | None, _exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(libvirt.libvirtError):
            if self._callback is not None:
                self._conn.domainEventDeregisterAny(self._callback)
            self._conn.close()
        self._conn = None


def defined_and_running(uri: str, names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(defined, running) among ``names``, asked by name (no listing of the host's domains)."""
    defined, running = [], []
    with connect(uri) as conn:
        for name in sorted(names):
            try:
                dom = conn.lookupByName(name)
                active = dom.isActive()
            except libvirt.libvirtError as exc:
                if is_no_such(exc):
                    continue
                raise
            defined.append(name)
            if active:
                running.append(name)
    return defined, running
