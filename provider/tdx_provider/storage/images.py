"""Image sources for BaseImage: local path, ``file://`` or ``http(s)://`` URL.

Reading is streamed (constant memory); the format is detected from the first bytes.
"""

from __future__ import annotations

import contextlib
import os
import struct
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from tdx_provider.errors import InputError
from tdx_provider.storage import streams

QCOW2_MAGIC = b"QFI\xfb"
HEADER_BYTES = 512


@dataclass(frozen=True)
class SourceHeader:
    format: str          # "qcow2" or "raw"
    virtual_size: int    # bytes the guest sees
    backing_file: bool   # a qcow2 with its own backing file cannot be a standalone base


def detect(header: bytes, file_size: int) -> SourceHeader:
    if header[:4] == QCOW2_MAGIC and len(header) >= 32:
        backing_offset, backing_size = struct.unpack(">QI", header[8:20])
        (virtual_size,) = struct.unpack(">Q", header[24:32])
        return SourceHeader("qcow2", virtual_size, backing_offset != 0 and backing_size != 0)
    return SourceHeader("raw", file_size, False)


def validate_source(field: str, source: object) -> str:
    if not isinstance(source, str) or not source:
        raise InputError(field, "must be a local absolute path, a file:// URL or an http(s):// URL")
    scheme = urllib.parse.urlsplit(source).scheme
    if scheme in ("http", "https"):
        return source
    path = local_path(source)
    if path is None:
        raise InputError(field, f"unsupported source {source!r}: use a path, file:// or http(s)://")
    if not os.path.isabs(path):
        raise InputError(field, f"{source!r} must be an absolute path")
    if not os.path.isfile(path):
        raise InputError(field, f"file {path!r} does not exist")
    return source


def local_path(source: str) -> str | None:
    parts = urllib.parse.urlsplit(source)
    if parts.scheme == "file":
        return urllib.parse.unquote(parts.path)
    if parts.scheme == "":
        return source
    return None


class Source(contextlib.AbstractContextManager["Source"]):
    """An opened image source: its size, its header, and its bytes in chunks."""

    def __init__(self, source: str, timeout: float = 60.0) -> None:
        self.source = source
        path = local_path(source)
        self._stream: BinaryIO
        if path is not None:
            self._stream = open(path, "rb")  # noqa: SIM115 (closed in __exit__)
            self.size = os.fstat(self._stream.fileno()).st_size
        else:
            response = urllib.request.urlopen(source, timeout=timeout)
            length = response.headers.get("Content-Length")
            if length is None:
                response.close()
                raise InputError("source", f"{source!r} did not announce a Content-Length")
            self._stream = response
            self.size = int(length)
        self._head = self._stream.read(HEADER_BYTES)
        self.header = detect(self._head, self.size)

    def chunks(self) -> Iterator[bytes]:
        yield self._head
        while chunk := self._stream.read(streams.CHUNK):
            yield chunk

    def __exit__(self, *exc: object) -> None:
        self._stream.close()
