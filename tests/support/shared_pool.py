"""A stack program for shared-pool runs (tests/e2e/test_shared_pool.py, bench/shared_pool.py):
it adopts a pool that exists before it (by name and path) and puts its own base image, overlays
and tiny TCG guests in it, all named under the stack's own prefix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import guest as tg

PROGRAM = """
import pulumi
from pulumi_tdx import BaseImage, Overlay, Pool, TrustDomain

cfg = pulumi.Config()
prefix = cfg.require("prefix")
uri = cfg.require("uri")
pool = Pool("pool", name=cfg.require("pool"), path=cfg.require("pool_path"), autostart=False,
            uri=uri)
base = BaseImage("base", pool=pool, name=f"{prefix}-base", source=cfg.require("image"), uri=uri)
disks = [Overlay(f"disk-{i}", pool=pool, base_image=base, name=f"{prefix}-disk-{i}", uri=uri)
         for i in range(cfg.require_int("overlays"))]
for i in range(cfg.require_int("domains")):
    TrustDomain(
        f"td-{i}", overlay=disks[i], name=f"{prefix}-td-{i}",
        memory_mib=cfg.get_int("memory_mib") or 128, vcpus=1,
        tdx=False, domain_type="qemu", vsock=False, network=None,
        kernel=cfg.require("kernel"), initrd=cfg.require("initrd"),
        cmdline=cfg.require("cmdline"), console_log=f"{cfg.require('work')}/td-{i}.log",
        shutdown_timeout=cfg.get_int("shutdown_timeout") or 3, uri=uri,
    )
"""


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
