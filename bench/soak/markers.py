"""Markers: a token the soak writes into every overlay a stack declares, and the check that a
declared overlay is still the one the soak marked.

Two places carry the token:

- *data*: 8 runs of 512 bytes at :data:`OFFSET` of the guest-visible disk, each run filled with
  one byte of the token, written with ``qemu-io`` through the qcow2 driver (so the image stays
  valid: the overlay allocates a cluster like any guest write). The test guest reads only the
  first sector of its disk, so it never touches them. ``qemu-io`` needs the image's write lock,
  which QEMU holds while a guest runs on it: a data token is written only into an overlay no
  running domain uses, and read back with ``-U`` (shared, read-only) at any time;
- *xattr*: ``user.pulumi-tdx-soak`` on the file, set at once whether a guest runs on it or not.

A recreated volume (a new file) has neither; a volume formatted again in place loses the data
token. Either is *lost* while its stack still declares it, as is a file that is gone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

OFFSET = 48 * 1024 * 1024  # inside the test guest's 64 MiB disk, far from its first sector
RUN = 512
TOKEN_BYTES = 8
XATTR = "user.pulumi-tdx-soak"
QEMU_IO_TIMEOUT = 60


def _qemu_io(path: Path, commands: list[str], *, write: bool) -> subprocess.CompletedProcess[str]:
    args = ["qemu-io", "-f", "qcow2"] + ([] if write else ["-r", "-U"])
    for command in commands:
        args += ["-c", command]
    return subprocess.run([*args, str(path)], capture_output=True, text=True,
                          timeout=QEMU_IO_TIMEOUT, check=False)


def write_data(path: Path, token: bytes) -> str | None:
    """Write the data token; None when done, else why not (in use: the write lock is QEMU's)."""
    proc = _qemu_io(path, [f"write -P {byte:#04x} {OFFSET + i * RUN} {RUN}"
                           for i, byte in enumerate(token)], write=True)
    if proc.returncode == 0 and "error" not in (proc.stdout + proc.stderr).lower():
        return None
    return (proc.stdout + proc.stderr).strip()[-300:]


def data_matches(path: Path, token: bytes) -> tuple[bool, str]:
    """(whether the data token is there, qemu-io's words)."""
    proc = _qemu_io(path, [f"read -P {byte:#04x} {OFFSET + i * RUN} {RUN}"
                           for i, byte in enumerate(token)], write=False)
    said = (proc.stdout + proc.stderr).strip()
    return proc.returncode == 0 and "fail" not in said.lower(), said[-300:]


def write_xattr(path: Path, token: bytes) -> None:
    os.setxattr(path, XATTR, token.hex().encode())


def read_xattr(path: Path) -> str | None:
    try:
        return os.getxattr(path, XATTR).decode()
    except OSError:
        return None


@dataclass
class Marked:
    """One declared overlay and the token the soak put in it."""

    stack: str
    name: str
    path: Path
    token: bytes
    data: bool  # the data token was written (else the xattr alone)
    since: float = field(default_factory=time.monotonic)
    inode: int = 0


@dataclass
class Verdict:
    ok: bool
    what: str  # "ok", "gone", "replaced" (another file), "xattr changed", "data changed"
    evidence: str = ""


def verify(marked: Marked, attempts: int = 3) -> Verdict:
    """Is the overlay still the marked file with its token? A data mismatch is read again
    (``-U`` may read a cluster table in the middle of an update) before it counts."""
    try:
        st = os.stat(marked.path)
    except FileNotFoundError:
        return Verdict(False, "gone", f"{marked.path} does not exist")
    if st.st_ino != marked.inode:
        return Verdict(False, "replaced",
                       f"inode {st.st_ino}, was {marked.inode}; xattr {read_xattr(marked.path)}")
    xattr = read_xattr(marked.path)
    if xattr != marked.token.hex():
        return Verdict(False, "xattr changed", f"xattr {xattr!r}, wrote {marked.token.hex()}")
    if not marked.data:
        return Verdict(True, "ok")
    said = ""
    for attempt in range(attempts):
        matches, said = data_matches(marked.path, marked.token)
        if matches:
            return Verdict(True, "ok")
        if not marked.path.exists():
            return Verdict(False, "gone", f"{marked.path} vanished while read")
        time.sleep(0.5 * (attempt + 1))
    return Verdict(False, "data changed", said)


class Tracker:
    """The overlays the soak's stacks declare right now, with their markers.

    A stack declares its overlays after an up succeeds and gives them up *before* anything that
    may delete them legitimately starts (its destroy, an operator's ``tdxctl delete``); in
    between, gone or changed is lost.
    """

    def __init__(self, say: Callable[[str], None] = print) -> None:
        self.say = say
        self._lock = threading.Lock()
        self._marked: dict[Path, Marked] = {}
        self.data_markers = 0
        self.xattr_only = 0
        self.checks = 0

    def declare(self, stack: str, overlays: dict[str, Path]) -> list[tuple[Marked, Verdict]]:
        """After a successful up: check what the stack declared before, mark what is new.
        Returns the failed checks; such an overlay (counted lost once) is marked again."""
        failed = []
        with self._lock:
            for name, path in overlays.items():
                known = self._marked.get(path)
                if known is not None:
                    verdict = self._verify_locked(known)
                    if verdict.ok:
                        continue
                    failed.append((known, verdict))
                if path.exists():
                    self._marked[path] = self._mark(stack, name, path)
            for path in [p for p, m in self._marked.items()
                         if m.stack == stack and m.name not in overlays]:
                del self._marked[path]  # no longer declared (a smaller program)
        return failed

    def _mark(self, stack: str, name: str, path: Path) -> Marked:
        token = secrets.token_bytes(TOKEN_BYTES)
        write_xattr(path, token)
        why_not = write_data(path, token)
        if why_not is None:
            self.data_markers += 1
        else:
            self.xattr_only += 1
        self.say(f"marked {name} {token.hex()}: "
                 + ("data + xattr" if why_not is None else f"xattr only ({why_not[:70]})"))
        return Marked(stack, name, path, token, why_not is None, inode=os.stat(path).st_ino)

    def mark_data_where_free(self, stack: str, in_use: set[Path]) -> None:
        """Add the data token to a stack's xattr-only overlays that no domain uses now."""
        with self._lock:
            for marked in self._marked.values():
                if marked.stack == stack and not marked.data and marked.path not in in_use:
                    verdict = self._verify_locked(marked)
                    if verdict.ok and write_data(marked.path, marked.token) is None:
                        marked.data = True
                        self.data_markers += 1
                        self.xattr_only -= 1
                        self.say(f"marked {marked.name}: data token added (no guest on it now)")

    def hand_over(self, stack: str, name: str, holder: str) -> bool:
        """The overlay ``name`` of ``stack`` stays declared, now by ``holder`` (a guest that
        runs on it), with the same marker; the stack's other overlays are released."""
        with self._lock:
            kept = False
            for path in [p for p, m in self._marked.items() if m.stack == stack]:
                if self._marked[path].name == name:
                    self._marked[path].stack, kept = holder, True
                else:
                    del self._marked[path]
            return kept

    def release(self, stack: str) -> None:
        with self._lock:
            for path in [p for p, m in self._marked.items() if m.stack == stack]:
                del self._marked[path]

    def declared(self, stack: str | None = None) -> list[Marked]:
        with self._lock:
            return [m for m in self._marked.values() if stack is None or m.stack == stack]

    def verify_all(self, stack: str | None = None) -> list[tuple[Marked, Verdict]]:
        """Check every declared overlay (of one stack); each is checked holding the tracker, so
        a stack cannot give it up and delete it in the middle of its check."""
        failed = []
        for marked in self.declared(stack):
            with self._lock:
                if self._marked.get(marked.path) is not marked:
                    continue  # given up meanwhile
                verdict = self._verify_locked(marked)
            if not verdict.ok:
                failed.append((marked, verdict))
        return failed

    def _verify_locked(self, marked: Marked) -> Verdict:
        self.checks += 1
        return verify(marked)

    def forget(self, marked: Marked) -> None:
        """A lost overlay is counted once; the stack's next up declares what it holds then."""
        with self._lock, contextlib.suppress(KeyError):
            if self._marked[marked.path] is marked:
                del self._marked[marked.path]
