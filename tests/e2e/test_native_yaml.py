"""examples/yaml through the YAML language host and the native provider: a pool, a base image,
an overlay and a guest go up, a change previews as a property-level replacement, and the stack
goes down; a wrong type or a missing required property is refused at preview by the schema,
before anything is made."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_lifecycle import libvirt_names
from tests.support import guest as tg
from tests.support.examples import example_stack, guest_config
from tests.support.programs import PROGRAMS
from tests.support.stack import Stack, steps

pytestmark = pytest.mark.e2e
URI = "qemu:///system"


@pytest.fixture
def yaml_stack(make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path,
               guest: tg.TestGuest) -> Stack:
    assert shutil.which("pulumi-language-yaml"), "no pulumi-language-yaml: run `make setup`"
    stack = example_stack(make_stack, "yaml", "pulumi-tdx-yaml")
    stack.config(guest_config(e2e_id, work_dir, guest))
    return stack


def test_yaml_example_goes_up_previews_a_replacement_and_goes_down(
        yaml_stack: Stack, e2e_id: str, work_dir: Path) -> None:
    yaml_stack.up()
    assert yaml_stack.outputs()["state"] == "running"
    assert libvirt_names(URI, e2e_id)["domains"] == [f"{e2e_id}-td"]
    yaml_stack.preview("--expect-no-changes")
    yaml_stack.config({"memoryMib": 320})
    preview = yaml_stack.preview()
    assert "~ memoryMib: 256 => 320" in preview.output
    assert steps(yaml_stack.preview_json())["td"] == "replace"
    tg.wait_for_text(work_dir / "td.log", tg.USERSPACE_MARKER, 90)
    yaml_stack.destroy()
    assert libvirt_names(URI, e2e_id) == {"domains": [], "pools": [], "volumes": []}


@pytest.mark.parametrize(("edit", "names"), [
    (("      vcpus: ${vcpus}", "      vcpus: lots"), "vcpus: string"),
    (("      memoryMib: ${memoryMib}\n", ""), "name: string, overlay: string, vcpus: number"),
], ids=["wrong-type", "missing-required"])
def test_yaml_refuses_bad_properties_at_preview_and_makes_nothing(
        yaml_stack: Stack, e2e_id: str, edit: tuple[str, str], names: str) -> None:
    path = yaml_stack.project_dir / "Pulumi.yaml"
    text = path.read_text()
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1]))
    preview = yaml_stack.preview(check=False)
    assert preview.returncode != 0
    assert "tdx:index:TrustDomain is not assignable from" in preview.output
    assert names in preview.output
    up = yaml_stack.up(check=False)
    assert up.returncode != 0
    assert libvirt_names(URI, e2e_id) == {"domains": [], "pools": [], "volumes": []}


def test_seed_user_data_and_its_instance_id_are_secrets_in_state(
        make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path) -> None:
    """Nothing in the YAML program marks a secret: the provider does (userData by the schema,
    instanceId because it is derived from the user-data)."""
    program = (PROGRAMS / "native_seed_yaml" / "Main.yaml").read_text()
    stack = make_stack(program, project="ptdx-e2e-native-seed", runtime="yaml")
    stack.config({"prefix": e2e_id, "work": str(work_dir)})
    stack.up()
    state = stack.run("stack", "export").stdout
    assert "not-in-state-in-clear" not in state
    [seed] = [r for r in json.loads(state)["deployment"]["resources"]
              if r["type"] == "tdx:index:CloudInitSeed"]
    for key in ("userData", "instanceId"):
        assert "ciphertext" in seed["outputs"][key], key
    assert stack.run("stack", "output", "instanceId").stdout.strip() == "[secret]"
    assert Path(stack.outputs()["path"]).exists()
    stack.destroy()
    assert libvirt_names(URI, e2e_id) == {"domains": [], "pools": [], "volumes": []}
