"""Stacks made before the engine refactor keep working: the dynamic providers' module paths and
class names are pickled into state, and their outputs are the engine's inputs now. A stack is
brought up with the code of the previous main (``git archive``, first on PYTHONPATH for the
program and its provider process), then refreshed, previewed (no change) and destroyed with
this code."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import guest as tg
from tests.support.hosts import by_name
from tests.support.stack import REPO_ROOT, Stack, steps

pytestmark = pytest.mark.e2e
# main before issue 19 moved behaviour out of the dynamic providers
PREVIOUS_MAIN = "ad414f1"
PROGRAM = (REPO_ROOT / "tests/fixtures/programs/every_resource/__main__.py").read_text()


def previous_main(into: Path) -> Path:
    """The previous main's provider and SDK, unpacked from git."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", PREVIOUS_MAIN, "provider",
                              "sdk/python"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def test_a_stack_of_the_previous_main_refreshes_previews_no_change_and_destroys(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest,
) -> None:
    old = previous_main(work_dir / "previous-main")
    stack = make_stack(PROGRAM)
    stack.config({"prefix": e2e_id, "work": str(work_dir), "uri": by_name("debian").uri,
                  "image": str(guest.base_image), "kernel": str(guest.kernel),
                  "initrd": str(guest.initrd), "cmdline": tg.CMDLINE})
    stack.env["PYTHONPATH"] = f"{old / 'provider'}:{old / 'sdk/python'}"
    stack.up()
    outputs = stack.outputs()
    assert outputs["engine"] == str(old / "provider/tdx_provider")  # the old code made it
    assert outputs["state"] == "running"

    del stack.env["PYTHONPATH"]
    stack.refresh()
    plan = steps(stack.preview_json())
    assert set(plan.values()) == {"same"}, plan
    stack.destroy()
    assert stack.resources() == []
