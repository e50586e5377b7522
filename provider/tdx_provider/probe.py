"""Best-effort reads for reports: a value that cannot be read is ``None``, not a failure.

An inventory reads many live objects that other processes change under it (a domain that
vanished, an unreadable tag, a volume deleted while we looked); one such read must not end the
report, so it shows as unknown instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import libvirt
from lxml import etree

from tdx_provider.errors import TdxError

# What a display probe may run into: the value then reads as unknown.
PROBE_ERRORS = (libvirt.libvirtError, TdxError, OSError, ValueError, etree.LxmlError)

T = TypeVar("T")


def probe(read: Callable[[], T]) -> T | None:
    """``read()``, or None when it runs into one of :data:`PROBE_ERRORS`."""
    try:
        return read()
    except PROBE_ERRORS:
        return None
