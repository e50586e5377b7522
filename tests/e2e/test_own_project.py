"""pulumi-tdx in a user's own project, as docs/own-project.md says: the
wheel `make dist` builds, installed into the project's own virtualenv (`runtime.options.
virtualenv` in Pulumi.yaml), and only the Pulumi binaries on PATH: no PULUMI_PYTHON_CMD, no
repository .venv, no plugin-acquisition switch."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tdx_provider.connection import connect
from tests.support import guest as tg
from tests.support.programs import program_dir
from tests.support.stack import REPO_ROOT

pytestmark = pytest.mark.e2e
PULUMI_BINARIES = ("pulumi", "pulumi-language-python", "pulumi-language-python-exec",
                   "pulumi-resource-pulumi-python")
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # an ignored SIGINT costs Pulumi 5 s a command


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                          check=False, preexec_fn=_default_sigint)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def test_own_project_with_its_own_venv_and_the_wheel(
    e2e_id: str, work_dir: Path, guest: tg.TestGuest
) -> None:
    # the wheel, as `make dist` builds it
    dist = work_dir / "dist"
    run(["make", "--no-print-directory", "dist", f"DIST={dist}"], REPO_ROOT, dict(os.environ))
    [wheel] = dist.glob("pulumi_tdx-*.whl")

    # only the Pulumi binaries, from where `make setup` put them
    pulumi_bin = work_dir / "pulumi-bin"
    pulumi_bin.mkdir()
    for name in PULUMI_BINARIES:
        (pulumi_bin / name).symlink_to((REPO_ROOT / ".venv" / "bin" / name).resolve())

    project = work_dir / "my-tdx"
    shutil.copytree(program_dir("own_project"), project,  # Pulumi.yaml and __main__.py
                    ignore=shutil.ignore_patterns("__pycache__"))
    python3 = shutil.which("python3", path=SYSTEM_PATH)
    assert python3, "no python3 on " + SYSTEM_PATH
    env = {
        "HOME": os.environ.get("HOME", "/root"),
        "PATH": f"{pulumi_bin}:{SYSTEM_PATH}",
        "PULUMI_BACKEND_URL": f"file://{work_dir / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": "",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_HOME": str(work_dir / "pulumi-home"),
    }
    (work_dir / "state").mkdir()
    run([python3, "-m", "venv", "venv"], project, env)
    run(["venv/bin/pip", "install", "--quiet", str(wheel)], project, env)

    run(["pulumi", "stack", "init", "dev", "--non-interactive"], project, env)
    for key, value in {"poolName": e2e_id, "poolPath": str(work_dir / "pool"),
                       "image": str(guest.base_image)}.items():
        run(["pulumi", "config", "set", key, value], project, env)
    preview = run(["pulumi", "preview", "--diff", "--non-interactive"], project, env)
    assert "+ pulumi-python:dynamic/tdx:Overlay: (create)" in preview, preview
    run(["pulumi", "up", "--yes", "--skip-preview", "--non-interactive"], project, env)
    outputs = json.loads(run(["pulumi", "stack", "output", "--json"], project, env))
    assert outputs["backing"] == outputs["base"]
    with connect("qemu:///system") as conn:
        assert conn.storageVolLookupByPath(outputs["overlay"]).name().startswith("disk-")

    run(["pulumi", "destroy", "--yes", "--skip-preview", "--non-interactive"], project, env)
    with connect("qemu:///system") as conn:
        assert e2e_id not in [p.name() for p in conn.listAllStoragePools(0)]
    run(["pulumi", "stack", "rm", "--yes", "dev", "--non-interactive"], project, env)
