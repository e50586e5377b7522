"""``pulumi destroy`` of N tiny guests through each adapter (issue 20: the native provider has no
worker cap below what the engine asks for, so N=8 takes at most 1.25x the time of N=4; the
dynamic provider's server runs 4 calls at once, so its N=8 takes two waves).

    .venv/bin/python -m bench.native_destroy                 # N = 4, 8; the native adapter
    .venv/bin/python -m bench.native_destroy --adapters native,dynamic --sizes 2,4,8 --rounds 3

Each run: up (a pool, a base image, N overlays, N guests: TCG, no network, no vsock), wait
until every console shows userspace, then time ``pulumi destroy``. Prints figures; fails on
no number. ``make bench`` runs it as its ``native`` section (bench/run.py).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import BENCH_ROOT, BOOT_SETTLE, BOOT_TIMEOUT, PREFIX, URI, loadavg, test_guest
from tests.support import guest as tg
from tests.support.cleanup import remove_prefixed
from tests.support.stack import VENV, Stack

PROGRAM = """
import pulumi
from pulumi_tdx import {module} as tdx

cfg = pulumi.Config()
prefix, work, n = cfg.require("prefix"), cfg.require("work"), cfg.require_int("n")
pool = tdx.Pool("pool", name=prefix, path=f"{{work}}/pool", autostart=False)
base = tdx.BaseImage("base", pool=pool, name=f"{{prefix}}-base", source=cfg.require("image"))
for i in range(n):
    disk = tdx.Overlay(f"disk-{{i}}", pool=pool, base_image=base, name=f"{{prefix}}-disk-{{i}}")
    tdx.TrustDomain(
        f"td-{{i}}", overlay=disk, name=f"{{prefix}}-td-{{i}}", memory_mib=256, vcpus=1,
        tdx=False, domain_type="qemu", vsock=False, network=None,
        kernel=cfg.require("kernel"), initrd=cfg.require("initrd"),
        cmdline=cfg.require("cmdline"), console_log=f"{{work}}/td-{{i}}.log")
"""
# The native plugin from the venv by path (Pulumi.yaml ``plugins.providers``), as a project
# that pins it would: no "using pulumi-resource-tdx from $PATH" warning, no $PATH search.
PLUGIN_PATH = f"plugins:\n  providers:\n    - name: tdx\n      path: {VENV / 'bin'}\n"
ADAPTERS = ("native", "dynamic")
CMDLINE = tg.CMDLINE  # with no_timer_check: guests boot at load 10+


@contextlib.contextmanager
def guest_stack(adapter: str, n: int, label: str) -> Iterator[tuple[Stack, Path]]:
    """A configured (not yet up) stack of N guests through ``adapter``, and its work directory
    (console logs ``td-<i>.log``); everything it made is removed afterwards."""
    guest = test_guest()
    name = f"{PREFIX}{label}-{adapter[:3]}-{n}"
    work = BENCH_ROOT / name
    work.mkdir(parents=True, exist_ok=True)
    module = "native" if adapter == "native" else "_dynamic_all"
    program = PROGRAM.format(module=module).replace(
        "from pulumi_tdx import _dynamic_all as tdx", "import pulumi_tdx as tdx")
    stack = Stack(work / "stack", program, project=f"ptdx-bench-{label}")
    if adapter == "native":
        with (stack.project_dir / "Pulumi.yaml").open("a") as handle:
            handle.write(PLUGIN_PATH)
    try:
        stack.config({"prefix": name, "work": str(work), "n": n,
                      "image": str(guest.base_image), "kernel": str(guest.kernel),
                      "initrd": str(guest.initrd), "cmdline": CMDLINE})
        yield stack, work
    finally:
        stack.remove()
        remove_prefixed_on(name)
        shutil.rmtree(work, ignore_errors=True)


def wait_for_guests(work: Path, n: int) -> None:
    """Untimed: every console shows userspace, then the settle time (acpid listening)."""
    for i in range(n):
        tg.wait_for_text(work / f"td-{i}.log", tg.USERSPACE_MARKER, BOOT_TIMEOUT)
    time.sleep(BOOT_SETTLE)


def destroy_seconds(adapter: str, n: int) -> float:
    with guest_stack(adapter, n, "nd") as (stack, work):
        stack.up()
        wait_for_guests(work, n)
        start = time.monotonic()
        stack.destroy()
        return time.monotonic() - start


def remove_prefixed_on(prefix: str) -> None:
    from tdx_provider.connection import connect

    with connect(URI) as conn:
        remove_prefixed(conn, prefix)


def run_destroy(adapters: list[str], sizes: list[int], rounds: int,
                log: Any = print) -> dict[str, Any]:
    """Rounds interleaved (round 1 of every adapter and N, then round 2...), so that a busy
    spell on the machine does not land on one figure only. Per adapter and N: each round's
    seconds and load average, and the median."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        a: {str(n): [] for n in sizes} for a in adapters}
    for round_ in range(1, rounds + 1):
        for adapter in adapters:
            for n in sizes:
                load = loadavg()
                try:
                    seconds = destroy_seconds(adapter, n)
                except Exception as exc:  # keep going: a failed round is a finding too
                    runs[adapter][str(n)].append({"error": repr(exc)[:500], "loadavg": load})
                    log(f"round {round_}: {adapter} N={n} FAILED: {exc!r}"[:2000])
                    continue
                runs[adapter][str(n)].append({"seconds": round(seconds, 3), "loadavg": load})
                log(f"round {round_}: {adapter} pulumi destroy N={n}: {seconds:.2f} s "
                    f"(load {load})")
    medians = {a: {n: median_seconds(rs) for n, rs in by_n.items()} for a, by_n in runs.items()}
    return {"sizes": sizes, "rounds": rounds, "runs": runs, "median": medians}


def median_seconds(runs: list[dict[str, Any]]) -> float | None:
    """The median over the rounds that did not fail."""
    seconds = [r["seconds"] for r in runs if "seconds" in r]
    return round(statistics.median(seconds), 3) if seconds else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", default="native")
    parser.add_argument("--sizes", default="4,8")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    result = run_destroy(args.adapters.split(","), sizes, args.rounds)
    for adapter, figures in result["median"].items():
        line = ", ".join(f"N={n}: {s} s" for n, s in figures.items())
        small, large = figures[str(sizes[0])], figures[str(sizes[-1])]
        ratio = f"{large / small:.2f}x" if small and large else "-"
        print(f"{adapter}: pulumi destroy {line}; N={sizes[-1]}/N={sizes[0]} = {ratio}",
              flush=True)


if __name__ == "__main__":
    main()
