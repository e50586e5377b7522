"""The fixed cost of one ``pulumi`` command, through each adapter (issue 20, point 7).

Per round and adapter, on a stack of one tiny guest (a pool, a base image, an overlay, a
TCG guest; bench/native_destroy.py's program with N=1): ``pulumi up`` (timed), a no-op
``pulumi preview`` (timed), the same preview with ``-v=9 --logtostderr`` (the breakdown,
bench/verbose_log.py), a destroy, an ``up`` with ``-v=9`` (its breakdown), a destroy. Next to
it, per round, the same libvirt work done directly (bench/floor.py: pool, base import,
overlay, define+start on an open connection: what a tdvirsh-like script waits for at least),
and the native plugin's start-up to its GetSchema answer (bench/native_startup.py).
``make bench`` runs it as the ``fixedcost`` section of bench/run.py.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench import native_startup
from bench.common import loadavg, test_guest
from bench.floor import FloorDriver
from bench.layout import Layout
from bench.native_destroy import ADAPTERS, guest_stack, wait_for_guests
from bench.observe import LifecycleRecorder
from bench.verbose_log import PHASES, breakdown
from bench.workload import run_workload
from tests.support.stack import VENV, Stack

VERBOSE = ("-v=9", "--logtostderr")
STARTUP_RUNS = 5
RPC_METHODS = ("Check", "Diff", "Create")


def timed(stack: Stack, *args: str) -> float:
    start = time.monotonic()
    stack.run(*args)
    return time.monotonic() - start


def verbose(stack: Stack, *args: str) -> dict[str, Any]:
    """Run with the engine's log on stderr; break its wall time down by the log's markers."""
    exec_at = time.time()
    result = stack.run(*args, *VERBOSE)
    return breakdown(result.stderr, exec_at, time.time())


def adapter_round(adapter: str) -> dict[str, Any]:
    with guest_stack(adapter, 1, "fc") as (stack, work):
        figures: dict[str, Any] = {"loadavg": loadavg()}
        figures["up"] = round(timed(stack, "up", "--yes", "--skip-preview"), 3)
        wait_for_guests(work, 1)
        figures["preview"] = round(timed(stack, "preview", "--expect-no-changes"), 3)
        figures["preview_verbose"] = verbose(stack, "preview", "--expect-no-changes")
        stack.destroy()
        figures["up_verbose"] = verbose(stack, "up", "--yes", "--skip-preview")
        wait_for_guests(work, 1)
        stack.destroy()
    return figures


def floor_round(events: LifecycleRecorder) -> dict[str, Any]:
    result = run_workload(FloorDriver(Layout("fcfloor", 1), test_guest()), 1, events)
    return {"up": result["up"], "phases": result["phases"], "loadavg": result["loadavg"]}


def startup() -> dict[str, Any]:
    plugin = str(VENV / "bin" / "pulumi-resource-tdx")
    answers = [native_startup.measure_once(plugin)[1] for _ in range(STARTUP_RUNS)]
    return {"runs": [round(a, 3) for a in answers],
            "median": round(statistics.median(answers), 3)}


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds: wall times, and each phase of each verbose command."""
    summary: dict[str, Any] = {key: _median([r[key] for r in runs]) for key in ("up", "preview")}
    for command in ("preview_verbose", "up_verbose"):
        summary[command] = {
            "total": _median([r[command]["total"] for r in runs]),
            "phases": {p: _median([r[command]["phases"].get(p) for r in runs]) for p in PHASES},
            "first_check": _median([r[command]["rpcs"].get("Check", {}).get("first")
                                    for r in runs]),
            "rpc_seconds": {m: _median([r[command]["rpcs"].get(m, {}).get("seconds")
                                        for r in runs]) for m in RPC_METHODS},
        }
    return summary


def run_fixed_cost(rounds: int, events: LifecycleRecorder, log: Any = print) -> dict[str, Any]:
    """Rounds interleaved across the adapters and the floor."""
    runs: dict[str, list[dict[str, Any]]] = {a: [] for a in ADAPTERS}
    floor: list[dict[str, Any]] = []
    errors: list[str] = []
    for round_ in range(1, rounds + 1):
        for adapter in ADAPTERS:
            try:
                figures = adapter_round(adapter)
            except Exception as exc:  # keep going: a failed round is a finding too
                errors.append(f"round {round_} {adapter}: {exc!r}"[:500])
                log(f"round {round_}: {adapter} FAILED: {exc!r}"[:2000])
                continue
            runs[adapter].append(figures)
            log(f"round {round_}: {adapter}: up {figures['up']:.2f} s, no-op preview "
                f"{figures['preview']:.2f} s (with -v=9: up {figures['up_verbose']['total']:.2f}"
                f" s, preview {figures['preview_verbose']['total']:.2f} s)")
        try:
            floor.append(floor_round(events))
        except Exception as exc:
            errors.append(f"round {round_} floor: {exc!r}"[:500])
            log(f"round {round_}: floor FAILED: {exc!r}"[:2000])
            continue
        log(f"round {round_}: floor: one guest up {floor[-1]['up']:.2f} s")
    schema = startup()
    log(f"native plugin start to GetSchema answer: {schema['runs']} s")
    return {"rounds": rounds, "runs": runs, "floor": floor, "getschema": schema, "errors": errors,
            "summary": {**{a: summarise(rs) for a, rs in runs.items()},
                        "floor_up": _median([f["up"] for f in floor])}}
