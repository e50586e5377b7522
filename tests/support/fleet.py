"""A configurable stack for the fault and concurrency tests: one pool, one base image, N
overlays and M tiny TCG guests (tdx off, no vsock, no libvirt network), all named under a
test prefix, plus helpers that say what libvirt and the state hold."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tdx_provider.connection import connect
from tdx_provider.storage import ledger, pool
from tests.support import guest as tg
from tests.support.programs import program
from tests.support.stack import Stack

PROGRAM = program("configurable_fleet")  # tests/fixtures/programs/configurable_fleet


def configure(stack: Stack, *, prefix: str, work: Path, guest: tg.TestGuest, overlays: int,
              domains: int, uri: str = "qemu:///system", **extra: Any) -> Stack:
    values: dict[str, Any] = {
        "prefix": prefix, "work": str(work), "uri": uri, "image": str(guest.base_image),
        "kernel": str(guest.kernel), "initrd": str(guest.initrd), "cmdline": tg.CMDLINE,
        "overlays": overlays, "domains": domains,
    }
    values.update(extra)
    stack.config(values)
    return stack


def expected_names(overlays: int, domains: int) -> list[str]:
    """Resource names of the program (what the state must hold, each once)."""
    return sorted(["pool", "base", *(f"disk-{i}" for i in range(overlays)),
                   *(f"td-{i}" for i in range(domains))])


def names_in_state(stack: Stack) -> list[str]:
    return sorted(r["urn"].rsplit("::", 1)[-1] for r in stack.resources())


def pending_operations(stack: Stack) -> list[dict[str, Any]]:
    state = json.loads(stack.run("stack", "export").stdout)
    return state["deployment"].get("pending_operations") or []


@dataclass(frozen=True)
class Holdings:
    """What libvirt holds under a prefix (and what the ledger of its pool says)."""

    domains: tuple[str, ...]
    running: tuple[str, ...]
    pools: tuple[str, ...]
    volumes: tuple[str, ...]
    ledger: tuple[str, ...]
    domain_uuids: tuple[str, ...]


def holdings(uri: str, prefix: str) -> Holdings:
    with connect(uri) as conn:
        doms = [d for d in conn.listAllDomains(0) if d.name().startswith(prefix)]
        pools = [p for p in conn.listAllStoragePools(0) if p.name().startswith(prefix)]
        volumes: list[str] = []
        entries: list[str] = []
        for p in pools:
            if not p.isActive():
                continue
            p.refresh(0)  # files libvirt did not make show up too
            volumes += pool.user_volumes(p)
            entries += list(ledger.read(p))
        return Holdings(
            domains=tuple(sorted(d.name() for d in doms)),
            running=tuple(sorted(d.name() for d in doms if d.isActive())),
            pools=tuple(sorted(p.name() for p in pools)),
            volumes=tuple(sorted(volumes)),
            ledger=tuple(sorted(entries)),
            domain_uuids=tuple(sorted(d.UUIDString() for d in doms)),
        )


def expected_holdings(prefix: str, overlays: int, domains: int) -> dict[str, tuple[str, ...]]:
    doms = tuple(sorted(f"{prefix}-td-{i}" for i in range(domains)))
    vols = tuple(sorted([f"{prefix}-base", *(f"{prefix}-disk-{i}" for i in range(overlays))]))
    return {"domains": doms, "running": doms, "pools": (prefix,), "volumes": vols,
            "ledger": vols}


def as_dict(h: Holdings) -> dict[str, tuple[str, ...]]:
    return {"domains": h.domains, "running": h.running, "pools": h.pools, "volumes": h.volumes,
            "ledger": h.ledger}


def nothing(prefix: str) -> dict[str, tuple[str, ...]]:
    return {"domains": (), "running": (), "pools": (), "volumes": (), "ledger": ()}


def duplicated(names: list[str]) -> list[str]:
    return sorted(n for n, count in Counter(names).items() if count > 1)


def popen_up(stack: Stack) -> subprocess.Popen[str]:
    """`pulumi up` in its own session (so a Ctrl-C can be sent to it and its children)."""
    return subprocess.Popen(
        ["pulumi", "up", "--yes", "--skip-preview", "--non-interactive", "--color", "never"],
        cwd=stack.project_dir, env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )
