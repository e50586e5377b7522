"""What reviewers and newcomers meet: each resource's own type (and stacks made before that keep
working), references by name or object, and failures as one line of ours."""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import guest as tg
from tests.support.programs import program
from tests.support.stack import REPO_ROOT, Stack, assert_no_traceback_of_ours, steps

pytestmark = pytest.mark.e2e
# The last commit whose SDK declared every resource as `pulumi-python:dynamic:Resource`.
LEGACY_SDK_COMMIT = "86ef036067216f066d0e956cf158bc92100d4326"
LEGACY_TYPE = "pulumi-python:dynamic:Resource"


def legacy_sdk(into: Path) -> Path:
    """pulumi_tdx as the previous code had it, from git (the engine is today's)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", LEGACY_SDK_COMMIT, "sdk/python/pulumi_tdx"],
        capture_output=True, check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "sdk" / "python"


def test_a_stack_made_by_the_previous_code_sees_no_create_replace_or_delete(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest
) -> None:
    old_sdk = legacy_sdk(work_dir / "legacy")
    stack = make_stack(program("one_vm_new_or_legacy_sdk"))
    stack.config({"prefix": e2e_id, "work": str(work_dir), "image": str(guest.base_image),
                  "kernel": str(guest.kernel), "initrd": str(guest.initrd),
                  "cmdline": tg.CMDLINE, "legacy_sdk": str(old_sdk)})
    stack.up()
    assert {r["type"] for r in stack.resources()} == {LEGACY_TYPE}

    stack.run("config", "rm", "legacy_sdk")  # the same program on today's SDK
    plan = steps(stack.preview_json())
    assert set(plan.values()) == {"same"}, plan
    text = stack.preview().output
    assert not re.search(r"to (create|replace|delete)|\((create|replace|delete)", text), text

    result = stack.up()
    assert re.search(r"\b(created|replaced|deleted)\b", result.output) is None, result.output
    assert sorted(r["type"] for r in stack.resources()) == [
        "pulumi-python:dynamic/tdx:BaseImage", "pulumi-python:dynamic/tdx:Overlay",
        "pulumi-python:dynamic/tdx:Pool", "pulumi-python:dynamic/tdx:TrustDomain",
    ]
    assert set(steps(stack.preview_json()).values()) == {"same"}


def test_the_base_image_by_object_path_or_name_is_one_value(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path, guest: tg.TestGuest
) -> None:
    stack = make_stack(program("overlay_base_by_object_path_or_name"))
    # by name, while the base is made in this same update: unknown at preview, resolved at up
    stack.config({"prefix": e2e_id, "path": str(work_dir / "pool"),
                  "image": str(guest.base_image), "form": "name_output"})
    assert steps(stack.preview_json())["disk"] == "create"
    stack.up()
    outputs = stack.outputs()
    assert outputs["backing"] == outputs["base_path"]

    stack.config({"literal_path": outputs["base_path"]})
    for form in ("object", "path", "literal_path", "literal_name", "name_output"):
        for pool_form in ("object", "name"):
            stack.config({"form": form, "pool_form": pool_form})
            plan = steps(stack.preview_json())
            assert set(plan.values()) == {"same"}, (form, pool_form, plan)


def test_a_base_name_missing_from_the_pool_is_named_at_create(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path
) -> None:
    stack = make_stack(program("overlay_on_missing_base"))
    stack.config({"name": e2e_id, "path": str(work_dir / "pool")})
    result = stack.up(check=False)
    assert result.returncode != 0
    assert ("pulumi-tdx: Overlay 'disk': create failed: base_image: no volume "
            f"'no-such-base.qcow2' in pool '{e2e_id}' on qemu:///system; give an existing "
            "volume's name or path, or the BaseImage") in result.output, result.output


def diagnostics_of(output: str, resource: str) -> list[str]:
    """The lines Pulumi prints under ``<type> (<resource>):`` in Diagnostics."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().endswith(f"({resource}):")
                 and "pulumi-python:dynamic/tdx:" in line)
    block = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        block.append(line.strip())
    return block


def test_a_failed_create_shows_one_line_of_ours_and_nothing_before_it(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path
) -> None:
    blocker = work_dir / "not-a-directory"
    blocker.write_text("x")
    stack = make_stack(program("pool"))
    stack.config({"name": e2e_id, "path": f"{blocker}/pool"})
    result = stack.up(check=False)
    assert result.returncode != 0
    block = diagnostics_of(result.output, "pool")
    ours = next(i for i, line in enumerate(block)
                if "pulumi-tdx: Pool 'pool': create failed:" in line)
    # The engine's own "error: " prefix is on our line; the dynamic-provider server adds none.
    assert ours == 0, block
    assert block[0].startswith("error: pulumi-tdx: Pool 'pool': create failed: libvirt: ")
    assert block[0].endswith("and run again"), block
    assert len(block) == 1, block
    assert_no_traceback_of_ours(result.output)


def test_a_refused_delete_is_one_line_that_says_what_to_do(
    make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path
) -> None:
    stack = make_stack(program("pool"))
    stack.config({"name": e2e_id, "path": str(work_dir / "pool")})
    stack.up()
    (work_dir / "pool" / "someone-elses.img").write_bytes(b"\0" * 4096)
    stack.write_program(program("empty"))
    result = stack.up(check=False)
    assert result.returncode != 0
    block = diagnostics_of(result.output, "pool")
    assert block == [
        f"error: pulumi-tdx: Pool 'pool': delete failed: pool '{e2e_id}' still holds volumes "
        "someone-elses.img; delete or move them first (pulumi-tdx never deletes volumes it did "
        "not create)"
    ], block
    (work_dir / "pool" / "someone-elses.img").unlink()
