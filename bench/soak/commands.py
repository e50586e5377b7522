"""Running the real commands: ``pulumi`` for a stack (interruptible, its process group known)
and ``tdxctl`` for the operator. Every run comes back as an :class:`Outcome` with its times,
so a failure can be matched against the faults injected meanwhile."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.stack import VENV, Stack

COMMAND_TIMEOUT = 600.0
TDXCTL = str(VENV / "bin" / "tdxctl")
PROVIDER_MODULE = "pulumi.dynamic"


@dataclass
class Outcome:
    what: str  # "pulumi up", "tdxctl pool-cleanup", ...
    code: int
    output: str
    began: float
    ended: float
    timed_out: bool = False
    stdout: str = ""  # tdxctl's alone (its --json), without the warnings on stderr

    @property
    def ok(self) -> bool:
        return self.code == 0 and not self.timed_out

    def summary(self) -> str:
        """The first telling error line of a failure (what the failure table groups by)."""
        if self.timed_out:
            return "timed out"
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        errors = ([line for line in lines if "error:" in line.lower()]
                  or [line for line in lines if "error" in line.lower() or "exception" in line])
        telling = [line for line in errors if not line.endswith(GENERIC)]
        chosen = (telling or errors or lines[-1:] or [f"exit {self.code}"])[0]
        at = chosen.lower().find("error:")
        return (chosen[at:] if at > 0 else chosen)[:160]


GENERIC = tuple(f"error: {verb} {how}" for verb in ("update", "destroy", "refresh", "preview")
                for how in ("failed", "canceled"))


def run_tool(what: str, args: list[str], env: dict[str, str],
             timeout: float = COMMAND_TIMEOUT) -> Outcome:
    began = time.monotonic()
    try:
        proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return Outcome(what, -9, out, began, time.monotonic(), timed_out=True)
    return Outcome(what, proc.returncode, proc.stdout + proc.stderr, began, time.monotonic(),
                   stdout=proc.stdout)


def tdxctl(command: str, *args: str, uri: str, env: dict[str, str]) -> Outcome:
    return run_tool(f"tdxctl {command}", [TDXCTL, "--uri", uri, command, *args], env)


class SoakStack(Stack):
    """A :class:`Stack` whose long commands run as their own process group, so a fault can
    interrupt the one running now (:meth:`interrupt`, :meth:`kill_provider`)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._guard = threading.Lock()
        self._running: tuple[str, subprocess.Popen[str]] | None = None

    def command(self, verb: str, *args: str, timeout: float = COMMAND_TIMEOUT) -> Outcome:
        cmd = ["pulumi", verb, *args, "--non-interactive", "--color", "never"]
        began = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=self.project_dir, env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        with self._guard:
            self._running = (verb, proc)
        timed_out = False
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            self._drop_state_locks()
        finally:
            with self._guard:
                self._running = None
        return Outcome(f"pulumi {verb}", proc.returncode, output, began, time.monotonic(),
                       timed_out)

    def config(self, values: dict[str, Any]) -> None:
        """All values in one ``pulumi config set-all`` (a CLI start each costs ~1 s)."""
        pairs = [arg for key, value in values.items() for arg in ("--plaintext", f"{key}={value}")]
        self.run("config", "set-all", *pairs)

    def _drop_state_locks(self) -> None:
        """A Pulumi CLI killed by the soak leaves its stack lock in the state directory (ours)."""
        shutil.rmtree(self.state_dir / ".pulumi" / "locks", ignore_errors=True)

    def running(self) -> str | None:
        with self._guard:
            return self._running[0] if self._running else None

    def interrupt(self, verb: str, presses: int) -> bool:
        """Ctrl-C ``presses`` times (SIGINT to the process group, as a terminal sends it) if
        ``pulumi verb`` runs now."""
        with self._guard:
            if self._running is None or self._running[0] != verb:
                return False
            pid = self._running[1].pid
        for press in range(presses):
            if press:
                time.sleep(0.3)
            try:
                os.killpg(pid, signal.SIGINT)
            except ProcessLookupError:
                return press > 0
        return True

    def kill_provider(self) -> str | None:
        """SIGKILL the dynamic provider of the command running now; which, or None."""
        with self._guard:
            if self._running is None:
                return None
            session = self._running[1].pid
        for pid, cmdline in provider_pids(session):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            return f"pid {pid} ({cmdline[:80]})"
        return None


def provider_pids(session: int) -> list[tuple[int, str]]:
    """Dynamic provider processes in a session (the soak started its leader): the Python
    interpreter running ``-m pulumi.dynamic`` (its shell shim, which does not exec, would die
    alone and leave the provider serving)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        # field 6 of /proc/PID/stat is the session id; the name field may hold spaces
        if int(stat.rsplit(")", 1)[1].split()[3]) != session:
            continue
        if PROVIDER_MODULE in argv:
            found.append((int(entry.name), " ".join(argv).strip()))
    return found
