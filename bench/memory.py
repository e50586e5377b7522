"""Peak memory of the processes under one ``pulumi`` command.

A thread walks the command's process tree (``/proc/<pid>/task/<tid>/children``) every 50 ms and
reads ``VmHWM`` (the kernel's high-water mark of resident memory) of each process, grouped by
role. Because VmHWM only grows, the last sample before a process exits carries its peak.
Only descendants of our own command are looked at: other ``pulumi.dynamic`` processes on the
machine (tests running alongside) are ignored.
"""

from __future__ import annotations

from pathlib import Path

from .common import Poller

SAMPLE_EVERY = 0.05


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text()
            kids.extend(int(k) for k in text.split())
    except OSError:
        pass
    return kids


def _descendants(root: int) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(_children(pid))
    return found


def role_of(cmdline: str) -> str:
    if "pulumi.dynamic" in cmdline:
        return "dynamic_provider"
    if "pulumi-language-python-exec" in cmdline:
        return "program"
    if "pulumi-language-python" in cmdline:
        return "language_host"
    if "pulumi-resource-pulumi-python" in cmdline:
        return "provider_shim"
    if " -m pip " in cmdline or cmdline.endswith("--version "):
        return "language_host_helper"  # `pip list` / `python --version` run by the language host
    return "cli" if cmdline.split(" ")[0].endswith("pulumi") else "other"


def _status_kib(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class RssSampler(Poller):
    interval = SAMPLE_EVERY
    thread_name = "rss-sampler"

    """Peak VmHWM (MiB) per role of the process tree under ``root``."""

    def __init__(self, root: int) -> None:
        super().__init__()
        self.root = root
        self.peak_mib: dict[str, float] = {}
        self.pids: dict[str, set[int]] = {}

    def tick(self) -> None:
        self.sample()

    def sample(self) -> None:
        for pid in _descendants(self.root):
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            role = role_of(raw.replace(b"\0", b" ").decode(errors="replace"))
            hwm = _status_kib(pid, "VmHWM")
            if hwm is None:
                continue
            self.pids.setdefault(role, set()).add(pid)
            self.peak_mib[role] = max(self.peak_mib.get(role, 0.0), round(hwm / 1024, 1))
