"""``make bench``: measure pulumi-tdx against the libvirt floor and the Pulumi engine; write
``bench/results/<date>.json`` and print Markdown tables. Benchmarks print figures; nothing here
fails on a number.

    bench/run.py                       # N = 1, 4, 8; 3 runs each; 1 GiB image import
    bench/run.py --runs-for 8=1        # fewer runs for the largest stack
    bench/run.py --quick               # N = 1, 2; 1 run; 64 MiB image (a smoke run)
    bench/run.py --only direct,import  # sections: lifecycle, engine, direct, stall, shared,
                                       # import, sigint, measure (MRTD of a 4 MiB TDVF),
                                       # native (destroy N=4 vs 8 per adapter), fixedcost
    bench/run.py --only native,fixedcost --rounds 3   # the native provider's figures
    bench/run.py --render bench/results/2026-11-27.json   # tables from a saved run

The lifecycle section runs on both libvirt hosts of the test matrix, run by run side by side:
the Debian system libvirtd and the upstream (sid) libvirt that `make setup` starts.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.observe import LifecycleRecorder
from tdx_provider import events as libvirt_events

libvirt_events.start_loop()  # before any libvirt connection, so lifecycle events are delivered

from bench import (  # noqa: E402
    common,
    fixed_cost,
    image_import,
    lifecycle,
    native_destroy,
    native_report,
    report,
    shared_pool,
    sigint,
    stall,
)
from bench import measure as measure_bench  # noqa: E402
from bench.direct import ProviderDriver, captured_provider_log  # noqa: E402
from bench.floor import FloorDriver  # noqa: E402
from bench.layout import Layout  # noqa: E402
from bench.workload import run_workload  # noqa: E402

SECTIONS = ("lifecycle", "engine", "direct", "stall", "shared", "import", "sigint", "measure",
            "native", "fixedcost")
NOTES = [
    "All guests are the tiny test guest (kernel + busybox initramfs, 256 MiB, 1 vCPU) under "
    "TCG (domain type 'qemu'), tdx=False, no libvirt network, no vsock.",
    "pulumi up is timed with --skip-preview (the update alone); preview is a separate no-op "
    "`pulumi preview --expect-no-changes` run after every guest reached userspace.",
    "Boot is not part of any timed phase: the benchmark waits (untimed) until every console "
    "shows the userspace marker before preview and teardown.",
    "The floor is plain libvirt-python on one shared connection; 'ours' is the dynamic-provider "
    "adapters (check + create, delete) called in-process with the SDK's props.",
    "Other processes (e.g. test suites) may share the machine: see loadavg_at_start.",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,4,8", help="comma-separated N (default 1,4,8)")
    parser.add_argument("--runs", type=int, default=3, help="runs per N (default 3)")
    parser.add_argument("--runs-for", action="append", default=[], metavar="N=RUNS",
                        help="override the runs for one N, e.g. 8=1 (repeatable)")
    parser.add_argument("--image-mib", type=int, default=1024,
                        help="guest data of the import image in MiB (default 1024)")
    parser.add_argument("--shared-overlays", type=int, default=6,
                        help="overlays per stack in the two-stacks-one-pool run (default 6)")
    parser.add_argument("--shared-domains", type=int, default=2,
                        help="guests per stack in the two-stacks-one-pool run (default 2)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of the native and fixedcost sections (default 3)")
    parser.add_argument("--destroy-sizes", default="4,8",
                        help="N of the native section's destroy, smallest first (default 4,8)")
    parser.add_argument("--import-runs", type=int, default=None,
                        help="runs of the import benchmark (default: --runs)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections out of {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: N = 1,2, one run, 64 MiB image")
    parser.add_argument("--keep-image", action="store_true",
                        help="keep the random import image in /var/tmp for the next run")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default bench/results/<YYYY-MM-DD>.json)")
    parser.add_argument("--render", type=Path, default=None,
                        help="print the tables of a saved results file and exit")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.runs, args.image_mib, args.rounds = "1,2", 1, 64, 1
    args.size_list = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.runs_by_size = {n: args.runs for n in args.size_list}
    for item in args.runs_for:
        n, _, runs = item.partition("=")
        args.runs_by_size[int(n)] = int(runs)
    args.sections = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = args.sections - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}")
    return args


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _direct_modes(n: int) -> list[tuple[str, type, int]]:
    modes: list[tuple[str, type, int]] = [("floor-seq", FloorDriver, 1),
                                          ("provider-seq", ProviderDriver, 1)]
    if n > 1:  # with one guest, N threads is the sequential run
        modes += [("floor-threads", FloorDriver, n), ("provider-threads", ProviderDriver, n)]
    return modes


def bench_size(n: int, runs: int, sections: set[str], guest: common.TestGuest,
               events_by_host: dict[str, LifecycleRecorder], workroot: Path) -> dict[str, Any]:
    """All runs for one N, interleaved (run 1 of everything, then run 2...) so that a slow
    spell on the machine does not land on one method only. ``pulumi`` holds the lifecycle on
    the Debian host, ``pulumi_hosts`` the same on every other host."""
    events = events_by_host["debian"]
    size: dict[str, Any] = {"runs": runs, "pulumi": [], "pulumi_hosts": {}, "engine_only": [],
                            "direct": {}, "errors": []}
    stack_layout = Layout("stack", n)
    stack = lifecycle.new_stack_project(workroot, stack_layout, guest) \
        if "lifecycle" in sections else None
    others: dict[str, tuple[Layout, Any]] = {}
    if "lifecycle" in sections:
        for name, uri in common.HOSTS.items():
            if name != "debian":
                layout = Layout(name, n)
                others[name] = (layout, lifecycle.new_stack_project(workroot, layout, guest, uri))
                size["pulumi_hosts"][name] = []
    engine = lifecycle.new_engine_project(workroot, n) if "engine" in sections else None
    try:
        for run in range(1, runs + 1):
            if stack is not None:
                result = lifecycle.run_stack(stack, stack_layout, events)
                size["pulumi"].append(result)
                log(f"N={n} run {run}: pulumi up {result['up']['seconds']:.2f} s, preview "
                    f"{result['preview']['seconds']:.2f} s, destroy "
                    f"{result['destroy']['seconds']:.2f} s")
            for name, (layout, project) in others.items():
                result = lifecycle.run_stack(project, layout, events_by_host[name],
                                             common.HOSTS[name])
                size["pulumi_hosts"][name].append(result)
                log(f"N={n} run {run} on {name}: pulumi up {result['up']['seconds']:.2f} s, "
                    f"preview {result['preview']['seconds']:.2f} s, destroy "
                    f"{result['destroy']['seconds']:.2f} s")
            if engine is not None:
                result = lifecycle.run_engine_only(engine)
                size["engine_only"].append(result)
                log(f"N={n} run {run}: engine-only up {result['up']['seconds']:.2f} s, "
                    f"preview {result['preview']['seconds']:.2f} s, destroy "
                    f"{result['destroy']['seconds']:.2f} s")
            if "direct" in sections:
                for key, driver_class, threads in _direct_modes(n):
                    label = "floor" if driver_class is FloorDriver else "prov"
                    driver = driver_class(Layout(label, n), guest)
                    try:
                        result = run_workload(driver, threads, events)
                    except Exception as exc:  # keep going: a failure is a finding too
                        size["errors"].append(f"{key} run {run}: {exc!r}")
                        log(f"N={n} run {run}: {key} FAILED: {exc!r}")
                        traceback.print_exc()
                        continue
                    size["direct"].setdefault(key, []).append(result)
                    log(f"N={n} run {run}: {key:16} up {result['up']:.2f} s, "
                        f"down {result['down']:.2f} s")
    finally:
        for project in (stack, engine, *(p for _layout, p in others.values())):
            if project is not None:
                project.remove()
    return size


def finish(results: dict[str, Any], out: Path) -> None:
    results["summary"] = report.summarise(results)
    results["targets"] = report.targets(results, results["summary"])
    results["native_targets"] = native_report.targets(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_json(results))


INLINE_KEYS = frozenset({"peak_mib", "phases", "samples", "mib_per_s", "seconds", "teardown",
                         "runs"})


def to_json(results: dict[str, Any]) -> str:
    """Indented JSON, but each small dict of figures on one line and the per-guest records as a
    table (``{"columns": [...], "rows": [[...], ...]}``, one row a line), so that the file stays
    small and diffs stay readable."""
    inlined: list[str] = []

    def token(value: Any) -> str:
        inlined.append(json.dumps(value, separators=(", ", ": ")))
        return f"@@inline-{len(inlined) - 1}@@"

    def walk(obj: Any, key: str = "") -> Any:
        if isinstance(obj, dict):
            if key in INLINE_KEYS and all(not isinstance(v, dict) for v in obj.values()):
                return token(obj)
            return {k: walk(v, k) for k, v in obj.items()}
        if isinstance(obj, list):
            if key == "guests" and obj:
                columns = list(obj[0])
                return {"columns": token(columns),
                        "rows": [token([g.get(c) for c in columns]) for g in obj]}
            return [walk(v) for v in obj]
        return obj

    text = json.dumps(walk(results), indent=1)
    for i, value in enumerate(inlined):
        text = text.replace(f'"@@inline-{i}@@"', value, 1)
    return text + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render is not None:
        saved = json.loads(args.render.read_text())
        print(report.render(saved))
        print(native_report.render(saved))
        return 0
    today = datetime.date.today().isoformat()
    out = args.out or common.RESULTS_DIR / f"{today}.json"
    guest = common.test_guest()
    for uri in common.HOSTS.values():
        common.clear_libvirt(uri=uri)
    common.BENCH_ROOT.mkdir(parents=True, exist_ok=True)
    workroot = Path(tempfile.mkdtemp(prefix="pulumi-tdx-bench-"))
    started = time.monotonic()
    results: dict[str, Any] = {
        "schema": 1,
        "date": today,
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": common.machine_info(),
        "options": {"sizes": args.size_list, "runs": {str(k): v for k, v in
                                                      args.runs_by_size.items()},
                    "image_mib": args.image_mib, "sections": sorted(args.sections)},
        "notes": NOTES,
        "sizes": {},
    }
    log(f"machine: {results['machine']}")
    events_by_host = {name: LifecycleRecorder(uri) for name, uri in common.HOSTS.items()}
    try:
        with captured_provider_log():
            for n in args.size_list:
                results["sizes"][str(n)] = bench_size(n, args.runs_by_size[n], args.sections,
                                                      guest, events_by_host, workroot)
                finish(results, out)
        if "stall" in args.sections:
            log("volume delete while another domain shuts down")
            # per host: libvirt 9.0 keeps a stopping domain locked until QEMU exits, 12.x not
            results["stall"] = {name: stall.run_stall(guest, events_by_host[name], args.runs, uri)
                                for name, uri in common.HOSTS.items()}
        if "shared" in args.sections:
            log("two stacks, one pool")
            results["shared"] = shared_pool.run_shared(
                guest, args.runs, workroot, args.shared_overlays, args.shared_domains)
            finish(results, out)
        if "sigint" in args.sections:
            log("no-op preview from a caller that ignores SIGINT, and from one that does not")
            results["sigint"] = sigint.run_sigint(workroot, args.runs)
        if "import" in args.sections:
            log(f"image import: {args.image_mib} MiB of random data")
            results["import"] = image_import.run_import(
                args.image_mib, args.import_runs or args.runs, workroot)
            if not args.keep_image:
                image_import.remove_image(args.image_mib)
        if "native" in args.sections:
            log("native provider: pulumi destroy of N guests through each adapter")
            sizes = [int(n) for n in args.destroy_sizes.split(",")]
            results["native_destroy"] = native_destroy.run_destroy(
                list(native_destroy.ADAPTERS), sizes, args.rounds, log)
            finish(results, out)
        if "fixedcost" in args.sections:
            log("fixed cost of a command through each adapter, and the plugin's start-up")
            results["fixed_cost"] = fixed_cost.run_fixed_cost(args.rounds,
                                                               events_by_host["debian"], log)
            finish(results, out)
        if "measure" in args.sections:
            log("expected MRTD of a 4 MiB TDVF")
            results["measure"] = measure_bench.run_measure(args.runs, workroot)
    finally:
        for events in events_by_host.values():
            events.close()
        for uri in common.HOSTS.values():
            common.clear_libvirt(uri=uri)
        shutil.rmtree(common.CONSOLE_DIR, ignore_errors=True)
        shutil.rmtree(workroot, ignore_errors=True)
        with contextlib.suppress(OSError):  # only when empty (no kept import image)
            common.BENCH_ROOT.rmdir()
        results["duration_s"] = round(time.monotonic() - started, 1)
        finish(results, out)
    print()
    print(report.render(results))
    print(native_report.render(results))
    log(f"results: {out} ({results['duration_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
