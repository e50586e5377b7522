"""libvirt connections: one per call, closed on exit.

Connections are never cached on provider objects or module globals: the dynamic-provider process
pickles provider objects into state and serves several gRPC threads at once. The one exception is
:mod:`disk_users`, which keeps one connection per URI for the life of the process to receive
libvirt's domain events; it lives in that module, never on a provider object.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import libvirt

from tdx_provider import defaults, events
from tdx_provider.errors import LibvirtOperationError

DEFAULT_URI = defaults.URI
# Where the system daemon of this machine listens; any other socket is another daemon, which may
# live in another root (a chroot, a container) or forward to another machine.
SYSTEM_SOCKETS = frozenset({"/run/libvirt/libvirt-sock", "/var/run/libvirt/libvirt-sock"})

# libvirt prints every error to stderr through its default handler; we raise instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


@contextlib.contextmanager
def connect(uri: str = DEFAULT_URI) -> Iterator[libvirt.virConnect]:
    # The event loop is registered before any of our connections opens: registering it while
    # another thread opens one would race (disk_users needs it for its own connection).
    events.start_loop()
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
    """True when files named in inputs (kernel, firmware, console log) are this machine's files.

    Only a URI without a host, without a transport (``+ssh``, ``+tcp``, ``+tls``, ``+unix``, ...)
    and without a ``socket=`` other than the system daemon's counts: ``qemu:///system``,
    ``qemu:///session``, ``test:///...``. Anything else is another host, even one on this machine
    (``qemu:///system?socket=<chroot>/run/libvirt/libvirt-sock`` sees the chroot's files).
    """
    try:
        parts = urlsplit(uri)
        query = parse_qs(parts.query)
    except ValueError:
        return False
    if parts.netloc or "+" in parts.scheme:
        return False
    return all(os.path.normpath(s) in SYSTEM_SOCKETS for s in query.get("socket", []))


def is_no_such(exc: libvirt.libvirtError) -> bool:
    """True when the error says the object does not exist."""
    return exc.get_error_code() in {
        libvirt.VIR_ERR_NO_DOMAIN,
        libvirt.VIR_ERR_NO_STORAGE_POOL,
        libvirt.VIR_ERR_NO_STORAGE_VOL,
        libvirt.VIR_ERR_NO_NODE_DEVICE,
    }


def lookup_volume(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
    """Volume ``name`` of ``pool``, or None when it does not exist."""
    try:
        return pool.storageVolLookupByName(name)
    except libvirt.libvirtError as exc:
        if is_no_such(exc):
            return None
        raise
