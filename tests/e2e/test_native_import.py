"""``pulumi import`` through the native provider: a pool, a base volume and an overlay made
outside Pulumi (libvirt's API, as virsh would) are read from their IDs alone; the program that
declares what was read previews with no change, before and after a refresh."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tdx_provider.connection import connect
from tests.support import guest as tg
from tests.support.guest import TestGuest
from tests.support.programs import program
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e
URI = "qemu:///system"
# What the imports read, as a program declares it (the Python language host built here cannot
# generate code: `pulumi import --generate-code=false`).
PROGRAM = program("native_imported")  # tests/fixtures/programs/native_imported


def make_by_hand(prefix: str, path: Path, guest: TestGuest) -> dict[str, str]:
    """A pool, a base volume (the test guest's image) and an overlay on it, as virsh makes
    them; returns the IDs Pulumi imports them by."""
    path.mkdir(parents=True)
    base = path / f"{prefix}-base"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(guest.base_image), str(base)],
                   check=True)
    with connect(URI) as conn:
        pool = conn.storagePoolCreateXML(  # transient first, then defined: as virsh does
            f"<pool type='dir'><name>{prefix}</name><target><path>{path}</path></target>"
            "</pool>", 0)
        conn.storagePoolDefineXML(pool.XMLDesc(0), 0)
        pool.refresh(0)
        disk = pool.createXML(
            f"<volume><name>{prefix}-disk</name><capacity>67108864</capacity><target>"
            "<format type='qcow2'/></target><backingStore>"
            f"<path>{base}</path><format type='qcow2'/></backingStore></volume>", 0)
        return {"pool": prefix, "base": str(base), "disk": disk.key()}


def inputs_in_state(stack: Stack) -> dict[str, dict[str, Any]]:
    state = json.loads(stack.run("stack", "export", "--show-secrets").stdout)
    return {r["urn"].rsplit("::", 1)[-1]: r["inputs"]
            for r in state["deployment"].get("resources") or []
            if r["type"].startswith("tdx:index:")}


def test_volumes_and_pool_made_by_hand_import_and_preview_with_no_change(
        make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path,
        guest: TestGuest) -> None:
    path = work_dir / "pool"
    ids = make_by_hand(e2e_id, path, guest)
    stack = make_stack("import pulumi\n", project="ptdx-e2e-native-import")
    stack.config({"prefix": e2e_id, "path": str(path)})
    for name, token in (("pool", "Pool"), ("base", "BaseImage"), ("disk", "Overlay")):
        stack.run("import", f"tdx:index:{token}", name, ids[name], "--yes",
                  "--generate-code=false")
    inputs = inputs_in_state(stack)
    assert inputs["pool"]["path"] == str(path) and inputs["pool"]["autostart"] is False
    assert inputs["base"]["source"] == ids["base"] and inputs["base"]["format"] == "qcow2"
    assert inputs["disk"]["baseImage"] == ids["base"]
    assert inputs["disk"]["capacity"] == 67108864
    assert all(i["uri"] == URI for i in inputs.values())  # the provider's

    stack.write_program(PROGRAM)
    stack.preview("--expect-no-changes")
    stack.refresh()
    stack.preview("--expect-no-changes")
    # (the fixture's teardown removes the stack and what was made by hand: pulumi-tdx deletes
    # no volume it did not create, imported ones included, so a destroy would keep them)


def test_yaml_import_generates_code_that_previews_with_no_change(
        make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path,
        guest: TestGuest) -> None:
    """The YAML language host generates the program of an import; appended to the project, it
    previews with no change."""
    assert shutil.which("pulumi-language-yaml"), "no pulumi-language-yaml: run `make setup`"
    path = work_dir / "pool"
    ids = make_by_hand(e2e_id, path, guest)
    stack = make_stack("", project=e2e_id)
    project = stack.project_dir / "Pulumi.yaml"
    project.write_text(f"name: {e2e_id}\nruntime: yaml\n")
    (stack.project_dir / "__main__.py").unlink()
    spec = {"resources": [{"type": f"tdx:index:{token}", "name": name, "id": ids[name]}
                          for name, token in (("pool", "Pool"), ("base", "BaseImage"),
                                              ("disk", "Overlay"))]}
    (stack.project_dir / "import.json").write_text(json.dumps(spec))
    generated = stack.project_dir / "generated.yaml"
    stack.run("import", "--file", "import.json", "--out", str(generated), "--yes")
    code = generated.read_text()
    assert "type: tdx:Overlay" in code and "baseImage:" in code, code
    project.write_text(project.read_text() + code)
    stack.preview("--expect-no-changes")


# A regular VM as tdvirsh's non-TD template defines one (q35, virtio disk on an overlay file
# outside any pool, a serial console), booting the test guest's kernel; no mark of ours.
FOREIGN_DOMAIN = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{kernel}</kernel><initrd>{initrd}</initrd><cmdline>{cmdline}</cmdline></os>
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/><source file='{disk}'/><target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'><source path='{log}'/></serial>
  </devices>
</domain>"""


def test_a_running_domain_defined_by_hand_imports_and_previews_with_no_change(
        make_stack: Callable[..., Stack], e2e_id: str, work_dir: Path,
        guest: TestGuest) -> None:
    """`pulumi import tdx:index:TrustDomain` of a domain with no mark of ours: its definition
    becomes the inputs, the YAML host writes the program, and it previews with no change. The
    overlay file outside any pool stays what it was: the import and a later delete of the
    domain leave it where it is."""
    assert shutil.which("pulumi-language-yaml"), "no pulumi-language-yaml: run `make setup`"
    disk = work_dir / "td-overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                    str(guest.base_image), str(disk)], check=True)
    name = f"{e2e_id}-td"
    with connect(URI) as conn:
        dom = conn.defineXML(FOREIGN_DOMAIN.format(
            name=name, kernel=guest.kernel, initrd=guest.initrd, cmdline=tg.CMDLINE,
            disk=disk, log=work_dir / "td.log"))
        dom.create()
        uuid = dom.UUIDString()
    stack = make_stack("", project=e2e_id)
    project = stack.project_dir / "Pulumi.yaml"
    project.write_text(f"name: {e2e_id}\nruntime: yaml\n")
    (stack.project_dir / "__main__.py").unlink()
    generated = stack.project_dir / "generated.yaml"
    imported = stack.run("import", "tdx:index:TrustDomain", "td", uuid, "--out",
                         str(generated), "--yes")
    assert "failed to validate" not in imported.output, imported.output
    code = generated.read_text()
    for line in (f"overlay: {disk}", "memoryMib: 256", "domainType: qemu", "tdx: false"):
        assert line in code, code
    project.write_text(project.read_text() + code)
    stack.preview("--expect-no-changes")
    assert disk.exists()
