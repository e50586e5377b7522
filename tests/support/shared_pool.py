"""A stack program for shared-pool runs (tests/e2e/test_shared_pool.py, bench/shared_pool.py):
it adopts a pool that exists before it (by name and path) and puts its own base image, overlays
and tiny TCG guests in it, all named under the stack's own prefix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import guest as tg
from tests.support.programs import program

PROGRAM = program("shared_pool_tenant")  # tests/fixtures/programs/shared_pool_tenant


def configure(set_config: Callable[[dict[str, Any]], object], *, prefix: str, pool_name: str,
              pool_path: Path, work: Path, guest: tg.TestGuest, uri: str, overlays: int,
              domains: int, **extra: Any) -> None:
    """Write the program's config through ``set_config`` (``Stack.config`` or the like)."""
    work.mkdir(parents=True, exist_ok=True)
    set_config({
        "prefix": prefix, "uri": uri, "pool": pool_name, "pool_path": str(pool_path),
        "work": str(work), "image": str(guest.base_image), "kernel": str(guest.kernel),
        "initrd": str(guest.initrd), "cmdline": tg.CMDLINE, "overlays": overlays,
        "domains": domains, **extra,
    })
