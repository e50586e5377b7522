"""Run one workload (pool, base import, N overlays, N define+start, wait for boot, N graceful
stop+undefine, volume deletes, pool delete) through a driver, phase by phase, either
sequentially or with N threads, and time each phase."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Protocol, TypeVar

from .common import BOOT_SETTLE, BOOT_TIMEOUT, clear_libvirt, loadavg, reset_consoles
from .layout import Layout
from .observe import ConsoleWatcher, LifecycleRecorder
from .teardown import GuestTeardown, from_observers, summarise

T = TypeVar("T")
UP_PHASES = ("pool", "base import", "overlays", "define+start")
DOWN_PHASES = ("stop+undefine", "volume deletes", "pool delete")
EVENT_GRACE = 0.3  # let the last lifecycle events arrive before reading them


class Driver(Protocol):
    kind: str
    layout: Layout

    def create_pool(self) -> None: ...
    def import_base(self) -> None: ...
    def create_overlay(self, i: int) -> None: ...
    def create_domain(self, i: int) -> None: ...
    def delete_domain(self, i: int) -> GuestTeardown: ...
    def delete_overlay(self, i: int) -> None: ...
    def delete_base(self) -> None: ...
    def delete_pool(self) -> None: ...
    def close(self) -> None: ...


def run_all(jobs: list[Callable[[], T]], threads: int) -> list[T]:
    if threads <= 1 or len(jobs) <= 1:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(job) for job in jobs]
        return [f.result() for f in futures]


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.monotonic()
    result = action()
    return time.monotonic() - start, result


def run_workload(driver: Driver, threads: int, events: LifecycleRecorder) -> dict[str, Any]:
    layout = driver.layout
    n = layout.n
    reset_consoles()
    events.reset()
    phases: dict[str, float] = {}
    load = loadavg()
    try:
        with ConsoleWatcher(layout.consoles) as console:
            phases["pool"], _ = _timed(driver.create_pool)
            phases["base import"], _ = _timed(driver.import_base)
            phases["overlays"], _ = _timed(lambda: run_all(
                [partial(driver.create_overlay, i) for i in range(n)], threads))
            phases["define+start"], _ = _timed(lambda: run_all(
                [partial(driver.create_domain, i) for i in range(n)], threads))
            boot_wait = console.wait_for("userspace", layout.domains, BOOT_TIMEOUT)
            time.sleep(BOOT_SETTLE)
            phases["stop+undefine"], stopped = _timed(lambda: run_all(
                [partial(driver.delete_domain, i) for i in range(n)], threads))

            def delete_volumes() -> None:
                run_all([partial(driver.delete_overlay, i) for i in range(n)], threads)
                driver.delete_base()

            phases["volume deletes"], _ = _timed(delete_volumes)
            phases["pool delete"], _ = _timed(driver.delete_pool)
            time.sleep(EVENT_GRACE)
            records = from_observers(layout.domains, console, events,
                                     base={r.name: r for r in stopped})
    except BaseException:
        clear_libvirt(layout.prefix)
        raise
    finally:
        driver.close()
    return {
        "driver": driver.kind,
        "n": n,
        "threads": threads,
        "loadavg": load,
        "phases": {k: round(v, 3) for k, v in phases.items()},
        "up": round(sum(phases[p] for p in UP_PHASES), 3),
        "down": round(sum(phases[p] for p in DOWN_PHASES), 3),
        "boot_wait": round(boot_wait, 3),
        "teardown": summarise(records),
        "guests": [r.as_dict() for r in records],
    }
