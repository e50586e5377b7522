"""One soak: the daemon, the pool, the stacks, the operator, the faults, the final teardown,
the table."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import libvirt

from tdx_provider import retry
from tdx_provider.connection import connect
from tdx_provider.storage import exclusion, ledger, pool
from tests.support import guest as tg
from tests.support.cleanup import remove_pool
from tests.support.private_libvirtd import PrivateLibvirtd
from tests.support.runs import run_id

from .audit import volume_names
from .commands import SoakStack
from .daemons import private_daemon
from .faults import FaultLog, Injector, plan
from .markers import Tracker
from .operator_loop import Operator
from .report import Tally, table, write_json
from .stacks import PROGRAM, PROJECT, Cycler, Shared, configure

STALE_SECONDS = 5  # PULUMI_TDX_LOCK_STALE_SECONDS: a killed holder delays writers this long
CHECK_EVERY = 10.0  # seconds between two checks of every declared overlay
FINAL_TRIES = 4


@dataclass(frozen=True)
class Settings:
    minutes: float
    host: str | None  # "debian" / "upstream": a private daemon of that libvirt
    uri: str | None  # else a daemon the soak does not own (never restarted)
    seed: int
    stacks: int
    overlays: int
    json_path: Path | None
    keep: bool
    release_chance: float = 0.4
    strict: bool = False  # real failures fail the run too


class Log:
    """Timestamped lines to stdout and to the run's log file."""

    def __init__(self, path: Path, started: float) -> None:
        self.path, self.started = path, started
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        text = f"[{time.monotonic() - self.started:7.1f}s] {line}"
        with self._lock, open(self.path, "a") as log:
            log.write(text + "\n")
            first = text.splitlines()[0]
            print(first[:240], flush=True)


def _version(uri: str) -> str:
    with connect(uri) as conn:
        v = conn.getLibVersion()
    return f"{v // 1_000_000}.{v // 1000 % 1000}.{v % 1000}"


def run(settings: Settings) -> int:
    base = f"ptdx-soak-{run_id()}"
    work = Path("/var/tmp") / base
    work.mkdir(parents=True, exist_ok=True)
    say = Log(work / "soak.log", time.monotonic())
    daemon: PrivateLibvirtd | None = None
    if settings.host is not None:
        daemon = private_daemon(settings.host, work / "daemon")
        daemon.start()
    try:
        tally, header, markers = _soak(settings, base, work, say, daemon)
    finally:  # whatever happened, nothing of ours keeps running in the daemon we started
        if daemon is not None:
            with contextlib.suppress(Exception):
                daemon.remove_everything()
    header["restarts of the soak's daemon"] = str(daemon.restarts if daemon else 0)
    print()
    print(table(tally, header, markers, settings.strict), flush=True)
    if settings.json_path is not None:
        write_json(settings.json_path, tally, header, markers)
    ok = tally.ok(settings.strict)
    if ok and not tally.real and not settings.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"\nthe run's files (log: {work / 'soak.log'}) are kept in {work}", flush=True)
    return 0 if ok else 1


