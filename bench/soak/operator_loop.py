"""The operator: ``tdxctl list``, ``pool-info`` and ``pool-cleanup`` in a loop against the
soak's pool, ``tdxctl delete --all --owner`` of a stack a cycler hands over, and a released
overlay hot-plugged into another stack's running guest (live definition only) and unplugged."""

from __future__ import annotations

import json
import random
import threading
import time
import traceback
from collections.abc import Callable

import libvirt

from tdx_provider.connection import connect
from tdx_provider.errors import TdxError
from tdx_provider.storage.cleanup import DECLARED

from .audit import lock_findings
from .commands import Outcome, tdxctl
from .faults import FaultLog
from .markers import Tracker
from .report import Tally

WEIGHTS = {"list": 3, "pool-info": 3, "pool-cleanup": 4}


class Operator:
    def __init__(self, uri: str, pool_name: str, env: dict[str, str], seed: int,
                 tracker: Tracker, tally: Tally, faults: FaultLog,
                 say: Callable[[str], None]) -> None:
        self.uri, self.pool_name, self.env = uri, pool_name, env
        self.tracker, self.tally, self.faults, self.say = tracker, tally, faults, say
        self.rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="operator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=600)

    def _loop(self) -> None:
        try:
            self._commands()
        except Exception as exc:  # a soak bug: a failure to show, not hide
            self.tally.add("real", f"the operator loop stopped: {exc!r}"[:160])
            self.say(f"operator: stopped: {traceback.format_exc()}")

    def _commands(self) -> None:
        while not self._stop.is_set():
            kind = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
            if kind == "list":
                self.run("list", "--json")
            elif kind == "pool-info":
                self.run("pool-info", self.pool_name, "--json")
            else:
                self.cleanup()
            self._stop.wait(self.rng.uniform(1.0, 3.0))

    def run(self, command: str, *args: str) -> Outcome:
        outcome = tdxctl(command, *args, uri=self.uri, env=self.env)
        self.tally.add("operations", outcome.what)
        if "broke a stale lock" in outcome.output:
            self.tally.bump("lock_breaks", outcome.output.count("broke a stale lock"))
        for finding in lock_findings(outcome.output):
            if self.faults.explains(None, outcome.began - 30, outcome.ended) is None:
                self.tally.add("real", f"{outcome.what}: {finding}"[:200])
                self.say(f"operator: REAL FAILURE of {outcome.what}: {finding}")
        if not outcome.ok:
            cause = self.faults.explains(None, outcome.began, outcome.ended)
            if cause is None:
                self.tally.add("real", f"{outcome.what}: {outcome.summary()}"[:200])
                self.say(f"operator: REAL FAILURE of {outcome.what}: {outcome.output[-2000:]}")
            else:
                self.tally.add("injected", f"{cause}: {outcome.what}")
        return outcome

    def cleanup(self) -> None:
        outcome = self.run("pool-cleanup", self.pool_name, "--json")
        try:
            rows = json.loads(outcome.stdout) if outcome.ok and outcome.stdout.strip() else []
        except ValueError:
            rows = []
        declared = {m.name for m in self.tracker.declared()}
        for row in rows:
            if row["action"] == "removed":
                note = " (DECLARED by a stack)" if row["volume"] in declared else ""
                self.say(f"operator: pool-cleanup removed {row['volume']}{note}")
            elif row["action"] == "kept" and row.get("reason") not in (None, DECLARED):
                self.tally.add("refusals", "pool-cleanup kept a released overlay: "
                               + str(row["reason"]).split(":")[0][:60])

    def delete_owner(self, owner: str) -> Outcome:
        """``tdxctl delete --all --owner OWNER``: the stack's guests go, their overlays are
        released (pool-cleanup may remove them from now on)."""
        outcome = self.run("delete", "--all", "--owner", owner, "--timeout", "3")
        self.say(f"operator: tdxctl delete --all --owner {owner}: "
                 f"{'ok' if outcome.ok else 'FAILED'}")
        return outcome


def _disk_xml(path: str, target: str) -> str:
    return (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{path}'/><target dev='{target}' bus='virtio'/></disk>")


def attach_live(uri: str, domain: str, path: str, target: str = "vdb") -> str | None:
    """Hot-plug a disk into a running guest's live definition only (``virsh attach-disk DOM
    PATH vdb --live``); None when done, else why not."""
    try:
        with connect(uri) as conn:
            conn.lookupByName(domain).attachDeviceFlags(_disk_xml(path, target),
                                                        libvirt.VIR_DOMAIN_AFFECT_LIVE)
    except (libvirt.libvirtError, TdxError) as exc:
        return str(exc)
    return None


def detach_live(uri: str, domain: str, path: str, target: str = "vdb",
                timeout: float = 30.0) -> str | None:
    """Unplug it again and wait until the live definition no longer names it."""
    try:
        with connect(uri) as conn:
            dom = conn.lookupByName(domain)
            dom.detachDeviceFlags(_disk_xml(path, target), libvirt.VIR_DOMAIN_AFFECT_LIVE)
            deadline = time.monotonic() + timeout
            while path in dom.XMLDesc(0):
                if time.monotonic() > deadline:
                    return f"{path} still in {domain}'s live definition after {timeout:.0f} s"
                time.sleep(0.2)
    except (libvirt.libvirtError, TdxError) as exc:
        return str(exc)
    return None


def power_cycle(uri: str, domain: str, path: str) -> str | None:
    """Stop a persistent guest hard and start it again: its live-only disks are gone then (the
    operator's way out when a guest does not release a hot-unplugged disk)."""
    try:
        with connect(uri) as conn:
            dom = conn.lookupByName(domain)
            dom.destroy()
            dom.create()
            if path in dom.XMLDesc(0):
                return f"{path} still in {domain}'s live definition after a power cycle"
    except (libvirt.libvirtError, TdxError) as exc:
        return str(exc)
    return None
