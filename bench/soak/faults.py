"""Faults at seeded random moments, and the log that tells an injected failure from a real one.

Kinds (:data:`KINDS`):

- ``libvirtd-restart``: the soak's own daemon stopped (SIGTERM) and started again;
- ``sigint-up``: Ctrl-C (once, or twice: Pulumi then leaves pending operations) to a running
  ``pulumi up``;
- ``kill-provider``: SIGKILL of the dynamic provider of a running ``pulumi`` command;
- ``kill-lock-holder``: a process that holds the pool's lock (``exclusion.pool_lock``) SIGKILLed;
  the next writer breaks the lock after ``PULUMI_TDX_LOCK_STALE_SECONDS``. No command may fail
  because of it, so it explains no failure.
"""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tests.support.private_libvirtd import PrivateLibvirtd
from tests.support.stack import REPO_ROOT

from .commands import SoakStack
from .report import Tally

KINDS = ("libvirtd-restart", "sigint-up", "kill-provider", "kill-lock-holder")
GRACE = 5.0  # seconds after a daemon restart in which a failure is still its consequence
TARGET_WAIT = 45.0  # seconds a targeted fault waits for a command to hit


@dataclass
class Fault:
    kind: str
    target: str | None  # the stack, for the targeted kinds
    began: float
    ended: float = float("inf")  # open while it is being injected
    detail: str = ""


@dataclass(frozen=True)
class Planned:
    at: float  # seconds after the start
    kind: str
    delay: float  # for targeted kinds: seconds after the command was found running
    presses: int


def plan(seed: int, seconds: float, mean_gap: float) -> list[Planned]:
    """The schedule: exponential gaps, every kind once before any kind twice (shuffled)."""
    rng = random.Random(seed)
    schedule: list[Planned] = []
    bag: list[str] = []
    at = rng.uniform(0.3, 1.0) * mean_gap
    while at < seconds - 20:
        if not bag:
            bag = list(KINDS)
            rng.shuffle(bag)
        schedule.append(Planned(round(at, 1), bag.pop(), round(rng.uniform(0.5, 6.0), 1),
                                rng.choice((1, 1, 2))))
        at += rng.expovariate(1 / mean_gap)
    return schedule


class FaultLog:
    """Faults are logged *before* they strike (open until :meth:`close`), so a command that
    fails from one always finds it, however fast it fails."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.faults: list[Fault] = []

    def open(self, kind: str, target: str | None) -> Fault:
        fault = Fault(kind, target, time.monotonic())
        with self._lock:
            self.faults.append(fault)
        return fault

    def close(self, fault: Fault, detail: str) -> None:
        with self._lock:
            fault.ended, fault.detail = time.monotonic(), detail

    def cancel(self, fault: Fault) -> None:
        with self._lock:
            self.faults.remove(fault)

    def explains(self, stack: str | None, began: float, ended: float) -> str | None:
        """The fault that a command run in [began, ended] (by ``stack``) may have failed from."""
        with self._lock:
            overlapping = [f for f in self.faults if f.kind != "kill-lock-holder"
                           and (f.target is None or f.target == stack)
                           and f.began <= ended and f.ended + GRACE >= began]
        # the latest one: an earlier fault's consequence has usually been seen already
        return max(overlapping, key=lambda f: f.began).kind if overlapping else None


HOLDER = textwrap.dedent("""
    import sys, time
    from tdx_provider.connection import connect
    from tdx_provider.storage.exclusion import pool_lock
    with connect(sys.argv[1]) as conn, pool_lock(conn, sys.argv[2]):
        print("held", flush=True)
        time.sleep(600)
""")


def kill_lock_holder(uri: str, pool_name: str, env: dict[str, str]) -> str:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, uri, pool_name], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    proc.kill()
    proc.wait(timeout=30)
    if line != "held":
        said = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"lock holder never held: {line!r} {said}")
    return f"pid {proc.pid}"


class Injector:
    """Runs the schedule in its own thread until the deadline or :meth:`stop`."""

    def __init__(self, schedule: Sequence[Planned], started: float, daemon: PrivateLibvirtd | None,
                 stacks: Sequence[SoakStack], uri: str, pool_name: str, env: dict[str, str],
                 log: FaultLog, tally: Tally, say: Callable[[str], None]) -> None:
        self.schedule, self.started, self.daemon = schedule, started, daemon
        self.stacks, self.uri, self.pool_name, self.env = stacks, uri, pool_name, env
        self.log, self.tally, self.say = log, tally, say
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faults", daemon=True)
        self._rng = random.Random(len(schedule))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _run(self) -> None:
        for planned in self.schedule:
            if self._stop.wait(max(0.0, self.started + planned.at - time.monotonic())):
                return
            try:
                fault = self._inject(planned)
            except Exception as exc:  # a fault that could not be injected is a soak bug: show it
                self.tally.add("real", f"fault {planned.kind} not injected: {exc}"[:160])
                continue
            if fault is None:
                self.tally.add("faults_skipped", planned.kind)
                self.say(f"fault {planned.kind}: no target within {TARGET_WAIT:.0f} s")
                continue
            self.tally.add("faults", planned.kind)
            self.say(f"fault {fault.kind}{' on ' + fault.target if fault.target else ''}: "
                     f"{fault.detail}")

    def _inject(self, planned: Planned) -> Fault | None:
        if planned.kind == "libvirtd-restart":
            if self.daemon is None:
                return None
            fault = self.log.open(planned.kind, None)
            down = self.daemon.restart()
            self.log.close(fault, f"down {down:.1f} s")
            return fault
        if planned.kind == "kill-lock-holder":
            fault = self.log.open(planned.kind, None)
            self.log.close(fault, kill_lock_holder(self.uri, self.pool_name, self.env))
            return fault
        verb = "up" if planned.kind == "sigint-up" else None
        deadline = time.monotonic() + TARGET_WAIT
        while time.monotonic() < deadline and not self._stop.is_set():
            busy = [s for s in self.stacks if s.running() and (verb is None or s.running() == verb)]
            if busy:
                stack = self._rng.choice(busy)
                if self._stop.wait(min(planned.delay, 2.0)):
                    return None
                fault = self.log.open(planned.kind, stack.name)
                if planned.kind == "sigint-up":
                    if stack.interrupt("up", planned.presses):
                        self.log.close(fault, f"{planned.presses} x SIGINT")
                        return fault
                else:
                    during = stack.running()
                    killed = stack.kill_provider()
                    if killed is not None:
                        self.log.close(fault, f"provider {killed} during pulumi {during}")
                        return fault
                self.log.cancel(fault)
            time.sleep(0.2)
        return None
