"""examples/typescript through the Node.js language host and the TypeScript SDK that `make sdks`
generates (sdk/nodejs, compiled to sdk/nodejs/bin by `make setup`): a pool, a base image, an
overlay and a guest go up, an unchanged program previews no changes, a memory change previews as
a property-level replacement of the guest alone, and the stack goes down leaving nothing in
libvirt. The host is the v3.68 pulumi-language-nodejs (the newest our Go proxy builds) running a
current @pulumi/pulumi (examples/typescript/package-lock.json) under the v3.274 CLI."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_lifecycle import libvirt_names
from tests.support import guest as tg
from tests.support.examples import EXAMPLES, example_stack, guest_config
from tests.support.stack import Stack, assert_no_traceback_of_ours, steps

pytestmark = pytest.mark.e2e
EXAMPLE = EXAMPLES / "typescript"
URI = "qemu:///system"


@pytest.fixture
def ts_stack(make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path,
             guest: tg.TestGuest) -> Stack:
    assert shutil.which("pulumi-language-nodejs"), "no pulumi-language-nodejs: run `make setup`"
    modules = EXAMPLE / "node_modules"
    assert (modules / "@pulumi-tdx" / "tdx" / "index.js").is_file(), \
        "no compiled TypeScript SDK in examples/typescript/node_modules: run `make setup`"
    stack = example_stack(make_stack, "typescript", "pulumi-tdx-typescript",
                          ("index.ts", "package.json", "tsconfig.json"), runtime="nodejs")
    (stack.project_dir / "node_modules").symlink_to(modules)
    stack.config(guest_config(e2e_id, work_dir, guest))
    return stack


def test_typescript_example_goes_up_previews_a_replacement_and_goes_down(
        ts_stack: Stack, e2e_id: str, work_dir: Path) -> None:
    up = ts_stack.up()
    # The CLI finds the host in its own bin set (scripts/install-pulumi.sh), not on $PATH.
    assert "from $PATH" not in up.output
    assert_no_traceback_of_ours(up.output)
    outputs = ts_stack.outputs()
    assert outputs["state"] == "running"
    assert outputs["name"] == f"{e2e_id}-td"
    assert outputs["overlay"] == str(work_dir / "pool" / f"{e2e_id}-disk")
    assert libvirt_names(URI, e2e_id) == {
        "domains": [f"{e2e_id}-td"], "pools": [e2e_id],
        "volumes": [f"{e2e_id}-base", f"{e2e_id}-disk"]}
    ts_stack.preview("--expect-no-changes")
    ts_stack.config({"memoryMib": 320})
    preview = ts_stack.preview()
    assert "~ memoryMib: 256 => 320" in preview.output
    plan = steps(ts_stack.preview_json())
    assert plan["td"] == "replace"
    assert {plan.get(name, "same") for name in ("pool", "base", "disk")} == {"same"}
    tg.wait_for_text(work_dir / "td.log", tg.USERSPACE_MARKER, 90)
    ts_stack.destroy()
    assert libvirt_names(URI, e2e_id) == {"domains": [], "pools": [], "volumes": []}
