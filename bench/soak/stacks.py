"""A stack cycling up, change, refresh and destroy against the shared pool, converging after
every failure, and declaring its overlays to the marker tracker while it holds them."""

from __future__ import annotations

import functools
import json
import random
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import libvirt

from tdx_provider import retry
from tdx_provider.connection import connect
from tdx_provider.errors import TdxError
from tdx_provider.storage import ledger
from tests.support import guest as tg

from .audit import ledger_findings, lock_findings, volume_names
from .commands import Outcome, SoakStack
from .faults import FaultLog
from .markers import Marked, Tracker, Verdict
from .operator_loop import attach_live, detach_live, power_cycle
from .report import Tally

PROJECT = "ptdx-soak"
MIB = 1024 * 1024
GROW = 16 * MIB
RECOVERY_TRIES = 4
MAX_CRASHES = 3  # cycles of one stack that may crash before it stops cycling
READY_WAIT = 60.0  # seconds a partner's guest gets to reach userspace before a hot-plug
STALE_WINDOW = 30.0  # seconds before a command in which a daemon restart explains a lock break
# The shared-pool program (tests/support/shared_pool.py) plus what a change may touch:
# overlay capacities (grown in place, live under a running guest) and guest autostart.
PROGRAM = """
import json
import pulumi
from pulumi_tdx import BaseImage, Overlay, Pool, TrustDomain

cfg = pulumi.Config()
prefix = cfg.require("prefix")
uri = cfg.require("uri")
pool = Pool("pool", name=cfg.require("pool"), path=cfg.require("pool_path"), autostart=False,
            uri=uri)
base = BaseImage("base", pool=pool, name=f"{prefix}-base", source=cfg.require("image"), uri=uri)
capacities = json.loads(cfg.get("capacities") or "[]")
disks = [Overlay(f"disk-{i}", pool=pool, base_image=base, name=f"{prefix}-disk-{i}",
                 capacity=capacities[i] if i < len(capacities) and capacities[i] else None,
                 uri=uri)
         for i in range(cfg.require_int("overlays"))]
for i in range(cfg.require_int("domains")):
    TrustDomain(
        f"td-{i}", overlay=disks[i], name=f"{prefix}-td-{i}", memory_mib=128, vcpus=1,
        tdx=False, domain_type="qemu", vsock=False, network=None,
        kernel=cfg.require("kernel"), initrd=cfg.require("initrd"),
        cmdline=cfg.require("cmdline"), console_log=f"{cfg.require('work')}/td-{i}.log",
        shutdown_timeout=3, autostart=cfg.get_bool("autostart") or False, uri=uri,
    )
"""


@dataclass
class Shape:
    """What the program declares this step."""

    overlays: int
    domains: int
    capacities: list[int] = field(default_factory=list)
    autostart: bool = False


@dataclass
class Shared:
    """What every cycler uses."""

    uri: str
    pool_name: str
    pool_path: Path
    tracker: Tracker
    tally: Tally
    faults: FaultLog
    stop: threading.Event
    say: Callable[[str], None]
    release: Callable[[str], Outcome]  # the operator's `tdxctl delete --all --owner`
    operator_cleanup: Callable[[], None]  # one `tdxctl pool-cleanup` pass, now
    release_chance: float  # of a cycle in which the operator deletes the stack's guests
    experiment: threading.Lock = field(default_factory=threading.Lock)


