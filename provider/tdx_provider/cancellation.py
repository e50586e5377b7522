"""Cancellation of the engine's waits, process-wide: the native provider's Cancel (Pulumi on
Ctrl-C) asks every wait to end early. And deadlines, per thread: an operation given a time
(``customTimeouts.create``) bounds its waits by it and stops long work (an image upload) when
it passes, raising :class:`~tdx_provider.errors.TimedOutError` after removing what it made.

A cancelled wait ends the way its timeout would, never half-way: a delete's ACPI wait forces the
domain off and undefines it (the delete completes, nothing is left half-made); a create's wait
for the SSH forward returns what the domain shows by then (the domain is made and recorded).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from tdx_provider.errors import TimedOutError

_requested = threading.Event()
_local = threading.local()


def request() -> None:
    """Ask every wait of this process to end now (it stays asked: the process is ending)."""
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def pause(seconds: float) -> None:
    """``time.sleep(seconds)`` that returns at once when cancellation is asked."""
    _requested.wait(seconds)


@contextlib.contextmanager
def deadline(seconds: float | None, what: str) -> Iterator[None]:
    """Within the block (on this thread), :func:`check` raises once ``seconds`` have passed
    and :func:`remaining` bounds waits. None or 0: no deadline."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = (time.monotonic() + seconds, what) if seconds else None
    try:
        yield
    finally:
        _local.deadline = previous


def remaining(default: float) -> float:
    """``default`` seconds, or less when this thread's deadline comes sooner."""
    current = getattr(_local, "deadline", None)
    if current is None:
        return default
    return max(0.0, min(default, current[0] - time.monotonic()))


def check() -> None:
    """Raise TimedOutError when this thread's deadline has passed."""
    current = getattr(_local, "deadline", None)
    if current is not None and time.monotonic() > current[0]:
        raise TimedOutError(f"{current[1]} took longer than its timeout")
