"""A no-op ``pulumi preview`` from a caller that ignores SIGINT, and from one that does not.

The repository's ``pulumi`` is a wrapper that resets SIGINT (docs/automation.md); the same
preview through the CLI binary it wraps shows what a caller that ignores SIGINT pays without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.stack import real_pulumi_cli, timed_noop_preview

from .common import BENCH_ROOT, PREFIX, VENV, median
from .pulumi_cli import PulumiProject

PROGRAM = """
from pulumi_tdx import Pool
Pool("pool", name="{name}", path="{path}", autostart=False)
"""


def run_sigint(workroot: Path, runs: int) -> dict[str, Any]:
    name = f"{PREFIX}sigint"
    project = PulumiProject(workroot / "sigint", "ptdx-bench-sigint",
                            PROGRAM.format(name=name, path=BENCH_ROOT / name))
    ways = {
        "wrapper_interactive": (VENV / "bin" / "pulumi", False),
        "wrapper_sigint_ignored": (VENV / "bin" / "pulumi", True),
        "unwrapped_interactive": (real_pulumi_cli(), False),
        "unwrapped_sigint_ignored": (real_pulumi_cli(), True),
    }
    seconds: dict[str, list[float]] = {key: [] for key in ways}
    try:
        project.up()
        for _ in range(runs):
            for key, (cli, ignore) in ways.items():
                seconds[key].append(timed_noop_preview(project.project_dir, project.env, cli,
                                                       ignore_sigint=ignore))
    finally:
        project.remove()
    return {"runs": runs, "seconds": seconds,
            "median": {key: median(values) for key, values in seconds.items()}}
