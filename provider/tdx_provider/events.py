"""libvirt's default event loop, run once per process in a daemon thread.

libvirt delivers events (domain lifecycle, device changes, a connection closing) only on
connections opened after an event loop implementation is registered, and only while some thread
runs that loop. :func:`start_loop` does both, once; call it before opening such a connection.
"""

from __future__ import annotations

import threading

import libvirt

_lock = threading.Lock()
_started = False


def start_loop() -> None:
    """Register libvirt's default event loop and run it in a daemon thread (once per process)."""
    global _started
    with _lock:
        if _started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _started = True
