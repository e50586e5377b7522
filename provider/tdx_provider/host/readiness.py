"""A host readiness report: each check's verdict, and which ones a trust domain needs.

Shared by the file checks (:mod:`.file_checks`), the libvirt checks (:mod:`.libvirt_checks`)
and the runner (:mod:`.checks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Status = Literal["pass", "fail", "unknown"]


@dataclass(frozen=True)
class Check:
    """One readiness check. ``required`` checks decide ``HostReport.tdx_ready``."""

    name: str
    status: Status
    reason: str
    required: bool = True


@dataclass
class HostReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def tdx_ready(self) -> bool:
        """True when every required check passes."""
        return not self.failures()

    def failures(self) -> list[Check]:
        """The required checks that do not pass (failed, or could not be decided)."""
        return [check for check in self.checks if check.required and check.status != "pass"]

    def get(self, name: str) -> Check:
        """The check called ``name`` (KeyError when there is none)."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)


def host_path(relative: Path) -> str:
    """How a path under the root reads on the host, for messages."""
    return "/" + relative.as_posix()


def version_tuple(version: int) -> tuple[int, int, int]:
    """libvirt's encoded version (major * 1,000,000 + minor * 1,000 + micro) as a tuple."""
    major, rest = divmod(version, 1_000_000)
    minor, micro = divmod(rest, 1000)
    return major, minor, micro


def format_version(version: int) -> str:
    return ".".join(str(part) for part in version_tuple(version))

