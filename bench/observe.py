"""Independent observers of a guest's life, with host-side monotonic timestamps.

- :class:`ConsoleWatcher` polls the guests' serial-console log files every 10 ms and records
  when each marker line first appears (the guest prints the ACPI marker when acpid handles the
  power button, and the kernel prints "reboot: Power down" as its last line).
- :class:`LifecycleRecorder` receives libvirt's domain lifecycle events (STARTED, SHUTDOWN =
  QEMU saw the guest power off, STOPPED = QEMU gone and the domain shut off, UNDEFINED) on its
  own connection; libvirtd pushes them, so there is no polling error.

Neither depends on the code under test (they share only libvirt's event loop thread,
``tdx_provider.events``: one per process): they are the yardstick for what our delete reports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path

import libvirt

from tdx_provider import events

from .common import ACPI_MARKER, POWER_DOWN_MARKER, PREFIX, URI, USERSPACE_MARKER, Poller

CONSOLE_POLL = 0.010
MARKERS = {"userspace": USERSPACE_MARKER, "acpi_seen": ACPI_MARKER,
           "powered_down": POWER_DOWN_MARKER}
EVENTS = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: "defined",
    libvirt.VIR_DOMAIN_EVENT_STARTED: "started",
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: "qemu_shutdown",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped",
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: "undefined",
}

class LifecycleRecorder:
    """First time each lifecycle event was seen, per domain with our prefix."""

    def __init__(self, uri: str = URI) -> None:
        events.start_loop()  # the one loop of the process, shared with the engine's index
        self._conn = libvirt.open(uri)
        self._lock = threading.Lock()
        self._times: dict[str, dict[str, float]] = {}
        self._callback = self._conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_event, None
        )

    def _on_event(self, _conn: object, dom: libvirt.virDomain, event: int, _detail: int,
                  _opaque: object) -> None:
        stamp = time.monotonic()
        name = dom.name()
        label = EVENTS.get(event)
        if label is None or not name.startswith(PREFIX):
            return
        with self._lock:
            self._times.setdefault(name, {}).setdefault(label, stamp)

    def reset(self) -> None:
        with self._lock:
            self._times.clear()

    def times(self, name: str) -> dict[str, float]:
        with self._lock:
            return dict(self._times.get(name, {}))

    def close(self) -> None:
        try:
            self._conn.domainEventDeregisterAny(self._callback)
        finally:
            self._conn.close()


class ConsoleWatcher(Poller):
    interval = CONSOLE_POLL
    thread_name = "console-watcher"

    """Polls console log files (10 ms) and records when each marker first shows up."""

    def __init__(self, files: dict[str, Path]) -> None:
        self._files = files
        self._text = {name: "" for name in files}
        self._offsets = dict.fromkeys(files, 0)
        self._seen: dict[str, dict[str, float]] = {name: {} for name in files}
        self._lock = threading.Lock()
        super().__init__()

    def tick(self) -> None:
        for name, path in self._files.items():
            self._poll(name, path)

    def _poll(self, name: str, path: Path) -> None:
        stamp = time.monotonic()
        try:
            with path.open("rb") as handle:
                handle.seek(0, 2)
                size = handle.tell()
                if size < self._offsets[name]:  # truncated when the domain (re)started
                    self._offsets[name] = 0
                    self._text[name] = ""
                handle.seek(self._offsets[name])
                chunk = handle.read()
        except FileNotFoundError:
            return
        if not chunk:
            return
        self._offsets[name] += len(chunk)
        self._text[name] += chunk.decode(errors="replace")
        with self._lock:
            seen = self._seen[name]
            for label, marker in MARKERS.items():
                if label not in seen and marker in self._text[name]:
                    seen[label] = stamp

    def times(self, name: str) -> dict[str, float]:
        with self._lock:
            return dict(self._seen[name])

    def wait_for(self, label: str, names: Iterable[str], timeout: float) -> float:
        """Block until every named console showed ``label``; return the seconds waited."""
        start = time.monotonic()
        wanted = list(names)
        while True:
            with self._lock:
                missing = [n for n in wanted if label not in self._seen[n]]
            if not missing:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                tails = {n: self._text[n][-600:] for n in missing[:2]}
                raise TimeoutError(f"{label!r} not seen within {timeout} s on {missing}: {tails}")
            time.sleep(0.05)
