"""Moving bytes in and out of storage volumes through libvirt streams (works on remote URIs)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import libvirt

from tdx_provider import cancellation

CHUNK = 4 * 1024 * 1024


def upload(
    conn: libvirt.virConnect,
    vol: libvirt.virStorageVol,
    chunks: Iterable[bytes],
    length: int,
    on_chunk: Callable[[bytes], None] | None = None,
) -> int:
    """Write ``chunks`` into ``vol`` from offset 0; return the number of bytes sent."""
    stream = conn.newStream(0)
    vol.upload(stream, 0, length, 0)
    sent = 0
    try:
        for chunk in chunks:
            cancellation.check()  # a caller's deadline (customTimeouts) stops a long upload
            if on_chunk is not None:
                on_chunk(chunk)
            offset = 0
            while offset < len(chunk):
                n = stream.send(chunk[offset:] if offset else chunk)
                if n < 0:
                    raise libvirt.libvirtError("stream send failed")
                offset += n
            sent += len(chunk)
        stream.finish()
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        raise
    return sent


def download(conn: libvirt.virConnect, vol: libvirt.virStorageVol) -> Iterable[bytes]:
    """Yield the volume's bytes."""
    stream = conn.newStream(0)
    vol.download(stream, 0, 0, 0)
    try:
        while True:
            data = stream.recv(CHUNK)
            if data == -2:  # would block: only for non-blocking streams
                continue
            if not data:
                break
            assert isinstance(data, bytes)
            yield data
        stream.finish()
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        raise
