"""Cancellation of the engine's waits, process-wide: the native provider's Cancel (Pulumi on
Ctrl-C) asks every wait to end early.

A cancelled wait ends the way its timeout would, never half-way: a delete's ACPI wait forces the
domain off and undefines it (the delete completes, nothing is left half-made); a create's wait
for the SSH forward returns what the domain shows by then (the domain is made and recorded).
"""

from __future__ import annotations

import threading

_requested = threading.Event()


def request() -> None:
    """Ask every wait of this process to end now (it stays asked: the process is ending)."""
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def pause(seconds: float) -> None:
    """``time.sleep(seconds)`` that returns at once when cancellation is asked."""
    _requested.wait(seconds)
