"""Concurrency through the real Pulumi CLI: one stack with 12 overlays and 6 trust domains from
one base image, at Pulumi's default parallelism, goes up and down five times in a row without
a single libvirt race error ("pool has asynchronous jobs running", a refresh while a volume is
being created) or any other error. The engine serialises mutations per pool (see
tdx_provider.storage.exclusion.pool_lock); everything else runs in parallel."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import fleet
from tests.support import guest as tg
from tests.support.stack import Result, Stack

pytestmark = pytest.mark.e2e
URI = "qemu:///system"
OVERLAYS = 12
DOMAINS = 6
CYCLES = 5
RACE_ERRORS = re.compile(r"asynchronous jobs|still being allocated|in use by another|"
                         r"Requested operation is not valid|already exists", re.IGNORECASE)


def errors_in(result: Result) -> list[str]:
    return [line for line in result.output.splitlines()
            if re.search(r"\berror\b", line, re.IGNORECASE) or RACE_ERRORS.search(line)]


def test_twelve_overlays_and_six_domains_go_up_and_down_five_times_without_a_race(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest
) -> None:
    stack = make_stack(fleet.PROGRAM)
    fleet.configure(stack, prefix=e2e_id, work=work_dir, guest=guest, overlays=OVERLAYS,
                    domains=DOMAINS, memory_mib=128, shutdown_timeout=3)
    timings = []
    for cycle in range(CYCLES):
        began = time.monotonic()
        up = stack.up(check=False)
        assert up.returncode == 0, f"cycle {cycle} up:\n{up.output}"
        assert errors_in(up) == [], f"cycle {cycle} up:\n{up.output}"
        names = fleet.names_in_state(stack)
        assert names == fleet.expected_names(OVERLAYS, DOMAINS)
        assert fleet.as_dict(fleet.holdings(URI, e2e_id)) == fleet.expected_holdings(
            e2e_id, OVERLAYS, DOMAINS)
        middle = time.monotonic()
        down = stack.destroy(check=False)
        assert down.returncode == 0, f"cycle {cycle} destroy:\n{down.output}"
        assert errors_in(down) == [], f"cycle {cycle} destroy:\n{down.output}"
        assert fleet.names_in_state(stack) == []
        assert fleet.as_dict(fleet.holdings(URI, e2e_id)) == fleet.nothing(e2e_id)
        assert not (work_dir / "pool").exists()
        timings.append((round(middle - began, 1), round(time.monotonic() - middle, 1)))
    print(f"up/destroy seconds per cycle: {timings}")
