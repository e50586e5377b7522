"""Who created, deleted or renamed which file in a directory, and when (Linux fanotify).

A test that finds a pool's volume missing must tell a deleted file from one libvirt did not
list, and name the deleter. :class:`DirEvents` records every create, delete and rename of an
entry of one directory with the time and the process that did it (its pid and command name,
read at once: a short-lived ``qemu-img`` may be gone by the time anyone asks). It needs root
(fanotify) and Linux 5.9 or later (names of directory entries in the events).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import select
import struct
import threading
import time
from pathlib import Path
from types import TracebackType

FAN_CLOEXEC, FAN_NONBLOCK, FAN_CLASS_NOTIF = 0x1, 0x2, 0x0
FAN_REPORT_DFID_NAME = 0x400 | 0x800  # FAN_REPORT_DIR_FID | FAN_REPORT_NAME
FAN_MARK_ADD = 0x1
AT_FDCWD = -100
KINDS = {0x100: "create", 0x200: "delete", 0x40: "moved-from", 0x80: "moved-to"}
FAN_ONDIR = 0x40000000
INFO_DFID_NAME = 2
METADATA = struct.Struct("=IBBHQii")  # event_len, vers, reserved, metadata_len, mask, fd, pid

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
_libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int,
                                ctypes.c_char_p]


@dataclasses.dataclass(frozen=True)
class Event:
    at: float  # time.time()
    kind: str
    name: str
    pid: int
    command: str

    def __str__(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.at)) + f"{self.at % 1:.3f}"[1:]
        return f"{stamp} {self.kind} {self.name} by {self.command} (pid {self.pid})"


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _parse(buf: bytes) -> list[tuple[int, int, str]]:
    """(mask, pid, name) of each event in one read."""
    found, offset = [], 0
    while offset + METADATA.size <= len(buf):
        event_len, _vers, _res, meta_len, mask, fd, pid = METADATA.unpack_from(buf, offset)
        if event_len < METADATA.size:
            break
        if fd >= 0:
            os.close(fd)
        info, name = offset + meta_len, ""
        while info + 4 <= offset + event_len:
            info_type, _pad, info_len = struct.unpack_from("=BBH", buf, info)
            if info_len == 0:
                break
            if info_type == INFO_DFID_NAME:
                handle_bytes = struct.unpack_from("=I", buf, info + 12)[0]
                start = info + 20 + handle_bytes
                name = buf[start:info + info_len].split(b"\0", 1)[0].decode(errors="replace")
            info += info_len
        found.append((mask, pid, name))
        offset += event_len
    return found


class DirEvents:
    """Records creates, deletes and renames in ``path`` while the context is open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[Event] = []
        self._stop = threading.Event()
        self._fd = -1
        self._thread = threading.Thread(target=self._run, name="dir-events", daemon=True)

    def __enter__(self) -> DirEvents:
        fd = _libc.fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK
                                 | FAN_REPORT_DFID_NAME, os.O_RDONLY)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "fanotify_init")
        mask = sum(KINDS) | FAN_ONDIR
        if _libc.fanotify_mark(fd, FAN_MARK_ADD, mask, AT_FDCWD, str(self.path).encode()) < 0:
            errno = ctypes.get_errno()
            os.close(fd)
            raise OSError(errno, f"fanotify_mark {self.path}")
        self._fd = fd
        self._thread.start()
        return self

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            try:
                buf = os.read(self._fd, 65536)
            except BlockingIOError:
                continue
            now = time.time()
            for mask, pid, name in _parse(buf):
                for bit, kind in KINDS.items():
                    if mask & bit:
                        self.events.append(Event(now, kind, name, pid, _command(pid)))

    def __exit__(self, _type: type[BaseException] | None, _exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def of(self, name: str) -> list[Event]:
        return [e for e in list(self.events) if e.name == name]
