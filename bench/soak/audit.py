"""What the commands' own words and the pool's ledger say about the pool's exclusion.

- A lock broken as stale while the process named in it still lives means two writers were in
  the pool at once (how a ledger record, or a volume, can go); a holder that says its lock was
  broken while it held it is the same event seen from the other side.
- After an up, the ledger must record every volume the stack declares, with the stack as owner,
  not released.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import libvirt

from tdx_provider.storage.ledger import Entry

BROKE = re.compile(r"broke a stale lock held by (.+?) pid (\d+) on (\S+)")
LOST = "our lock was broken as stale while we held it"


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def lock_findings(output: str) -> list[str]:
    """Breaks of a live holder's lock, and holders that lost theirs, in a command's output."""
    found = []
    here = socket.gethostname()
    for match in BROKE.finditer(output):
        program, pid, host = match.group(1), int(match.group(2)), match.group(3)
        if host == here and _alive(pid):
            found.append(f"broke the lock of a live holder: {program} pid {pid}")
    if LOST in output:
        found.append("a holder's lock was broken while it held it")
    return found


def ledger_findings(entries: dict[str, Entry], wanted: dict[str, str]) -> list[str]:
    """``wanted``: volume -> owner. Missing, foreign or released records."""
    found = []
    for name, owner in sorted(wanted.items()):
        entry = entries.get(name)
        if entry is None:
            found.append(f"no ledger record for {name}")
        elif entry.owner != owner:
            found.append(f"ledger records {name} as {entry.owner}, not {owner}")
        elif entry.released:
            found.append(f"ledger records {name} as released")
    return found


def volume_names(pool: libvirt.virStoragePool) -> list[str]:
    """The pool's volumes in one call. (``listVolumes()`` is two calls, a count and then that
    many names: a volume created in between leaves out an existing one.)"""
    return [vol.name() for vol in pool.listAllVolumes(0)]