def _soak(settings: Settings, base: str, work: Path, say: Log,
          daemon: PrivateLibvirtd | None) -> tuple[Tally, dict[str, str], dict[str, int]]:
    started = say.started
    guest = tg.test_guest()
    uri = daemon.uri if daemon is not None else settings.uri
    assert uri is not None
    seconds = settings.minutes * 60
    gap = min(45.0, max(15.0, seconds / 25))
    schedule = plan(settings.seed, seconds, gap)
    header = {
        "host": f"{settings.host or 'not owned: ' + uri} (libvirt {_version(uri)})",
        "minutes": f"{settings.minutes:g}", "seed": str(settings.seed),
        "stacks x overlays": f"{settings.stacks} x {settings.overlays} (+ base, 0-1 guest each)",
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    say(f"soak {base}: seed {settings.seed}, {settings.minutes:g} min on {header['host']}, "
        f"uri {uri}, work {work}")
    say("fault schedule: " + ", ".join(f"{p.at:.0f}s {p.kind}" for p in schedule))

    pool_name, pool_path = base, work / "pool"
    with connect(uri) as conn:  # the host's pool, made before the stacks (as an operator would)
        pool.ensure(conn, pool_name, str(pool_path), autostart=False)
    env = {**os.environ, exclusion.STALE_ENV: str(STALE_SECONDS), "PYTHONUNBUFFERED": "1"}
    tally, tracker, faults, stop = Tally(), Tracker(say), FaultLog(), threading.Event()
    operator = Operator(uri, pool_name, env, settings.seed + 1, tracker, tally, faults, say)
    shared = Shared(uri, pool_name, pool_path, tracker, tally, faults, stop, say,
                    operator.delete_owner, operator.cleanup, settings.release_chance)
    stacks = []
    for k in range(settings.stacks):
        stack = SoakStack(work / f"s{k}", PROGRAM, name=f"{base}-s{k}", project=PROJECT,
                          extra_env={exclusion.STALE_ENV: str(STALE_SECONDS)})
        configure(stack, shared, guest, work / f"s{k}" / "console")
        stacks.append(stack)
    cyclers = [Cycler(s, shared, settings.seed + 10 + k, settings.overlays)
               for k, s in enumerate(stacks)]
    for k, cycler in enumerate(cyclers):
        cycler.partners = [c for c in cyclers if c is not cycler]
        cycler.console = work / f"s{k}" / "console"
    injector = Injector(schedule, started, daemon, stacks, uri, pool_name, env, faults, tally,
                        say)

    checker = threading.Thread(target=_check_loop, args=(tracker, tally, stop, say),
                               name="checker", daemon=True)
    for cycler in cyclers:
        cycler.thread.start()
    operator.start()
    injector.start()
    checker.start()
    stop.wait(seconds)
    say("time is up: the stacks finish their step")
    stop.set()
    injector.stop()
    for cycler in cyclers:
        cycler.thread.join()
    operator.stop()
    checker.join()
    for failed in tracker.verify_all():  # the last word on what the stacks still declared
        tally.note("lost", f"{failed[0].stack}: {failed[0].name} {failed[1].what}: "
                   f"{failed[1].evidence} (final check)")

    _final_teardown(cyclers, operator, tally, say)
    _leftovers(uri, pool_name, pool_path, stacks, base, tally)
    with contextlib.suppress(libvirt.libvirtError), connect(uri) as conn:
        remove_pool(conn.storagePoolLookupByName(pool_name))
    markers = {"data": tracker.data_markers, "xattr_only": tracker.xattr_only,
               "checks": tracker.checks}
    return tally, header, markers


def _check_loop(tracker: Tracker, tally: Tally, stop: threading.Event,
                say: Log) -> None:
    while not stop.wait(CHECK_EVERY):
        for marked, verdict in tracker.verify_all():
            line = f"{marked.stack}: {marked.name} {verdict.what}: {verdict.evidence} (checker)"
            tally.note("lost", line)
            say(f"LOST {line}")
            tracker.forget(marked)


def _final_teardown(cyclers: list[Cycler], operator: Operator, tally: Tally, say: Log) -> None:
    """Destroy every stack (a few tries: the last fault may still echo), clear pending
    operations, remove the stacks; then one last pool-cleanup."""
    for cycler in cyclers:
        stack = cycler.stack
        cycler.shared.tracker.release(cycler.name)
        for _ in range(FINAL_TRIES):
            outcome = stack.command("destroy", "--yes", "--skip-preview")
            tally.add("operations", "pulumi destroy (final)")
            if outcome.ok:
                break
            say(f"{stack.name}: final destroy failed: {outcome.summary()}")
            tally.bump("retries")
        else:
            tally.add("real", "pulumi destroy (final): " + outcome.summary()[:150])
        resources = stack.resources()
        if resources:
            tally.note("left", f"stack {stack.name}: {len(resources)} resources in state")
        else:
            stack.run("stack", "rm", "--yes", stack.name, check=False)
    operator.cleanup()


def _leftovers(uri: str, pool_name: str, pool_path: Path, stacks: list[SoakStack], base: str,
               tally: Tally) -> None:
    """Anything of the soak's (domains, volumes, lock volumes, ledger records, pools, files,
    stacks) still there."""
    with connect(uri) as conn:
        for dom in conn.listAllDomains(0):
            if dom.name().startswith(base):
                tally.note("left", f"domain {dom.name()}")
        for other in conn.listAllStoragePools(0):
            if other.name().startswith(base) and other.name() != pool_name:
                tally.note("left", f"pool {other.name()}")
        found = conn.storagePoolLookupByName(pool_name)
        retry.transient(lambda: found.refresh(0))
        for name in volume_names(found):
            if name != ledger.LEDGER_VOLUME:
                tally.note("left", f"volume {name}")
        for name in ledger.read(found):
            tally.note("left", f"ledger record {name}")
    listed = {pool_path / n for n in os.listdir(pool_path)} if pool_path.exists() else set()
    for path in sorted(listed):
        if path.name not in (ledger.LEDGER_VOLUME,) and not path.name.startswith(base):
            tally.note("left", f"file {path}")
    for stack in stacks:
        out = subprocess.run(["pulumi", "stack", "ls", "--json"], cwd=stack.project_dir,
                             env=stack.env, capture_output=True, text=True, check=False)
        with contextlib.suppress(ValueError):
            for entry in json.loads(out.stdout or "[]"):
                tally.note("left", f"stack {entry.get('name')}")
    sys.stdout.flush()