def configure(stack: SoakStack, shared: Shared, guest: tg.TestGuest, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    stack.config({"prefix": stack.name, "uri": shared.uri, "pool": shared.pool_name,
                  "pool_path": str(shared.pool_path), "work": str(work),
                  "image": str(guest.base_image), "kernel": str(guest.kernel),
                  "initrd": str(guest.initrd), "cmdline": tg.CMDLINE})


class Cycler:
    def __init__(self, stack: SoakStack, shared: Shared, seed: int, overlays: int) -> None:
        self.stack, self.shared, self.overlays = stack, shared, overlays
        self.rng = random.Random(seed)
        self.name = stack.name
        self.owner = f"{PROJECT}/{stack.name}"
        self.shape = Shape(overlays, 0)
        self.destroyed = False  # the cycle's last step destroyed the stack already
        self.console = Path(".")  # the directory of its guests' console logs (runner sets it)
        self.hold = threading.Lock()  # held during each step; a partner takes it to freeze us
        self.partners: list[Cycler] = []
        self.thread = threading.Thread(target=self.run, name=self.name, daemon=True)

    # --- the cycle ------------------------------------------------------------------------

    def run(self) -> None:
        crashes = 0
        while not self.shared.stop.is_set():
            try:
                self.cycle()
            except Exception as exc:  # a soak bug or a broken CLI: a failure to show, not hide
                crashes += 1
                self.real("cycle", f"a cycle crashed: {exc!r}"[:160], traceback.format_exc())
                if crashes >= MAX_CRASHES:
                    return
                self.shared.stop.wait(5)

    def cycle(self) -> None:
        self.set_shape(Shape(self.overlays, self.rng.choice((0, 1)), [0] * self.overlays))
        steps: list[Callable[[], bool]] = [functools.partial(self.apply, "up")]
        steps += [functools.partial(self.change, kind)
                  for kind in self.rng.sample(self.changes(), 2)]
        steps.append(self.refresh)
        if self.rng.random() < self.shared.release_chance:
            steps.append(self.released_by_operator)
        for step in steps:
            # a moment without the hold: a lock is not fair, a waiting partner needs a gap
            if self.shared.stop.wait(0.3):
                break
            with self.hold:
                if not step():
                    break
        with self.hold:
            if self.destroyed or self.destroy():
                self.shared.tally.add("cycles", self.name)
        self.destroyed = False

    def changes(self) -> list[str]:
        return ["grow", "autostart", "guest"]

    def change(self, kind: str) -> bool:
        shape = Shape(self.shape.overlays, self.shape.domains, list(self.shape.capacities),
                      self.shape.autostart)
        if kind == "grow":
            i = self.rng.randrange(shape.overlays)
            shape.capacities[i] = (shape.capacities[i] or 64 * MIB) + GROW
        elif kind == "autostart":
            shape.autostart = not shape.autostart
        else:  # a guest added on disk-0, or removed from it
            shape.domains = 1 - shape.domains
        self.set_shape(shape)
        return self.apply(f"change:{kind}")

    def set_shape(self, shape: Shape) -> None:
        self.shape = shape
        self.stack.config({"overlays": shape.overlays, "domains": shape.domains,
                           "capacities": json.dumps(shape.capacities),
                           "autostart": str(shape.autostart).lower()})

    # --- commands and recovery ------------------------------------------------------------

    def apply(self, label: str) -> bool:
        if not self.converge(label, ("up", "--yes", "--skip-preview")):
            return False
        self.after_up(label)
        return True

    def refresh(self) -> bool:
        if not self.converge("refresh", ("refresh", "--yes", "--skip-preview",
                                         "--clear-pending-creates")):
            return False
        self.check_declared("refresh")
        return True

    def destroy(self) -> bool:
        self.shared.tracker.release(self.name)  # destroy deletes them: no longer declared
        if not self.converge("destroy", ("destroy", "--yes", "--skip-preview"),
                             recover=("destroy", "--yes", "--skip-preview")):
            return False
        left = self.holdings()
        if left:
            self.real("destroy", f"destroy left {left}", "")
        return not left

    def released_by_operator(self) -> bool:
        """The operator deletes this stack's guests (``tdxctl delete --all --owner``), which
        releases their overlays for pool-cleanup. If another stack runs a guest, the operator
        hot-plugs the released disk-0 into it (live definition only) and this stack is
        destroyed: pool-cleanup must keep that overlay and the destroy must refuse to delete
        it, until the operator unplugs it. Otherwise the stack refreshes and ups again."""
        # one experiment at a time: two stacks waiting for each other's hold would both give up
        if self.shape.domains and self.shared.experiment.acquire(blocking=False):
            try:
                partner = self.frozen_partner()
                if partner is not None:
                    try:
                        return self.live_elsewhere(partner)
                    finally:
                        partner.hold.release()
            finally:
                self.shared.experiment.release()
        self.shared.tracker.release(self.name)
        self.shared.release(self.owner)
        if not (self.refresh() and self.apply("up after operator delete")):
            return False
        if self.shape.domains == 0:
            return True
        # The stack declares disk-0 again; with its guest gone, only the ledger keeps
        # pool-cleanup off it.
        if not self.change("guest"):
            return False
        self.shared.operator_cleanup()
        self.check_declared("pool-cleanup after the reclaimed overlay's guest went")
        return True

    def frozen_partner(self) -> Cycler | None:
        """Another stack, held between two steps, whose guest td-0 runs; None if none is."""
        for partner in self.rng.sample(self.partners, len(self.partners)):
            if not partner.hold.acquire(timeout=self.rng.uniform(10, 30)):
                continue
            if partner.guest_running() and partner.guest_ready():
                return partner
            partner.hold.release()
        return None

    def guest_ready(self, timeout: float = READY_WAIT) -> bool:
        """The guest reached userspace (its console log, truncated at each start, says so):
        before that it would not answer a hot-unplug."""
        log = self.console / "td-0.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if log.exists() and tg.USERSPACE_MARKER in log.read_text(errors="replace"):
                return True
            time.sleep(0.5)
        return False

    def guest_running(self) -> bool:
        try:
            with connect(self.shared.uri) as conn:
                dom = conn.lookupByName(f"{self.name}-td-0")
                return bool(dom.isActive() and dom.isPersistent())
        except (libvirt.libvirtError, TdxError):
            return False

    def live_elsewhere(self, partner: Cycler) -> bool:
        disk = f"{self.name}-disk-0"
        path = str(self.shared.pool_path / disk)
        guest = f"{partner.name}-td-0"
        holder = f"operator (live in {guest})"
        if not self.shared.tracker.hand_over(self.name, disk, holder):
            self.shared.tracker.release(self.name)
        self.shared.release(self.owner)
        tally = self.shared.tally
        why_not = attach_live(self.shared.uri, guest, path)
        tally.add("operations", "libvirt attach-disk --live")
        if why_not is not None:
            self.shared.tracker.release(holder)
            self.real("attach", f"hot-plug of {disk} into {guest} failed: {why_not}", "")
            return self.refresh() and self.apply("up after operator delete")
        self.shared.say(f"{self.name}: operator hot-plugged {disk} into {guest} (live only)")
        self.shared.operator_cleanup()
        outcome = self.run_command("destroy (disk-0 live in another guest)",
                                   ("destroy", "--yes", "--skip-preview"))
        if outcome.ok:
            self.real("destroy", f"destroy did not refuse {disk}, in use live by {guest}", "")
        elif guest in outcome.output:
            tally.add("refusals", "pulumi destroy: overlay in use live by another guest")
        else:
            self.classify("destroy", outcome)
        self.shared.operator_cleanup()
        self.report_lost(self.shared.tracker.verify_all(holder), f"{guest} runs on it")
        why_not = detach_live(self.shared.uri, guest, path)
        tally.add("operations", "libvirt detach-disk --live")
        if why_not is not None:  # the guest did not release it: the operator restarts it
            self.shared.say(f"{self.name}: unplug from {guest} not done ({why_not}); the "
                            "operator power-cycles that guest")
            why_not = power_cycle(self.shared.uri, guest, path)
            tally.add("operations", "libvirt power-cycle (guest kept an unplugged disk)")
        self.shared.tracker.release(holder)
        if why_not is not None:
            self.real("detach", f"{disk} still in {guest}: {why_not}", "")
        self.destroyed = self.destroy()
        return False  # the cycle ends: the stack is destroyed

    def converge(self, label: str, args: tuple[str, ...],
                 recover: tuple[str, ...] = ("up", "--yes", "--skip-preview")) -> bool:
        """Run; after a failure, run ``recover`` until it succeeds. A failure that overlaps a
        fault aimed at this stack (or a daemon restart) is that fault's consequence; any other
        is real. After a fault, the first success must leave nothing to change."""
        outcome = self.run_command(label, args)
        if outcome.ok:
            return True
        cause = self.classify(label, outcome)
        seen = {outcome.summary()}  # a real failure that repeats is counted once
        for _ in range(RECOVERY_TRIES):
            self.shared.tally.bump("retries")
            again = self.run_command(f"{label} (again)", recover)
            if again.ok:
                if cause is not None:
                    self.shared.tally.bump("converged")
                    self.check_converged(label, recover)
                return True
            cause = self.classify(f"{label} (again)", again, count=again.summary() not in seen)
            seen.add(again.summary())
        self.real(label, f"no success in {1 + RECOVERY_TRIES} runs", "")
        return False

    def check_converged(self, label: str, recover: tuple[str, ...]) -> None:
        if recover[0] != "up":
            return
        for _ in range(RECOVERY_TRIES):
            preview = self.run_command("preview", ("preview", "--diff", "--expect-no-changes"))
            if preview.ok:
                return
            if self.shared.faults.explains(self.name, preview.began, preview.ended) is None:
                self.real(label, "after a fault, the next up did not converge: preview "
                          f"--expect-no-changes: {preview.summary()}", preview.output)
                return
            self.shared.tally.add("injected", "fault during the convergence preview")

    def run_command(self, label: str, args: tuple[str, ...]) -> Outcome:
        outcome = self.stack.command(*args)
        tally = self.shared.tally
        tally.add("operations", f"pulumi {label.split(' ')[0].split(':')[0]}"
                  if not label.startswith("change") else "pulumi up (change)")
        if "broke a stale lock" in outcome.output:
            tally.bump("lock_breaks", outcome.output.count("broke a stale lock"))
        for finding in lock_findings(outcome.output):
            self.lock_finding(label, finding, outcome)
        self.shared.say(f"{self.name}: pulumi {label}: "
                        f"{'ok' if outcome.ok else 'FAILED ' + outcome.summary()} "
                        f"({outcome.ended - outcome.began:.1f} s)")
        return outcome

    def lock_finding(self, label: str, finding: str, outcome: Outcome) -> None:
        """A daemon restart can cut a holder off while it lives: its lock is broken rightly."""
        since = outcome.began - STALE_WINDOW
        cause = self.shared.faults.explains(self.name, since, outcome.ended)
        if cause == "libvirtd-restart":
            self.shared.tally.add("injected", f"{cause}: {finding.split(':')[0]}")
        else:
            self.real(label, finding, outcome.output)

    def classify(self, label: str, outcome: Outcome, count: bool = True) -> str | None:
        cause = self.shared.faults.explains(self.name, outcome.began, outcome.ended)
        if cause is None:
            if count:
                self.real(label, outcome.summary(), outcome.output)
            else:
                self.shared.say(f"{self.name}: {label}: the same failure again")
        else:
            self.shared.tally.add("injected", f"{cause}: pulumi {label.split(' ')[0]}")
        return cause

    def real(self, label: str, summary: str, output: str) -> None:
        self.shared.tally.add("real", f"pulumi {label.split(' ')[0]}: {summary}"[:200])
        self.shared.say(f"{self.name}: REAL FAILURE of {label}: {summary}\n{output[-3000:]}")

    # --- what the stack holds -------------------------------------------------------------

    def overlay_paths(self) -> dict[str, Path]:
        return {f"{self.name}-disk-{i}": self.shared.pool_path / f"{self.name}-disk-{i}"
                for i in range(self.shape.overlays)}

    def after_up(self, label: str) -> None:
        """Declare the overlays (mark the new ones, check the known ones), and check that
        libvirt lists them and runs the guests."""
        paths = self.overlay_paths()
        failed = self.shared.tracker.declare(self.name, paths)
        self.report_lost(failed, label)
        seen = {marked.name for marked, _ in failed}
        for name, path in paths.items():
            if name not in seen and not path.exists():
                self.lost(name, "gone", f"absent right after a successful {label}")
        in_use = {paths[f"{self.name}-disk-{i}"] for i in range(self.shape.domains)}
        self.shared.tracker.mark_data_where_free(self.name, in_use)
        listed, running, entries = self.listing()
        if entries is not None:
            owners = {name: f"{self.owner}/{name.removeprefix(self.name + '-')}"
                      for name in [*paths, f"{self.name}-base"]}
            for finding in ledger_findings(entries, owners):
                self.real(label, finding, "")
        unlisted = sorted(set(paths) - listed)
        if unlisted:
            self.real(label, f"libvirt does not list {unlisted} after the up", "")
        wanted = {f"{self.name}-td-{i}" for i in range(self.shape.domains)}
        if not wanted <= running:
            self.real(label, f"guests not running after the up: {sorted(wanted - running)}", "")

    def check_declared(self, label: str) -> None:
        self.report_lost(self.shared.tracker.verify_all(self.name), label)

    def report_lost(self, failed: list[tuple[Marked, Verdict]], when: str) -> None:
        for marked, verdict in failed:
            self.lost(marked.name, verdict.what, f"{verdict.evidence} (seen at {when})")
            self.shared.tracker.forget(marked)

    def lost(self, name: str, what: str, evidence: str) -> None:
        line = f"{self.name}: {name} {what}: {evidence}"
        self.shared.tally.note("lost", line)
        self.shared.say(f"LOST {line}")

    def listing(self) -> tuple[set[str], set[str], dict[str, ledger.Entry] | None]:
        """(volumes libvirt lists in the pool, running domains) of this stack, and the
        pool's ledger (None when libvirt did not answer: a daemon restart)."""
        try:
            with connect(self.shared.uri) as conn:
                pool = conn.storagePoolLookupByName(self.shared.pool_name)
                retry.transient(lambda: pool.refresh(0))
                volumes = {v for v in volume_names(pool) if v.startswith(self.name + "-")}
                running = {d.name() for d in conn.listAllDomains(
                    libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE) if d.name().startswith(self.name)}
                return volumes, running, ledger.read(pool)
        except (libvirt.libvirtError, TdxError) as exc:
            self.shared.say(f"{self.name}: listing failed: {exc}")
            return set(self.overlay_paths()), {f"{self.name}-td-{i}"
                                               for i in range(self.shape.domains)}, None

    def holdings(self) -> list[str]:
        """Domains and volumes of this stack that libvirt still holds."""
        try:
            with connect(self.shared.uri) as conn:
                pool = conn.storagePoolLookupByName(self.shared.pool_name)
                retry.transient(lambda: pool.refresh(0))
                left = [v for v in volume_names(pool) if v.startswith(self.name + "-")]
                left += [d.name() for d in conn.listAllDomains(0)
                         if d.name().startswith(self.name)]
                return sorted(left)
        except (libvirt.libvirtError, TdxError) as exc:  # a daemon restart: the final check tells
            self.shared.say(f"{self.name}: holdings not read: {exc}")
            return []
