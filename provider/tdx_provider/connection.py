"""libvirt connections: one per call, closed on exit.

Connections are never cached on provider objects or module globals: the dynamic-provider process
pickles provider objects into state and serves several gRPC threads at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import libvirt

from .errors import LibvirtOperationError

DEFAULT_URI = "qemu:///system"

# libvirt prints every error to stderr through its default handler; we raise instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


@contextlib.contextmanager
def connect(uri: str = DEFAULT_URI) -> Iterator[libvirt.virConnect]:
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise LibvirtOperationError(f"cannot connect to libvirt at {uri}: {exc}") from exc
    try:
        yield conn
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()


def is_local_uri(uri: str) -> bool:
    """True when the URI reaches the libvirtd of this machine through its default socket, so
    the client and the daemon see the same files. A host part (``qemu+ssh://host/system``) or
    an explicit ``socket=`` (``qemu+unix:///system?socket=...``: perhaps a daemon in a chroot
    or container, or another machine's socket forwarded here) is treated as remote: nothing
    may assume a shared file system (pool exclusion never does, see :mod:`exclusion`)."""
    parts = urlsplit(uri)
    if parts.netloc:
        return False
    return "socket" not in parse_qs(parts.query)


def is_no_such(exc: libvirt.libvirtError) -> bool:
    """True when the error says the object does not exist."""
    return exc.get_error_code() in {
        libvirt.VIR_ERR_NO_DOMAIN,
        libvirt.VIR_ERR_NO_STORAGE_POOL,
        libvirt.VIR_ERR_NO_STORAGE_VOL,
        libvirt.VIR_ERR_NO_NODE_DEVICE,
    }
