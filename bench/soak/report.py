"""The soak's figures: counted while it runs, printed as one table at the end."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Tally:
    """Thread-safe counters of everything the soak did and saw."""

    cycles: Counter[str] = field(default_factory=Counter)  # per stack, complete cycles
    operations: Counter[str] = field(default_factory=Counter)  # "pulumi up", "tdxctl list", ...
    retries: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)  # injected, by kind
    faults_skipped: Counter[str] = field(default_factory=Counter)  # no target at that moment
    injected: Counter[str] = field(default_factory=Counter)  # failures a fault caused
    converged: int = 0  # recoveries: the first up after an injected failure succeeded
    real: Counter[str] = field(default_factory=Counter)  # failures no fault explains
    lost: list[str] = field(default_factory=list)  # evidence, one line each
    left: list[str] = field(default_factory=list)  # what the final destroy and cleanup left
    lock_breaks: int = 0  # "broke a stale lock" said by a command
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, counter: str, key: str, count: int = 1) -> None:
        with self._lock:
            getattr(self, counter)[key] += count

    def bump(self, attribute: str, count: int = 1) -> None:
        with self._lock:
            setattr(self, attribute, getattr(self, attribute) + count)

    def note(self, attribute: str, line: str) -> None:
        with self._lock:
            getattr(self, attribute).append(line)

    def ok(self, strict: bool = False) -> bool:
        """Nothing lost, nothing left (and, when strict, no real failure)."""
        return not self.lost and not self.left and not (strict and self.real)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "cycles": dict(self.cycles), "operations": dict(self.operations),
                "retries": self.retries, "refusals": dict(self.refusals),
                "faults": dict(self.faults), "faults_skipped": dict(self.faults_skipped),
                "injected_failures": dict(self.injected), "converged": self.converged,
                "real_failures": dict(self.real), "lost": len(self.lost),
                "lost_evidence": list(self.lost), "left": list(self.left),
                "lock_breaks": self.lock_breaks,
            }


def _counts(counter: dict[str, int]) -> str:
    if not counter:
        return "0"
    total = sum(counter.values())
    return f"{total} (" + ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) + ")"


def table(tally: Tally, header: dict[str, str], markers: dict[str, int],
          strict: bool = False) -> str:
    """One Markdown table: what ran, what was done, what went wrong, what was lost."""
    figures = tally.as_dict()
    rows: list[tuple[str, str]] = list(header.items())
    rows += [
        ("cycles (up, change, refresh, destroy)", _counts(figures["cycles"])),
        ("operations", _counts(figures["operations"])),
        ("retries (a command run again after it failed)", str(figures["retries"])),
        ("refusals (expected)", _counts(figures["refusals"])),
        ("faults injected", _counts(figures["faults"])),
        ("faults without a target at their moment", _counts(figures["faults_skipped"])),
        ("stale pool locks broken", str(figures["lock_breaks"])),
        ("failures caused by an injected fault", _counts(figures["injected_failures"])),
        ("recoveries (next command after such a failure succeeded)", str(figures["converged"])),
        ("real failures", _counts(figures["real_failures"])),
        ("overlays marked (data token + xattr / xattr only)",
         f"{markers['data']} / {markers['xattr_only']}"),
        ("marker checks", str(markers["checks"])),
        ("**lost**", f"**{figures['lost']}**"),
        ("left after final destroy and cleanup", str(len(figures["left"])) if not figures["left"]
         else f"{len(figures['left'])}: " + "; ".join(figures["left"])),
        ("result", ("PASS" if tally.ok(strict) else "FAIL")
         + (" (lost 0, nothing left; real failures above)" if tally.ok() and tally.real
            and not strict else "")),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"| {'figure'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {k.ljust(width)} | {v} |" for k, v in rows]
    if tally.lost:
        lines += ["", "lost:"] + [f"- {line}" for line in tally.lost]
    return "\n".join(lines)


def write_json(path: Path, tally: Tally, header: dict[str, str], markers: dict[str, int]) -> None:
    path.write_text(json.dumps({"header": header, "markers": markers, **tally.as_dict()},
                               indent=2) + "\n")
