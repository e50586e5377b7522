"""``pulumi destroy`` of N tiny guests through each adapter (issue 20: the native provider has no
worker cap below what the engine asks for, so N=8 takes at most 1.25x the time of N=4; the
dynamic provider's server runs 4 calls at once, so its N=8 takes two waves).

    .venv/bin/python -m bench.native_destroy                 # N = 4, 8; the native adapter
    .venv/bin/python -m bench.native_destroy --adapters native,dynamic --sizes 2,4,8

Each run: up (a pool, a base image, N overlays, N guests: TCG, no network, no vsock), wait
until every console shows userspace, then time ``pulumi destroy``. Prints figures; fails on
no number.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from bench.common import BENCH_ROOT, BOOT_SETTLE, BOOT_TIMEOUT, PREFIX, URI, test_guest
from tests.support import guest as tg
from tests.support.cleanup import remove_prefixed
from tests.support.stack import Stack

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


def destroy_seconds(adapter: str, n: int) -> float:
    guest = test_guest()
    name = f"{PREFIX}nd-{adapter[:3]}-{n}"
    work = BENCH_ROOT / name
    work.mkdir(parents=True, exist_ok=True)
    module = "native" if adapter == "native" else "_dynamic_all"
    program = PROGRAM.format(module=module).replace(
        "from pulumi_tdx import _dynamic_all as tdx", "import pulumi_tdx as tdx")
    stack = Stack(work / "stack", program, project="ptdx-bench-native-destroy")
    try:
        stack.config({"prefix": name, "work": str(work), "n": n,
                      "image": str(guest.base_image), "kernel": str(guest.kernel),
                      "initrd": str(guest.initrd), "cmdline": tg.CMDLINE})
        stack.up()
        for i in range(n):
            tg.wait_for_text(Path(work / f"td-{i}.log"), tg.USERSPACE_MARKER, BOOT_TIMEOUT)
        time.sleep(BOOT_SETTLE)
        start = time.monotonic()
        stack.destroy()
        return time.monotonic() - start
    finally:
        stack.remove()
        remove_prefixed_on(name)
        shutil.rmtree(work, ignore_errors=True)


def remove_prefixed_on(prefix: str) -> None:
    from tdx_provider.connection import connect

    with connect(URI) as conn:
        remove_prefixed(conn, prefix)


DESTROY_RATIO_TARGET = 1.25
GETSCHEMA_TARGET_S = 0.5


def run_native(runs: int, sizes: tuple[int, int] = (4, 8)) -> dict[str, object]:
    """``make bench``'s native section: destroy medians of N=4 and N=8 through the native
    provider, their ratio, and the plugin's median start-to-GetSchema time."""
    import shutil as sh
    import statistics

    from bench.native_startup import measure_once

    destroy = {str(n): round(statistics.median(destroy_seconds("native", n)
                                               for _ in range(runs)), 2) for n in sizes}
    plugin = sh.which("pulumi-resource-tdx") or ""
    schema_s = round(statistics.median(measure_once(plugin)[1] for _ in range(max(5, runs))), 3)
    return {"destroy_s": destroy, "ratio": round(destroy[str(sizes[1])] / destroy[str(sizes[0])],
                                                 2),
            "sizes": list(sizes), "getschema_s": schema_s,
            "targets": {"ratio": DESTROY_RATIO_TARGET, "getschema_s": GETSCHEMA_TARGET_S}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", default="native")
    parser.add_argument("--sizes", default="4,8")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    for adapter in args.adapters.split(","):
        figures = {n: destroy_seconds(adapter, n) for n in sizes}
        line = ", ".join(f"N={n}: {s:.2f} s" for n, s in figures.items())
        ratio = figures[sizes[-1]] / figures[sizes[0]]
        print(f"{adapter}: pulumi destroy {line}; N={sizes[-1]}/N={sizes[0]} = {ratio:.2f}x",
              flush=True)


if __name__ == "__main__":
    main()
