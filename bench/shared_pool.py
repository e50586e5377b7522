"""Two stacks, one pool: what sharing a pool costs.

A pool exists before either stack (as on a TDX host where operators made it). Stacks A and B
each adopt it and put their own base image, K overlays and M tiny TCG guests in it
(tests/support/shared_pool.py). Each run times:

- *alone*: A's ``pulumi up`` and ``pulumi destroy`` with nothing else running, then B's;
- *together*: A's and B's ``pulumi up`` started at the same moment (wall time until both
  finished), then both ``pulumi destroy`` the same way.

Together does the work of A alone plus B alone; the pool's exclusion
(tdx_provider.storage.exclusion)
serialises only the volume creates and deletes, so "together" should land well below
"A alone + B alone" and not far above one stack alone.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tdx_provider.connection import connect
from tdx_provider.storage import pool
from tests.support.shared_pool import PROGRAM, configure

from .common import BENCH_ROOT, MEMORY_MIB, PREFIX, URI, TestGuest, clear_libvirt, median
from .pulumi_cli import PulumiProject

PROJECT = "ptdx-bench-shared"


def _project(workroot: Path, key: str, pool_name: str, pool_path: Path, guest: TestGuest,
             overlays: int, domains: int) -> PulumiProject:
    project = PulumiProject(workroot / f"shared-{key}", PROJECT, PROGRAM, stack=f"stack-{key}")

    def set_config(values: dict[str, Any]) -> None:
        for name, value in values.items():
            project.run("config", "set", name, str(value), sample=False)

    configure(set_config, prefix=f"{PREFIX}sh-{key}", pool_name=pool_name, pool_path=pool_path,
              work=BENCH_ROOT / f"shared-{key}", guest=guest, uri=URI, overlays=overlays,
              domains=domains, memory_mib=MEMORY_MIB)
    return project


def _timed(action: Any) -> float:
    began = time.monotonic()
    action()
    return time.monotonic() - began


def _both(projects: list[PulumiProject], command: str) -> float:
    """Run ``command`` (up or destroy) of every project at once; wall seconds until all end."""
    with ThreadPoolExecutor(len(projects)) as threads:
        began = time.monotonic()
        futures = [threads.submit(getattr(p, command)) for p in projects]
        for future in futures:
            future.result()  # raises PulumiError: a failure is reported, not timed
        return time.monotonic() - began


def run_shared(guest: TestGuest, runs: int, workroot: Path, overlays: int = 6,
               domains: int = 2) -> dict[str, Any]:
    pool_name = f"{PREFIX}shared"
    pool_path = BENCH_ROOT / "shared-pool"
    with connect(URI) as conn:
        pool.ensure(conn, pool_name, str(pool_path), autostart=False)
    projects = [_project(workroot, key, pool_name, pool_path, guest, overlays, domains)
                for key in ("a", "b")]
    samples = []
    try:
        for _ in range(runs):
            alone = {}
            for key, project in zip("ab", projects, strict=True):
                alone[f"{key}_up"] = _timed(project.up)
                alone[f"{key}_destroy"] = _timed(project.destroy)
            samples.append({
                **{k: round(v, 2) for k, v in alone.items()},
                "both_up": round(_both(projects, "up"), 2),
                "both_destroy": round(_both(projects, "destroy"), 2),
            })
    finally:
        for project in projects:
            project.remove()
        clear_libvirt(pool_name)
    keys = ("a_up", "a_destroy", "b_up", "b_destroy", "both_up", "both_destroy")
    summary: dict[str, Any] = {k: median(s[k] for s in samples) for k in keys}
    summary["sequential_up"] = summary["a_up"] + summary["b_up"]
    summary["sequential_destroy"] = summary["a_destroy"] + summary["b_destroy"]
    return {"overlays": overlays, "domains": domains, "runs": samples,
            "median": {k: round(v, 2) for k, v in summary.items()}}
