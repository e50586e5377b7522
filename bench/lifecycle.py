"""Lifecycle through the real Pulumi CLI: ``pulumi up``, a no-op ``pulumi preview`` and
``pulumi destroy`` of a stack of N tiny guests, plus the same commands on a stack of the same
shape whose resources do no work at all (the Pulumi engine's own cost)."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any

from .common import (
    BOOT_SETTLE,
    BOOT_TIMEOUT,
    CMDLINE,
    DOMAIN_TYPE,
    MEMORY_MIB,
    SHUTDOWN_TIMEOUT,
    URI,
    VCPUS,
    TestGuest,
    clear_libvirt,
    leftovers,
    loadavg,
    reset_consoles,
)
from .layout import Layout
from .observe import ConsoleWatcher, LifecycleRecorder
from .pulumi_cli import CommandResult, PulumiProject, engine_only_env
from .teardown import from_observers, parse_reports, summarise

EVENT_GRACE = 0.3


def stack_program(layout: Layout, guest: TestGuest, uri: str = URI) -> str:
    config = {
        "n": layout.n, "pool": layout.pool, "pool_path": layout.pool_path,
        "base": layout.base, "source": str(guest.base_image),
        "overlays": [layout.overlay(i) for i in range(layout.n)],
        "domains": layout.domains, "consoles": [str(layout.console(i)) for i in range(layout.n)],
        "kernel": str(guest.kernel), "initrd": str(guest.initrd), "cmdline": CMDLINE,
        "memory_mib": MEMORY_MIB, "vcpus": VCPUS, "domain_type": DOMAIN_TYPE,
        "shutdown_timeout": SHUTDOWN_TIMEOUT, "uri": uri,
    }
    return textwrap.dedent(f'''\
        """pulumi-tdx benchmark: a pool, a base image, {layout.n} overlays and {layout.n} guests."""
        from pulumi_tdx import BaseImage, Overlay, Pool, TrustDomain

        CFG = {config!r}

        pool = Pool("pool", name=CFG["pool"], path=CFG["pool_path"], autostart=False,
                    uri=CFG["uri"])
        base = BaseImage("base", pool=pool, source=CFG["source"], name=CFG["base"],
                         uri=CFG["uri"])
        for i in range(CFG["n"]):
            disk = Overlay(f"disk-{{i}}", pool=pool, base_image=base, name=CFG["overlays"][i],
                           uri=CFG["uri"])
            TrustDomain(
                f"td-{{i}}", overlay=disk, name=CFG["domains"][i], memory_mib=CFG["memory_mib"],
                vcpus=CFG["vcpus"], tdx=False, domain_type=CFG["domain_type"],
                kernel=CFG["kernel"], initrd=CFG["initrd"], cmdline=CFG["cmdline"],
                network=None, vsock=False, console_log=CFG["consoles"][i],
                shutdown_timeout=CFG["shutdown_timeout"], uri=CFG["uri"],
            )
        ''')


def engine_program(n: int) -> str:
    """Same shape (1 + 1 + N + N resources, same dependencies), no work in the provider."""
    return textwrap.dedent(f'''\
        """The Pulumi engine's own cost: {n} trivial dynamic resources per kind."""
        import pulumi.dynamic

        from bench.noop_provider import NoopProvider

        PROVIDER = NoopProvider()


        class Noop(pulumi.dynamic.Resource):
            path: pulumi.Output[str]

            def __init__(self, name, **props):
                super().__init__(PROVIDER, name, {{"name": name, "path": None, **props}})


        pool = Noop("pool")
        base = Noop("base", pool=pool.name)
        for i in range({n}):
            disk = Noop(f"disk-{{i}}", pool=pool.name, base_image=base.path)
            Noop(f"td-{{i}}", overlay=disk.path)
        ''')


def _command(result: CommandResult) -> dict[str, Any]:
    return {"seconds": round(result.seconds, 3), "peak_mib": result.peak_mib}


def run_stack(project: PulumiProject, layout: Layout, events: LifecycleRecorder,
              uri: str = URI) -> dict[str, Any]:
    """One up / no-op preview / destroy cycle of the real stack on the libvirt host at ``uri``
    (``events`` must be that host's), with teardown observations."""
    reset_consoles()
    events.reset()
    load = loadavg()
    try:
        with ConsoleWatcher(layout.consoles) as console:
            up = project.up()
            boot_wait = console.wait_for("userspace", layout.domains, BOOT_TIMEOUT)
            time.sleep(BOOT_SETTLE)
            preview = project.preview_no_op()
            destroy = project.destroy()
            time.sleep(EVENT_GRACE)
            records = from_observers(layout.domains, console, events)
    except BaseException:
        project.run("destroy", "--yes", "--skip-preview", sample=False, check=False)
        clear_libvirt(layout.prefix, uri)
        raise
    reports = parse_reports(destroy.output)
    for record in records:
        if record.name in reports:
            record.reported, record.graceful = reports[record.name]
    left = leftovers(layout.prefix, uri)
    return {
        "up": _command(up),
        "preview": _command(preview),
        "destroy": _command(destroy),
        "boot_wait": round(boot_wait, 3),
        "loadavg": load,
        "teardown": summarise(records),
        "guests": [r.as_dict() for r in records],
        "leftovers": left,
    }


def new_stack_project(workroot: Path, layout: Layout, guest: TestGuest,
                      uri: str = URI) -> PulumiProject:
    project = PulumiProject(workroot / f"{layout.label}-{layout.n}", "ptdx-bench",
                            stack_program(layout, guest, uri))
    # Untimed warm-up: loads the CLI, plugins and Python modules into the page cache.
    reset_consoles()  # the console directory must exist: check validates it
    project.run("preview", sample=False)
    return project


def new_engine_project(workroot: Path, n: int) -> PulumiProject:
    project = PulumiProject(workroot / f"engine-{n}", "ptdx-bench-engine", engine_program(n),
                            extra_env=engine_only_env())
    project.run("preview", sample=False)
    return project


def run_engine_only(project: PulumiProject) -> dict[str, Any]:
    load = loadavg()
    up = project.up()
    preview = project.preview_no_op()
    destroy = project.destroy()
    return {"up": _command(up), "preview": _command(preview), "destroy": _command(destroy),
            "loadavg": load}
