"""Bounded retries of libvirt's transient refusals.

libvirt refuses some storage calls while other work on the same pool or volume is in flight,
and the refusal goes away by itself within moments:

- ``pool '…' has asynchronous jobs running``: a refresh, stop or undefine while a volume is
  being built (by anyone: another stack, ``virsh``, libvirtd's own refresh after an upload);
- ``volume '…' is still being allocated``: the volume is being built;
- ``volume '…' is still in use``: an upload or download stream is open on it.

Our own processes serialise pool mutations (:mod:`tdx_provider.storage.exclusion`), but a client
that does not take part (``virsh``, an older pulumi-tdx, libvirtd itself) can still cause them.
These are retried with exponential backoff for at most :data:`RETRY_SECONDS`; any other error,
or one that outlasts the bound, is raised unchanged.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable
from typing import TypeVar

import libvirt

T = TypeVar("T")

RETRY_ENV = "PULUMI_TDX_RETRY_SECONDS"
RETRY_SECONDS = 60.0
FIRST_DELAY = 0.05
MAX_DELAY = 1.0

_TRANSIENT = re.compile(
    r"asynchronous jobs running|still being allocated|is still in use|"
    r"storage pool .* is starting up",
    re.IGNORECASE,
)


def retry_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(RETRY_ENV, RETRY_SECONDS)))
    except ValueError:
        return RETRY_SECONDS


def is_transient(exc: libvirt.libvirtError) -> bool:
    """True for the refusals listed in the module docstring."""
    return bool(_TRANSIENT.search(str(exc)))


def backoff(attempt: int) -> float:
    """Seconds to sleep before retry number ``attempt`` (0-based), with jitter so that two
    waiting clients do not retry in lockstep."""
    delay: float = min(MAX_DELAY, FIRST_DELAY * 2 ** attempt)
    return delay * random.uniform(0.5, 1.0)


def transient(call: Callable[[], T], *, seconds: float | None = None) -> T:
    """Run ``call``; retry it while libvirt refuses it transiently, at most ``seconds``."""
    deadline = time.monotonic() + (retry_seconds() if seconds is None else seconds)
    attempt = 0
    while True:
        try:
            return call()
        except libvirt.libvirtError as exc:
            if not is_transient(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(backoff(attempt))
        attempt += 1
