"""Drive the real Pulumi CLI (local file backend, empty passphrase) on a throwaway project.

A test writes a Python program; :class:`Stack` puts it in a project directory next to a
``Pulumi.yaml`` that uses the repository's ``.venv`` and runs ``pulumi`` commands on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV = REPO_ROOT / ".venv"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class PulumiError(AssertionError):
    pass


def real_pulumi_cli() -> Path:
    """The binary behind ``.venv/bin/pulumi``, which is a wrapper that resets SIGINT
    (scripts/install-pulumi.sh): the last-but-one word of its ``exec`` line."""
    wrapper = (VENV / "bin" / "pulumi").read_text()
    exec_line = next(line for line in wrapper.splitlines() if line.startswith("exec "))
    return Path(exec_line.split()[-2])


def timed_noop_preview(project_dir: Path, env: dict[str, str], pulumi: Path, *,
                       ignore_sigint: bool) -> float:
    """Seconds of a no-op ``pulumi preview`` run by a shell that first ignores SIGINT when
    asked (``trap '' INT``: the disposition survives exec, as in a background job)."""
    import time

    trap = "trap '' INT; " if ignore_sigint else ""
    script = f"{trap}exec {pulumi} preview --expect-no-changes --non-interactive --color never"
    start = time.monotonic()
    proc = subprocess.run(["bash", "-c", script], cwd=project_dir, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise PulumiError(f"no-op preview failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return elapsed


def pulumi_env(state_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{VENV / 'bin'}:{env.get('PATH', '')}",
        PULUMI_BACKEND_URL=f"file://{state_dir}",
        PULUMI_CONFIG_PASSPHRASE="",
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DIY_BACKEND_NO_LEGACY_WARNING="true",
        PULUMI_HOME=str(state_dir / ".pulumi-home"),
        PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK="true",
        # The language host takes the editable `pulumi-tdx` install for a resource plugin
        # (`pulumi-*` name) and tries to download "tdx" from GitHub: 5 attempts, ~2.5 s a command.
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
    )
    return env


class Stack:
    """One project + one stack in ``workdir``.

    ``runtime="yaml"``: ``program`` is a Pulumi YAML program (``Main.yaml``, run by the
    pulumi-language-yaml that ``make setup`` builds) instead of ``__main__.py``.
    """

    def __init__(self, workdir: Path, program: str, name: str = "test",
                 project: str = "ptdx-e2e", extra_env: dict[str, str] | None = None,
                 runtime: str = "python") -> None:
        self.workdir = workdir
        self.project_dir = workdir / "project"
        self.state_dir = workdir / "state"
        self.name = name
        self.runtime = runtime
        self.project_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if runtime == "python":
            (self.project_dir / "Pulumi.yaml").write_text(
                f"name: {project}\nruntime:\n  name: python\n  options:\n"
                f"    virtualenv: {VENV}\n    toolchain: pip\n"
            )
        else:
            (self.project_dir / "Pulumi.yaml").write_text(f"name: {project}\nruntime: {runtime}\n")
        self.write_program(program)
        self.env = pulumi_env(self.state_dir)
        if extra_env:
            self.env.update(extra_env)
        self.run("stack", "init", name)

    def write_program(self, program: str) -> None:
        main = "Main.yaml" if self.runtime == "yaml" else "__main__.py"
        (self.project_dir / main).write_text(textwrap.dedent(program))

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> Result:
        cmd = ["pulumi", *args, "--non-interactive", "--color", "never"]
        proc = subprocess.run(
            cmd, cwd=self.project_dir, env=self.env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise PulumiError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{result.output}")
        return result

    def config(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            self.run("config", "set", key, str(value))

    def up(self, check: bool = True) -> Result:
        return self.run("up", "--yes", "--skip-preview", check=check)

    def preview(self, *extra: str, check: bool = True) -> Result:
        return self.run("preview", "--diff", *extra, check=check)

    def preview_json(self) -> dict[str, Any]:
        """The structured plan of a preview (``pulumi preview --json``)."""
        out = self.run("preview", "--json").stdout
        return json.loads(out)

    def refresh(self) -> Result:
        return self.run("refresh", "--yes", "--skip-preview")

    def destroy(self, check: bool = True) -> Result:
        return self.run("destroy", "--yes", "--skip-preview", check=check)

    def outputs(self) -> dict[str, Any]:
        return json.loads(self.run("stack", "output", "--json", "--show-secrets").stdout)

    def resources(self) -> list[dict[str, Any]]:
        """Our resources in state (``pulumi stack export``): ``pulumi-python:dynamic/tdx:*``,
        and ``pulumi-python:dynamic:Resource`` of stacks made before they had their own types."""
        state = json.loads(self.run("stack", "export", "--show-secrets").stdout)
        return [r for r in state["deployment"].get("resources") or []
                if r["type"].startswith("pulumi-python:dynamic")]

    def remove(self) -> None:
        """Destroy what is left and delete the stack (best effort, for fixture teardown)."""
        self.run("destroy", "--yes", "--skip-preview", check=False)
        self.run("stack", "rm", "--yes", "--force", self.name, check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)


def steps(plan: dict[str, Any]) -> dict[str, str]:
    """resource name -> operation ("same", "create", "replace", "update", ...) of a preview."""
    result: dict[str, str] = {}
    for step in plan.get("steps", []):
        urn = step.get("urn", "")
        name = urn.rsplit("::", 1)[-1]
        op = step.get("op", "")
        if op in ("create-replacement", "delete-replaced", "replace"):
            op = "replace"
        result.setdefault(name, op)
        if op == "replace":
            result[name] = "replace"
    return result


def assert_no_traceback_of_ours(output: str, shown: str = "") -> None:
    """No stack dump of ours. One is Pulumi's own and is allowed: when one resource fails, the
    engine shuts its resource monitor down while the Python program still waits on other
    RegisterResource calls, and the program prints that RPC's traceback ("resource monitor shut
    down while waiting on step's done channel"); seen under load only. Our one-line failure is
    printed before it, and no frame of ours is in it."""
    if "Traceback" not in output:
        return
    _, _, dump = output.partition("Traceback")
    shown = shown or output
    assert "resource monitor shut down while waiting on step's done channel" in dump, shown
    assert "tdx_provider" not in dump and "pulumi_tdx" not in dump, shown
