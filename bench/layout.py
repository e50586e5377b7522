"""Names and paths of one benchmark workload (all libvirt names carry the bench prefix)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from .common import PREFIX, console_log, pool_dir


@dataclass(frozen=True)
class Layout:
    label: str   # "floor", "prov", "stack", ...: keeps concurrent workloads apart
    n: int

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.label}-"

    @property
    def pool(self) -> str:
        return f"{self.prefix}pool"

    @property
    def pool_path(self) -> str:
        return str(pool_dir(self.pool))

    @property
    def base(self) -> str:
        return f"{self.prefix}base.qcow2"

    def overlay(self, i: int) -> str:
        return f"{self.prefix}disk-{i}.qcow2"

    def domain(self, i: int) -> str:
        return f"{self.prefix}td-{i}"

    def console(self, i: int) -> Path:
        return console_log(self.domain(i))

    @property
    def domains(self) -> list[str]:
        return [self.domain(i) for i in range(self.n)]

    @property
    def consoles(self) -> dict[str, Path]:
        return {self.domain(i): self.console(i) for i in range(self.n)}


def qcow2_virtual_size(path: Path) -> int:
    with path.open("rb") as handle:
        header = handle.read(32)
    if header[:4] != b"QFI\xfb":
        return path.stat().st_size
    (size,) = struct.unpack(">Q", header[24:32])
    return size
