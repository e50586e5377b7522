"""Run the real Pulumi CLI on a throwaway project (local file backend in a temp dir), timing
each command and sampling the memory of the processes it starts."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .common import REPO_ROOT, VENV, pulumi_env
from .memory import RssSampler

COMMAND_TIMEOUT = 900


@dataclass
class CommandResult:
    args: list[str]
    seconds: float
    returncode: int
    output: str
    peak_mib: dict[str, float] = field(default_factory=dict)


class PulumiError(RuntimeError):
    pass


class PulumiProject:
    """One project and one stack; ``pulumi`` from the repository's .venv."""

    def __init__(self, workdir: Path, name: str, program: str, stack: str = "bench",
                 extra_env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.project_dir = workdir / "project"
        self.state_dir = workdir / "state"
        self.project_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.project_dir / "Pulumi.yaml").write_text(
            f"name: {name}\nruntime:\n  name: python\n  options:\n"
            f"    virtualenv: {VENV}\n    toolchain: pip\n"
        )
        (self.project_dir / "__main__.py").write_text(program)
        # The same environment as the e2e tests; the plugin home is shared across runs.
        self.env = pulumi_env(self.state_dir)
        self.env["PULUMI_HOME"] = str(workdir.parent / ".pulumi-home")
        self.env.update(extra_env or {})
        self.stack = stack
        self.run("stack", "init", stack, sample=False)

    def run(self, *args: str, sample: bool = True, check: bool = True) -> CommandResult:
        argv = [str(VENV / "bin" / "pulumi"), *args, "--non-interactive", "--color", "never"]
        start = time.monotonic()
        proc = subprocess.Popen(argv, cwd=self.project_dir, env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        sampler = RssSampler(proc.pid)
        with sampler if sample else contextlib.nullcontext():
            try:
                output, _ = proc.communicate(timeout=COMMAND_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                output, _ = proc.communicate()
            seconds = time.monotonic() - start
        result = CommandResult(list(args), seconds, proc.returncode, output,
                               dict(sampler.peak_mib))
        if check and proc.returncode != 0:
            raise PulumiError(f"pulumi {' '.join(args)} failed ({proc.returncode}):\n{output}")
        return result

    def up(self) -> CommandResult:
        return self.run("up", "--yes", "--skip-preview")

    def preview_no_op(self) -> CommandResult:
        # --expect-no-changes makes a preview that would change anything fail: a no-op for real.
        return self.run("preview", "--expect-no-changes")

    def destroy(self) -> CommandResult:
        return self.run("destroy", "--yes", "--skip-preview")

    def remove(self) -> None:
        self.run("destroy", "--yes", "--skip-preview", sample=False, check=False)
        self.run("stack", "rm", "--yes", "--force", self.stack, sample=False, check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)


def engine_only_env() -> dict[str, str]:
    """The no-op provider module must be importable by the program and the provider process."""
    return {"PYTHONPATH": str(REPO_ROOT)}
