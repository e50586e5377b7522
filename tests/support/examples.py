"""The one-stack examples in every language (examples/yaml, go, typescript) as e2e stacks.

Each declares the same pool, base image, overlay and guest and takes the same configuration, so
one function copies an example into a test stack and one gives it the tiny TCG test guest.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests.support import guest as tg
from tests.support.stack import REPO_ROOT, VENV, Stack

EXAMPLES = REPO_ROOT / "examples"
# Where an example names the provider plugin's directory (relative to itself).
PLUGIN_PATH = "path: ../../.venv/bin"


def example_stack(make_stack: Callable[..., Stack], name: str, project: str,
                  files: Iterable[str] = (), runtime: str = "python") -> Stack:
    """A stack of ``examples/<name>``: its Pulumi.yaml (the plugin path made absolute) and
    ``files`` copied into the stack's project directory."""
    stack = make_stack("", project=project, runtime=runtime)
    (stack.project_dir / "__main__.py").unlink(missing_ok=True)
    project_file = (EXAMPLES / name / "Pulumi.yaml").read_text()
    (stack.project_dir / "Pulumi.yaml").write_text(
        project_file.replace(PLUGIN_PATH, f"path: {VENV / 'bin'}"))
    for file in files:
        shutil.copy(EXAMPLES / name / file, stack.project_dir / file)
    return stack


def guest_config(prefix: str, work_dir: Path, guest: tg.TestGuest) -> dict[str, Any]:
    """The examples' configuration for the tiny test guest under TCG (no TDX, no vsock)."""
    return {"prefix": prefix, "poolPath": str(work_dir / "pool"),
            "baseImage": str(guest.base_image), "kernel": str(guest.kernel),
            "initrd": str(guest.initrd), "cmdline": tg.CMDLINE, "tdx": "false",
            "domainType": "qemu", "vsock": "false", "memoryMib": 256, "vcpus": 1,
            "consoleLog": str(work_dir / "td.log")}
